"""Keys that cannot be lost silently (#17): sealed records carry their key id, the server
refuses to start without the key (or with another), and `kiosq server rotate-key` seals
every record again under a new key in batches, resumable, while the server runs."""

import base64
import hashlib
import hmac
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosq.base import keyring
from kiosq.queue import key_rotation
from kiosq.queue.items import ItemCatalog
from kiosq.queue.personal import KEY_FILE, Personal
from kiosq.queue.server import ServerError, open_keys
from tests.queue.conftest import KIOSQ, free_port
from tests.queue.test_applications_http import PEOPLE, application, get, post


def file_records(store, personal, n, start=0):
    item = ItemCatalog(store.data_dir).all()[0]
    for i in range(start, start + n):
        store.submit_application(item, terminal="T01", id_hash=f"h{i}", sealed=personal.seal({"n": i}),
                                 fingerprint=f"f{i}", provisional_no=None, caller="c", idempotency_key=f"k{i}")


def opened(store, personal):
    return [personal.open(blob)["n"] for (blob,) in store.db.rows("SELECT applicant FROM applications ORDER BY seq")]


def key_ids_of_rows(store):
    return [keyring.id_of(bytes(b)) for (b,) in store.db.rows("SELECT applicant FROM applications ORDER BY seq")]


def test_sealed_records_start_with_their_key_id_and_never_hold_the_key(tmp_path):
    personal = Personal.in_dir(tmp_path)
    blob = personal.seal({"applicant": {"name": "测试"}})
    assert keyring.id_of(blob) == personal.key_id == keyring.key_id(personal.keys[0].key)
    assert personal.keys[0].key not in blob and len(personal.key_id) == 16
    data = json.loads((tmp_path / KEY_FILE).read_text())
    assert data["format"] == 2 and [k["id"] for k in data["seal"]] == [personal.key_id]
    assert personal.open(blob) == {"applicant": {"name": "测试"}}
    assert data["seal"][0]["key"] not in repr(personal) + repr(personal.keys[0]) and "hidden" in repr(personal)


def test_keys_are_adopted_only_if_they_open_the_newest_record(store, tmp_path):
    for name in ("right", "wrong"):
        (tmp_path / name).mkdir()
    right, wrong = Personal.in_dir(tmp_path / "right"), Personal.in_dir(tmp_path / "wrong")
    file_records(store, right, 1)
    assert store.adopt_keys(wrong) == ()  # another hall's file: no key id in common
    assert store.key_check() is None  # nothing was adopted
    assert store.adopt_keys(right) is None
    assert store.key_check() == right.check_value() != wrong.check_value()
    assert store.adopt_keys(right) is None
    assert store.adopt_keys(wrong) == ()  # the check value decides now


def test_records_sealed_before_key_ids_get_theirs_at_the_first_start(store, tmp_path):
    """A database and a key file (format 1) of the server before key ids: the first start
    with the key present labels every record with its key id, and takes the new check value."""
    seal_key, hash_key = os.urandom(32), os.urandom(32)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / KEY_FILE).write_text(json.dumps({"format": 1, "seal": base64.b64encode(seal_key).decode(),
                                               "hash": base64.b64encode(hash_key).decode()}))
    os.chmod(folder / KEY_FILE, 0o600)
    item = ItemCatalog(store.data_dir).all()[0]
    for i in range(3):
        nonce = os.urandom(12)
        legacy = nonce + AESGCM(seal_key).encrypt(nonce, json.dumps({"n": i}).encode(), b"kiosq applicant v1")
        store.submit_application(item, terminal="T01", id_hash=f"h{i}", sealed=legacy, fingerprint=f"f{i}",
                                 provisional_no=None, caller="c", idempotency_key=f"k{i}")
    old_check = hmac.new(hash_key, ("kiosq applicant key check|" + hashlib.sha256(seal_key).hexdigest()).encode(),
                         hashlib.sha256).hexdigest()
    store.db.run(lambda: store.db.execute("INSERT INTO meta VALUES ('applicant_key_check', ?)", (old_check,)),
                 on_retry=lambda: None)
    other = tmp_path / "other"
    other.mkdir()
    assert store.adopt_keys(Personal.in_dir(other)) == ()
    assert key_ids_of_rows(store) == [None, None, None]  # refused: nothing was changed
    personal = Personal.in_dir(folder)
    assert store.adopt_keys(personal) is None
    assert key_ids_of_rows(store) == [personal.key_id] * 3 and opened(store, personal) == [0, 1, 2]
    assert store.key_check() == personal.check_value()
    assert store.adopt_keys(personal) is None and opened(store, personal) == [0, 1, 2]  # once


def test_rotation_stopped_after_some_batches_resumes_and_ends_under_the_new_key(store, tmp_path):
    personal = Personal.in_dir(tmp_path)
    assert store.adopt_keys(personal) is None
    file_records(store, personal, 11)
    old = personal.key_id
    stale = Personal.in_dir(tmp_path)
    stale.path = None  # a server on a data folder of its own, whose key file is not updated
    first = key_rotation.rotate(store, personal, batch=3, batches=2)  # "the crash": stopped after 2 batches
    assert first.started and first.resealed == 6 and first.left == 5 and first.keys == (old, first.key_id)
    assert sorted(set(key_ids_of_rows(store))) == sorted({old, first.key_id})
    # A new process (the command run again) reads the key file afresh and continues.
    again = Personal.in_dir(tmp_path)
    assert store.adopt_keys(again) is None and again.key_id == first.key_id
    file_records(store, stale, 1, start=11)
    with pytest.raises(key_rotation.RotationRefused, match="still under key"):
        key_rotation.finish(store, again)
    second = key_rotation.rotate(store, again, batch=3)
    assert not second.started and second.resealed == 6 and second.left == 0
    assert key_ids_of_rows(store) == [first.key_id] * 12 and opened(store, again) == list(range(12))
    with pytest.raises(key_rotation.RotationRefused, match="--finish"):
        key_rotation.rotate(store, again)
    assert key_rotation.finish(store, again) == (old,)
    dropped = Personal.in_dir(tmp_path)
    assert dropped.key_ids == (first.key_id,) and opened(store, dropped) == list(range(12))
    assert store.adopt_keys(dropped) is None
    assert personal.refresh() and personal.key_ids == (first.key_id,)  # a running server re-reads the file


def test_a_key_file_that_lacks_a_key_in_use_is_refused(store, tmp_path):
    personal = Personal.in_dir(tmp_path)
    before = (tmp_path / KEY_FILE).read_bytes()
    assert store.adopt_keys(personal) is None
    file_records(store, personal, 2)
    key_rotation.rotate(store, personal, batch=1, batches=1)
    (tmp_path / KEY_FILE).write_bytes(before)  # the backup from before the rotation
    assert store.adopt_keys(Personal.in_dir(tmp_path)) == (personal.key_id,)
    with pytest.raises(ServerError, match=f"lacks the key {personal.key_id}.*restore applicant.key"):
        open_keys(tmp_path, store)


def test_a_missing_key_file_is_not_made_again_once_something_is_sealed(store, tmp_path):
    assert open_keys(tmp_path, store).key_id  # a new hall: the key is made
    (tmp_path / KEY_FILE).unlink()
    with pytest.raises(ServerError, match="applicant.key is missing .* restore applicant.key from the backup"):
        open_keys(tmp_path, store)  # a key check, though nothing is sealed yet
    assert not (tmp_path / KEY_FILE).exists()


# -- over real processes ---------------------------------------------------------------------


def run_kiosq(srv, *args, data_dir=None):
    database = ["--database", srv.database] if srv.database else []
    return subprocess.run([*KIOSQ, *args, "--data-dir", str(data_dir or srv.data_dir), *database],
                          capture_output=True, text=True, timeout=60)


def start_fails(srv):
    return run_kiosq(srv, "server", "--port", str(free_port()))


@pytest.mark.slow
def test_a_deleted_or_wrong_key_stops_the_server_with_one_sentence(hall_server, tmp_path):
    srv = hall_server()
    assert post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="k-1").status_code == 201
    srv.stop()
    key_file = srv.data_dir / KEY_FILE
    kept = key_file.read_bytes()
    key_file.unlink()
    done = start_fails(srv)
    assert done.returncode == 1, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Traceback" not in done.stderr
    assert f"{key_file} is missing" in error[0] and "restore applicant.key from the backup" in error[0]
    assert not key_file.exists()  # no new key was made
    Personal.in_dir(tmp_path)  # another hall's key file
    key_file.write_bytes((tmp_path / KEY_FILE).read_bytes())
    os.chmod(key_file, 0o600)
    done = start_fails(srv)
    assert done.returncode == 1 and "is not the applicant.key the database" in done.stderr
    assert "restore applicant.key from the backup" in done.stderr and "Traceback" not in done.stderr
    doctor = run_kiosq(srv, "doctor", "--server", "--url", "http://127.0.0.1:9")
    keys = next(line for line in doctor.stdout.splitlines() if "keys" in line.split()[:2])
    assert keys.startswith("FAIL") and "not the key file" in keys
    key_file.write_bytes(kept)
    srv.start()
    assert get(srv, "/api/applications", "staff").json()["count"] == 1


@pytest.mark.slow
def test_rotate_key_while_two_servers_run_then_finish(hall_server):
    """Two processes of the hall (one data folder) run; rotate-key adds a key, is stopped
    after one batch, continues, and both servers open every record, old and new, under the
    new key; --finish drops the old key; a restart starts; the old key file alone is refused."""
    srv = hall_server()
    second = hall_server(srv.data_dir, tokens=False)
    second.tokens = srv.tokens
    numbers = []
    for i in range(5):
        r = post(srv if i % 2 else second, "/api/applications", "terminal", application(*PEOPLE[i % 3]), key=f"r{i}")
        assert r.status_code == 201
        numbers.append(r.json()["tracking_no"])
    before = (srv.data_dir / KEY_FILE).read_bytes()
    done = run_kiosq(srv, "server", "rotate-key", "--batch-size", "2", "--batches", "1", "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["started"] and first["resealed"] == 2 and first["left"] == 3 and len(first["keys"]) == 2
    # Filed meanwhile: sealed under the new key by a server that re-read the file.
    r = post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="during")
    numbers.append(r.json()["tracking_no"])
    done = run_kiosq(srv, "server", "rotate-key", "--batch-size", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {**first, "started": False, "resealed": 3, "left": 0}
    for server in (srv, second):
        for number in numbers:
            assert get(server, f"/api/applications/{number}/personal", "admin").json()["applicant"]["name"]
    done = run_kiosq(srv, "server", "rotate-key", "--finish")
    assert done.returncode == 0 and f"dropped {first['keys'][0]}" in done.stdout, done.stderr
    data = json.loads((srv.data_dir / KEY_FILE).read_text())
    assert [k["id"] for k in data["seal"]] == [first["key_id"]]
    second.stop()
    srv.stop()
    srv.start()
    assert get(srv, f"/api/applications/{numbers[0]}/personal", "admin").status_code == 200
    srv.stop()
    (srv.data_dir / KEY_FILE).write_bytes(before)  # the backup from before the rotation
    done = start_fails(srv)
    assert done.returncode == 1 and f"its newest key {first['keys'][0]} was retired" in done.stderr, done.stderr
    assert "applicant.key" in done.stderr and "Traceback" not in done.stderr


def test_records_the_retention_run_erased_are_under_no_key(store, tmp_path):
    """An erased application keeps an empty `applicant` (queue/store/retention.py): it neither
    stops the start nor waits to be sealed again."""
    personal = Personal.in_dir(tmp_path)
    assert store.adopt_keys(personal) is None
    file_records(store, personal, 3)
    store.db.run(lambda: store.db.execute("UPDATE applications SET applicant = ? WHERE seq = (SELECT MIN(seq) "
                                          "FROM applications)", (b"",)), on_retry=lambda: None)
    assert store.adopt_keys(personal) is None and store.sealed_key_ids() == {personal.key_id}
    rotated = key_rotation.rotate(store, personal)
    assert rotated.resealed == 2 and rotated.left == 0
    assert key_rotation.finish(store, personal) and store.adopt_keys(Personal.in_dir(tmp_path)) is None
