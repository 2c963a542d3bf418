"""The hall's own certificate authority and the server's certificate (`kiosq server tls init`).

A hall LAN has no public name a public CA would certify, so the hall makes its own CA once
(`DATA_DIR/tls/ca.pem`, its key `ca.key` 0600, ten years) and with it the server's
certificate (`server.pem`, `server.key` 0600, 13 months, as browsers accept), naming the
server's host names and addresses (127.0.0.1 and localhost always). Terminals pin the CA by
its fingerprint (`SHA256:<hex>` of the certificate's DER bytes), which IT staff read off the
server and type at enrollment; staff browsers trust ca.pem once. Run again, `init` keeps the
CA and renews the server certificate with the names given. A hall with its own PKI brings
its certificate and key instead (`--cert`, `--key`), and its CA if it has one (`--ca`).

Everything here is `cryptography`; nothing is written by hand but the choice of fields.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiosq.base.privacy import replace_secret_file

TLS_DIR = "tls"
CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.pem", "ca.key", "server.pem", "server.key"
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate
ALWAYS_NAMES = ("localhost",)
ALWAYS_IPS = ("127.0.0.1",)
HOST_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


class TlsError(Exception):
    """The hall's certificates cannot be made or used; the message says what to do."""


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @classmethod
    def of(cls, data_dir: Path) -> TlsFiles:
        return cls(Path(data_dir) / TLS_DIR)

    @property
    def ca(self) -> Path:
        return self.folder / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.folder / CA_KEY

    @property
    def cert(self) -> Path:
        return self.folder / SERVER_CERT

    @property
    def key(self) -> Path:
        return self.folder / SERVER_KEY

    @property
    def serving(self) -> bool:
        """The server serves HTTPS when its certificate is there."""
        return self.cert.is_file()


@dataclass(frozen=True)
class Made:
    ca_fingerprint: str | None  # None: a hall's own certificate without its CA
    ca_created: bool
    names: tuple[str, ...]
    ips: tuple[str, ...]
    not_after: dt.datetime


def fingerprint(pem: bytes) -> str:
    """`SHA256:<hex>` of a certificate's DER bytes (what `openssl x509 -fingerprint -sha256` shows,
    without the colons), the form IT staff read and type."""
    try:
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    except ValueError:
        raise TlsError("not a PEM certificate") from None
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def check_names(names: tuple[str, ...], ips: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names and addresses the certificate will carry (the always ones first), each checked."""
    for name in names:
        if not HOST_NAME.match(name):
            raise TlsError(f"--host {name!r} is not a host name; write e.g. --host hall-server.district.lan")
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise TlsError(f"--ip {ip!r} is not an address; write e.g. --ip 192.168.1.10") from None
    all_names = tuple(dict.fromkeys((*ALWAYS_NAMES, *(n.lower() for n in names))))
    all_ips = tuple(dict.fromkeys((*ALWAYS_IPS, *(str(ipaddress.ip_address(i)) for i in ips))))
    return all_names, all_ips


def init(data_dir: Path, hall_name: str, names: tuple[str, ...] = (), ips: tuple[str, ...] = (),
         now: dt.datetime | None = None) -> Made:
    """Make the hall CA (unless there is one) and a new server certificate signed by it."""
    files = TlsFiles.of(data_dir)
    all_names, all_ips = check_names(names, ips)
    now = now or dt.datetime.now(dt.UTC)
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = False
    if files.ca.is_file() and files.ca_key.is_file():
        ca_cert, ca_key = _load_ca(files)
    elif files.ca.is_file() or files.ca_key.is_file():
        raise TlsError(f"{files.folder} holds half a CA (ca.pem or ca.key alone); restore the other from the "
                       "backup, or move both away to make a new CA (every terminal must then enroll again)")
    else:
        ca_cert, ca_key = _new_ca(hall_name, now)
        replace_secret_file(files.ca_key, _key_pem(ca_key))
        files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        created = True
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_cert(ca_cert, ca_key, key, hall_name, all_names, all_ips, now)
    replace_secret_file(files.key, _key_pem(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                           + ca_cert.public_bytes(serialization.Encoding.PEM))  # the chain, as clients want it
    return Made(fingerprint(files.ca.read_bytes()), created, all_names, all_ips, cert.not_valid_after_utc)


def bring_own(data_dir: Path, cert_file: Path, key_file: Path, ca_file: Path | None) -> Made:
    """A hall's certificate and key from its own PKI (and its CA, for terminals to pin)."""
    files = TlsFiles.of(data_dir)
    try:
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        ca_pem = ca_file.read_bytes() if ca_file else None
    except OSError as exc:
        raise TlsError(f"cannot read {exc.filename} ({exc.strerror})") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{cert_file} and {key_file} must be a PEM certificate and its unencrypted PEM key ({exc})") \
            from None
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise TlsError(f"{key_file} is not the key of {cert_file}")
    files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_secret_file(files.key, key_pem)
    files.cert.write_bytes(cert_pem)
    if ca_pem is not None:
        fingerprint(ca_pem)  # a certificate, or TlsError
        files.ca.write_bytes(ca_pem)
    names = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName)) if _has_san(cert) else ()
    return Made(fingerprint(ca_pem) if ca_pem else None, False, names, (), cert.not_valid_after_utc)


def _spki(public: object) -> bytes:
    der: bytes = public.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return True


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"the hall CA in {files.folder} cannot be read ({exc}); restore ca.pem and ca.key "
                       "from the backup") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{files.ca_key} is not a key kiosq made (an EC key); restore it from the backup")
    return cert, key


def _new_ca(hall_name: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, hall_name),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{hall_name} kiosq hall CA")])
    public = key.public_key()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA384()))
    return cert, key


def _server_cert(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey,
                 hall_name: str, names: tuple[str, ...], ips: tuple[str, ...], now: dt.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, hall_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, names[-1] if len(names) > 1 else names[0])])
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
