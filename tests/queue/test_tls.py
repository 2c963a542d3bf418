"""The hall CA and HTTPS, over real TLS on 127.0.0.1: `kiosq server tls init` makes the CA
once and renews the server certificate; the server serves HTTPS whenever it has one (HSTS,
the CA at /api/tls/ca.pem), and refuses plain HTTP off loopback unless told it sits behind
a TLS proxy. A client that trusts the hall CA connects; one that does not is refused."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
import stat
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from kiosq.queue.api import create_app
from kiosq.queue.config import load_hall
from kiosq.queue.store import Store
from tests.queue.conftest import KIOSQ, ServerProcess, free_port

FINGERPRINT = re.compile(r"^SHA256:[0-9a-f]{64}$")


def kiosq(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*KIOSQ, *args], capture_output=True, text=True, timeout=timeout)


def tls_init(data_dir, *args: str) -> subprocess.CompletedProcess:
    return kiosq("server", "tls", "init", "--data-dir", str(data_dir), *args)


def der_fingerprint(pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def names_of(pem: bytes) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(pem)  # the first of the chain: the server's own
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return alt.get_values_for_type(x509.DNSName), [str(i) for i in alt.get_values_for_type(x509.IPAddress)]


def test_init_makes_the_ca_once_and_renews_the_server_certificate(tmp_path):
    done = tls_init(tmp_path, "--host", "Hall.District.lan", "--ip", "192.168.1.10")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert FINGERPRINT.match(printed), done.stdout
    tls = tmp_path / "tls"
    assert printed == der_fingerprint((tls / "ca.pem").read_bytes())
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tls / key).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "signing.key").stat().st_mode) == 0o600  # the bundle signing key too
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    names, ips = names_of((tls / "server.pem").read_bytes())
    assert names == ["localhost", "hall.district.lan"] and ips == ["127.0.0.1", "192.168.1.10"]
    ca = x509.load_pem_x509_certificate((tls / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    first_serial = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes()).serial_number

    again = tls_init(tmp_path, "--host", "hall.district.lan", "--host", "kiosq.district.lan")
    assert again.returncode == 0 and again.stdout.strip() == printed  # the same CA: terminals stay pinned
    assert "kept the hall CA" in again.stderr
    renewed = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes())
    assert renewed.serial_number != first_serial
    assert names_of((tls / "server.pem").read_bytes()) == (
        ["localhost", "hall.district.lan", "kiosq.district.lan"], ["127.0.0.1"])


@pytest.mark.parametrize("args, message", [
    (("--host", "not a name"), "--host 'not a name' is not a host name"),
    (("--ip", "192.168.1.300"), "--ip '192.168.1.300' is not an address"),
    (("--cert", "x.pem"), "--cert and --key go together"),
])
def test_init_refuses_what_it_cannot_certify(tmp_path, args, message):
    done = tls_init(tmp_path, *args)
    assert done.returncode in (1, 2) and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tls" / "ca.pem").exists()


def test_a_hall_certificate_from_its_own_pki(tmp_path):
    other = tmp_path / "pki"
    assert tls_init(other, "--host", "hall.example.lan").returncode == 0
    pki = other / "tls"
    mismatched = tls_init(tmp_path / "d1", "--cert", str(pki / "server.pem"), "--key", str(pki / "ca.key"))
    assert mismatched.returncode == 1 and "is not the key of" in mismatched.stderr
    done = tls_init(tmp_path / "d2", "--cert", str(pki / "server.pem"), "--key", str(pki / "server.key"),
                    "--ca", str(pki / "ca.pem"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == der_fingerprint((pki / "ca.pem").read_bytes())
    assert (tmp_path / "d2" / "tls" / "server.pem").read_bytes() == (pki / "server.pem").read_bytes()
    assert stat.S_IMODE((tmp_path / "d2" / "tls" / "server.key").stat().st_mode) == 0o600


@pytest.fixture
def tls_server(tmp_path):
    data = tmp_path / "data"
    printed = tls_init(data, "--host", "hall.test").stdout.strip()
    srv = ServerProcess(data, tmp_path)
    srv.make_tokens()
    srv.start()
    yield srv, printed
    srv.stop()


def test_the_server_serves_https_and_a_client_without_the_hall_ca_is_refused(tls_server):
    srv, printed = tls_server
    assert srv.url.startswith("https://")
    assert f"hall CA {printed}" in srv.log(full=True)
    conn = srv.connection(timeout=5)  # verifies against the hall CA
    try:
        conn.request("GET", "/api/health")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["ok"] is True
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
        conn.request("GET", "/api/tls/ca.pem")
        resp = conn.getresponse()
        served = resp.read()
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-pem-file"
        assert der_fingerprint(served) == printed
    finally:
        conn.close()
    stranger = http.client.HTTPSConnection(srv.host, srv.port, timeout=5, context=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate in certificate chain"):
        stranger.request("GET", "/api/health")
    stranger.close()
    plain = http.client.HTTPConnection(srv.host, srv.port, timeout=5)  # http:// to the HTTPS port: no answer
    with pytest.raises((http.client.HTTPException, OSError)):
        plain.request("GET", "/api/health")
        plain.getresponse().read()
    plain.close()


def test_plain_http_off_loopback_is_refused_unless_behind_a_tls_proxy(tmp_path):
    port = free_port()
    refused = kiosq("server", "--host", "0.0.0.0", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "refusing to serve plain HTTP on 0.0.0.0" in refused.stderr and "kiosq server tls init" in refused.stderr
    proc = subprocess.Popen([*KIOSQ, "server", "--host", "0.0.0.0", "--port", str(port), "--data-dir",
                             str(tmp_path / "d"), "--insecure-http"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 15, None
        while status is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/api/health")
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0].decode()
    assert "serving plain HTTP on 0.0.0.0 (--insecure-http)" in out


def test_no_ca_is_a_404_in_the_error_shape(store):
    with TestClient(create_app(store)) as client:
        r = client.get("/api/tls/ca.pem")
        assert r.status_code == 404 and r.json()["error"] == "no_ca" and "kiosq server tls init" in r.json()["detail"]
        assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS


def test_the_session_cookie_is_secure_under_tls(tls_server):
    srv, _printed = tls_server
    s = Store.in_dir(srv.data_dir, load_hall())
    try:
        s.create_user("zhangmin", "张敏", "staff", (1,), "correct horse battery")
    finally:
        s.close()
    r = requests.post(srv.url + "/api/session", json={"login": "zhangmin", "password": "correct horse battery"},
                      verify=str(srv.tls_ca), timeout=10)
    assert r.status_code == 200, r.text
    flags = {part.strip().lower() for part in r.headers["Set-Cookie"].split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict"} <= flags
