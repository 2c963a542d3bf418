"""Signed content bundles against a real `kiosq server`: `publish` signs with the hall's key,
the manifest carries the signature, enrollment hands out the public key, and the terminal's
updater installs only what that key signed. A bundle altered on the way (its bytes and the
sha256 the manifest says, as a man in the middle would change both), an unsigned one and one
signed by another hall are refused, and the active bundle stays."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
import requests

from kiosq.content import bundle, signing
from kiosq.kiosk.hall_client import HallClient
from kiosq.kiosk.updater import UpdateError, Updater
from tests.queue.conftest import KIOSQ, ServerProcess

pytestmark = pytest.mark.slow


def kiosq(*args: str) -> str:
    done = subprocess.run([*KIOSQ, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def hall(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signed")
    manifest = kiosq("content", "build", "--out", str(tmp / "bundle")).strip()
    srv = ServerProcess(tmp / "data", tmp)
    srv.make_tokens()
    kiosq("server", "publish", manifest, "--data-dir", str(srv.data_dir))
    srv.start()
    yield srv, manifest
    srv.stop()


def offer_of(srv) -> dict:
    r = requests.get(f"{srv.url}/api/content/manifest", headers={"Authorization": f"Bearer {srv.tokens['terminal']}"},
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def updater_for(srv, tmp_path, key_text: str | None) -> tuple[Updater, HallClient]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    key = tmp_path / "hall-signing.pub"
    if key_text is not None:
        key.write_text(key_text + "\n")
    client = HallClient(srv.url, srv.tokens["terminal"])
    return Updater(client, tmp_path / "content", lambda *_: None, lambda _why: None, signing_key=key), client


def test_publish_signs_and_enrollment_hands_out_the_key(hall):
    srv, _manifest = hall
    offer = offer_of(srv)
    public = (srv.data_dir / "signing.pub").read_text().strip()
    served = requests.get(f"{srv.url}{offer['url']}", headers={"Authorization": f"Bearer {srv.tokens['terminal']}"},
                          timeout=10).content
    path = srv.data_dir / "served.sqlite"
    path.write_bytes(served)
    signing.verify(public, path, offer["signature"])  # over the bytes exactly as served
    assert (srv.data_dir / "signing.key").stat().st_mode & 0o777 == 0o600
    code = json.loads(kiosq("server", "enroll-code", "--terminal", "T09", "--data-dir", str(srv.data_dir),
                            "--json"))["code"]
    enrolled = requests.post(f"{srv.url}/api/terminals/enroll", json={"code": code}, timeout=10).json()
    assert enrolled["signing_key"] == public


def test_the_updater_installs_the_signed_bundle_and_refuses_altered_unsigned_and_foreign_ones(hall, tmp_path):
    srv, _manifest = hall
    public = (srv.data_dir / "signing.pub").read_text().strip()
    updater, client = updater_for(srv, tmp_path, public)
    try:
        offer = offer_of(srv)
        installed = updater.take(offer)
        assert installed.version == offer["version"] == bundle.active_state(tmp_path / "content")["version"]

        # Nothing else goes in, and what is active stays so.
        def refused(changed: dict, match: str, key: str | None = public) -> None:
            other, other_client = updater_for(srv, tmp_path / f"t{len(match)}", key)
            try:
                with pytest.raises(UpdateError, match=match):
                    other.take(changed)
            finally:
                other_client.close()

        refused({**offer, "signature": None}, "is not signed by the hall")
        foreign = signing.public_text(signing.hall_key(tmp_path / "another-hall").public_key())
        refused(offer, "does not match its bytes and the hall's key", key=foreign)
        refused(offer, "this terminal has no hall signing key", key=None)

        # A man in the middle changes one byte and the sha256 the manifest says.
        catalog = next((srv.data_dir / "content" / "bundles" / offer["version"]).glob("*.sqlite"))
        data = bytearray(catalog.read_bytes())
        data[len(data) // 2] ^= 0x01
        catalog.write_bytes(bytes(data))
        tampered = {**offer, "sha256": hashlib.sha256(bytes(data)).hexdigest()}
        with pytest.raises(UpdateError, match="does not match its bytes"):
            updater.take({**tampered, "version": offer["version"]})
        assert bundle.active_state(tmp_path / "content")["version"] == offer["version"]
        assert not list((tmp_path / "content" / ".downloads").glob("*.partial"))  # the refused bytes are gone
    finally:
        client.close()


def test_content_install_by_hand_takes_only_what_the_hall_signed(hall, tmp_path):
    import shutil
    from pathlib import Path

    srv, manifest = hall
    key = tmp_path / "hall-signing.pub"
    shutil.copy(srv.data_dir / "signing.pub", key)
    content = tmp_path / "content"
    signed = Path(manifest).with_suffix(".sig")
    assert signed.is_file()  # `kiosq server publish` wrote it beside the manifest, for the USB stick
    installed = subprocess.run([*KIOSQ, "content", "install", manifest, "--content-dir", str(content),
                                "--signing-key", str(key)], capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    version = bundle.active_state(content)["version"]

    # A copy with one byte changed and its manifest's sha256 made to fit: the signature refuses it.
    carried = tmp_path / "usb"
    shutil.copytree(Path(manifest).parent, carried)
    carried_manifest = carried / Path(manifest).name
    meta = json.loads(carried_manifest.read_text())
    db = carried / meta["file"]
    data = bytearray(db.read_bytes())
    data[100] ^= 0x01
    db.write_bytes(bytes(data))
    meta["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    carried_manifest.write_text(json.dumps(meta))
    refused = subprocess.run([*KIOSQ, "content", "install", str(carried_manifest), "--content-dir", str(content),
                              "--signing-key", str(key)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "does not match its bytes" in refused.stderr
    assert "the active bundle stays" in refused.stderr and bundle.active_state(content)["version"] == version
    carried_manifest.with_suffix(".sig").unlink()
    unsigned = subprocess.run([*KIOSQ, "content", "install", str(carried_manifest), "--content-dir", str(content),
                               "--signing-key", str(key)], capture_output=True, text=True, timeout=60)
    assert unsigned.returncode == 1 and "is not signed by the hall" in unsigned.stderr
