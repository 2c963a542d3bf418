"""The outbox key (#17): sealed applications carry their key id; a lost key stops filing
with a clear reason on the maintenance screen while the kiosk runs on; `kiosq kiosk
rotate-outbox-key` seals the waiting applications again under a new key, resumable."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosq.base import keyring
from kiosq.kiosk.outbox import DB_FILE, KEY_FILE, Outbox, OutboxError
from tests.kiosk.conftest import pump, pump_until, tap
from tests.kiosk.test_outbox import ITEM, form, person
from tests.queue.conftest import KIOSQ


def fill(folder, n, terminal="T01"):
    outbox = Outbox(folder, terminal)
    numbers = [outbox.add(ITEM, person(i), form(person(i))).provisional_no for i in range(n)]
    return outbox, numbers


def ids_of_rows(outbox):
    return [keyring.id_of(bytes(b)) for (b,) in outbox.conn.execute(
        "SELECT sealed FROM applications WHERE sealed IS NOT NULL ORDER BY seq")]


def test_sealed_applications_carry_their_key_id(tmp_path):
    outbox, numbers = fill(tmp_path, 2)
    data = json.loads((tmp_path / KEY_FILE).read_text())
    assert data["format"] == 2 and [k["id"] for k in data["seal"]] == list(outbox.key_ids)
    assert ids_of_rows(outbox) == [outbox.key_ids[-1]] * 2
    assert outbox.open(numbers[1])["applicant"] == person(1)
    outbox.close()


def test_an_outbox_sealed_before_key_ids_gets_them_on_opening(tmp_path):
    key = os.urandom(32)
    (tmp_path / KEY_FILE).write_text(json.dumps({"format": 1, "cipher": "AES-256-GCM",
                                                 "key": base64.b64encode(key).decode()}))
    os.chmod(tmp_path / KEY_FILE, 0o600)
    outbox, numbers = fill(tmp_path, 1)
    outbox.close()
    # What the outbox of before key ids held: nonce and ciphertext, no id.
    import sqlite3

    conn = sqlite3.connect(tmp_path / DB_FILE)
    nonce = os.urandom(12)
    legacy = nonce + AESGCM(key).encrypt(nonce, json.dumps({"applicant": person(0), "values": {}}).encode(),
                                         b"kiosq outbox v1 " + numbers[0].encode())
    with conn:
        conn.execute("UPDATE applications SET sealed = ?", (legacy,))
        conn.execute("DELETE FROM meta")
    conn.close()
    outbox = Outbox(tmp_path, "T01")
    assert ids_of_rows(outbox) == [keyring.key_id(key)] and outbox.open(numbers[0])["applicant"] == person(0)
    outbox.close()


def test_rotation_stopped_after_a_batch_resumes_and_the_running_kiosk_follows(tmp_path):
    running, numbers = fill(tmp_path, 5)  # the kiosk's outbox stays open through the rotation
    old = running.key_ids[-1]
    rotator = Outbox(tmp_path, "T01")
    started, sealed, left = rotator.rotate_key(batch=2, batches=1)
    assert started and sealed == 2 and left == 3
    rotator.close()  # "the crash"
    again = Outbox(tmp_path, "T01")
    new = again.key_ids[-1]
    assert again.key_ids == (old, new)
    with pytest.raises(OutboxError, match="still under key"):
        again.finish_rotation()
    assert again.rotate_key(batch=2) == (False, 3, 0)
    assert ids_of_rows(again) == [new] * 5
    assert again.finish_rotation() == (old,)
    again.close()
    # The running kiosk re-reads outbox.key: it opens what was sealed again, and seals under the new key.
    assert [running.open(n)["applicant"] for n in numbers] == [person(i) for i in range(5)]
    running.add(ITEM, person(9), form(person(9)))
    assert running.key_ids == (new,) and ids_of_rows(running) == [new] * 6
    running.close()


def test_an_outbox_key_that_lacks_a_key_in_use_is_refused(tmp_path):
    outbox, _ = fill(tmp_path, 2)
    before = (tmp_path / KEY_FILE).read_bytes()
    outbox.rotate_key(batch=1, batches=1)
    new = outbox.key_ids[-1]
    outbox.close()
    (tmp_path / KEY_FILE).write_bytes(before)
    with pytest.raises(OutboxError, match=f"lacks the key {new} .* restore outbox.key"):
        Outbox(tmp_path, "T01")


def test_rotate_outbox_key_on_the_command_line(tmp_path):
    outbox, numbers = fill(tmp_path, 3)
    outbox.close()

    def run(*args):
        return subprocess.run([*KIOSQ, "kiosk", "rotate-outbox-key", "--data-dir", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60)

    done = run("--batch-size", "2", "--batches", "1")
    assert done.returncode == 0 and "1 are left: run it again" in done.stdout, done.stderr
    done = run()
    assert done.returncode == 0 and "sealed 1 waiting applications again" in done.stdout, done.stderr
    done = run("--finish")
    assert done.returncode == 0 and done.stdout.startswith("dropped "), done.stderr
    done = run()  # a second rotation
    assert done.returncode == 0 and "sealed 3" in done.stdout
    (tmp_path / KEY_FILE).unlink()
    done = run()
    assert done.returncode == 1 and "is missing" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / KEY_FILE).exists()


# -- the kiosk, with its outbox key lost -------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.kiosk.test_kiosk_ticket import Server

    srv = Server(tmp_path_factory.mktemp("kiosq-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kiosk_app(tmp_path_factory, printer_sim, server):
    """A kiosk whose outbox holds a waiting application and whose outbox.key is gone."""
    from kiosq.kiosk.settings import KioskConfig
    from tests.kiosk.conftest import running_app

    folder = tmp_path_factory.mktemp("kiosk")
    outbox, _ = fill(folder, 1, "K1")
    outbox.close()
    (folder / KEY_FILE).unlink()
    config = KioskConfig(printer_uri=printer_sim.uri, data_dir=folder, server_url=server.url,
                         terminal_token=server.terminal_token)
    with running_app(config) as app:
        yield app


@pytest.mark.slow
def test_a_lost_outbox_key_stops_filing_and_says_why_without_stopping_the_kiosk(app):
    from kiosq.kiosk.screens.maintenance import status_lines

    folder = app.kiosk_config.data_dir
    assert app.apply.outbox is None and "outbox.key" in app.apply.outbox_problem
    assert "restore outbox.key from the terminal's backup" in app.apply.outbox_problem
    assert not (folder / KEY_FILE).exists()  # no new key was made
    assert "outbox.key" in app.fleet.last_error  # the fleet view hears of it with the next heartbeat
    home = app.manager.get_screen("home")
    assert app.msg["tile_apply_paused"] in home.ids.apply_tile.text
    tap(home.ids.apply_tile)
    pump(3)
    assert app.manager.current == "home"  # filing is off; the rest runs
    assert app.msg["maint_outbox_problem"].format(why=app.apply.outbox_problem) in status_lines(app)["server"]
    tap(home.ids.ticket_tile)
    assert pump_until(lambda: app.manager.current == "ticket")
