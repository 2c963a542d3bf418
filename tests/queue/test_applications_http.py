"""Applications over real HTTP (`kiosq server` subprocesses, tests/queue/conftest.py): an
acknowledged application survives kill -9, no personal data is on disk or in the log in
clear, and the webhook notifier retries, keeps its record and resumes after a restart."""

import base64
import http.server
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import requests

from kiosq.content.model import id_number_valid

pytestmark = pytest.mark.slow
TIMEOUT = 10.0


def fictitious_id(area: int, birth: str, seq: int) -> str:
    """An ID number with a valid check digit and an area code (9999xx) no province uses."""
    stem = f"9999{area:02d}{birth}{seq:03d}"
    return next(stem + c for c in "0123456789X" if id_number_valid(stem + c))


PEOPLE = [  # (id, name, phone): all made up
    (fictitious_id(11, "19780214", 101), "欧阳测试", "13500001111"),
    (fictitious_id(12, "19991231", 202), "测试四", "13600002222"),
    (fictitious_id(13, "20010705", 303), "虚构名", "15700003333"),
]


def application(id_number, name, phone, **extra):
    return {"item": "GA-SFZ-002", "applicant": {"id_number": id_number, "name": name, "phone": phone,
                                                "address": "虚构省示例市演示区测试路9号", "source": "card"},
            "values": {"applicant_name": name, "id_number": id_number, "phone": phone, "reason": "expired",
                       "delivery": "post", "mailing_address": "虚构省示例市演示区测试路9号", "promise": True},
            **extra}


def post(srv, path, role, body=None, key=None):
    headers = {"Authorization": f"Bearer {srv.tokens[role]}"}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(srv.url + path, json=body, headers=headers, timeout=TIMEOUT)


def get(srv, path, role=None):
    headers = {"Authorization": f"Bearer {srv.tokens[role]}"} if role else {}
    return requests.get(srv.url + path, headers=headers, timeout=TIMEOUT)


def lookup(srv, number, code, role=None, address=None):
    """A citizen's lookup with the receipt's code (from `address`: the hall's proxy's
    X-Forwarded-For, which the server believes from 127.0.0.1)."""
    headers = {"Authorization": f"Bearer {srv.tokens[role]}"} if role else {}
    if address:
        headers["X-Forwarded-For"] = address
    return requests.post(f"{srv.url}/api/applications/{number}/lookup", json={"code": code}, headers=headers,
                         timeout=TIMEOUT)


def wait_for(check, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)  # polling interval of a bounded wait
    raise AssertionError(f"timed out waiting for {what}")


def test_an_acknowledged_application_survives_kill_9(hall_server):
    srv = hall_server()
    id_number, name, phone = PEOPLE[0]
    r = post(srv, "/api/applications", "terminal", application(id_number, name, phone, provisional_no="P-T-0001"),
             key="crash-1")
    assert r.status_code == 201
    filed = r.json()
    srv.kill()
    srv.start()
    after = lookup(srv, filed["tracking_no"], filed["lookup_code"])
    assert after.status_code == 200 and after.json()["status"] == "submitted"
    assert after.json()["promised_date"] == filed["promised_date"]
    # The outbox retries after the crash, with the same key or only the provisional number.
    for key in ("crash-1", "crash-1-retry"):
        again = post(srv, "/api/applications", "terminal",
                     application(id_number, name, phone, provisional_no="P-T-0001"), key=key)
        assert again.status_code == 201 and again.json() == filed and again.headers["Idempotent-Replayed"] == "true"
    assert get(srv, "/api/applications", "admin").json()["count"] == 1
    # The day's counter survived too: the next number follows.
    nxt = post(srv, "/api/applications", "terminal", application(*PEOPLE[1]), key="crash-2").json()
    assert nxt["tracking_no"].endswith("-0002")


def database_files(srv, request) -> list[Path]:
    """The files the database keeps its rows in: SQLite's file, WAL and index; PostgreSQL's
    files of this database and the cluster's WAL, after a checkpoint has written them."""
    if srv.database is None:
        return [srv.data_dir / name for name in ("kiosq.db", "kiosq.db-wal", "kiosq.db-shm")]
    cluster = request.getfixturevalue("pg_cluster")
    cluster.admin().execute("CHECKPOINT")
    (oid,) = cluster.admin().execute("SELECT oid FROM pg_database WHERE datname = %s",
                                     (srv.database.rsplit("/", 1)[1],)).fetchone()
    data = cluster.folder / "data"
    return [*(data / "base" / str(oid)).iterdir(), *sorted((data / "pg_wal").glob("0*"))]


def test_no_personal_data_in_clear_on_disk_or_in_the_log(hall_server, request):
    srv = hall_server()
    numbers, codes = [], []
    for i, (id_number, name, phone) in enumerate(PEOPLE):
        r = post(srv, "/api/applications", "terminal", application(id_number, name, phone), key=f"pd-{i}")
        assert r.status_code == 201
        numbers.append(r.json()["tracking_no"])
        codes.append(r.json()["lookup_code"])
        # A replay answers the same code (sealed with the record, not kept in clear).
        again = post(srv, "/api/applications", "terminal", application(id_number, name, phone), key=f"pd-{i}")
        assert again.json()["lookup_code"] == codes[-1] and again.headers["Idempotent-Replayed"] == "true"
        # Every path that touches the data: lookups right and wrong, by card, staff views, actions.
        assert lookup(srv, numbers[-1], codes[-1].lower()).status_code == 200
        assert lookup(srv, numbers[-1], "ABCD2345").status_code == 403
        assert post(srv, "/api/applications/lookup", "terminal", {"id_number": id_number}).status_code == 200
        assert post(srv, f"/api/applications/{numbers[-1]}/accept", "staff").status_code == 200
        assert get(srv, f"/api/applications/{numbers[-1]}/personal", "admin").json()["applicant"]["phone"] == phone
    bad = application(PEOPLE[0][0][:-1] + "0", PEOPLE[0][1], "1" * 11)  # invalid: refused, must not be logged
    assert post(srv, "/api/applications", "terminal", bad, key="pd-bad").status_code == 422
    assert get(srv, "/api/applications", "staff").json()["count"] == 3

    key_file = srv.data_dir / "applicant.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    files = database_files(srv, request)
    if srv.database is None:
        assert files[1].stat().st_size > 0  # the server still runs: the rows are (also) in the WAL

    def secrets():
        for code in codes:  # a lookup code, however it might be written
            yield "lookup code", code.encode()
            yield "lookup code", f"{code[:4]}-{code[4:]}".encode()
            yield "lookup code", code.lower().encode()
        for id_number, name, phone in PEOPLE:
            yield id_number, id_number.encode()
            yield id_number, id_number[:17].encode()  # without the check digit
            yield name, name.encode("utf-8")
            yield name, name.encode("gb18030")
            yield phone, phone.encode()
        yield "address", "测试路9号".encode()

    def search(files):
        blobs = {f.name: f.read_bytes() for f in files if f.exists()}
        return [(label, name) for name, blob in blobs.items() for label, needle in secrets() if needle in blob]

    # The search does see what is stored in clear: tracking numbers and item names.
    everything = b"".join(f.read_bytes() for f in files if f.exists())
    assert numbers[0].encode() in everything and "居民身份证换领".encode() in everything
    assert search(files) == []
    srv.kill()  # a crash leaves the WAL as it is
    assert search(files) == []
    log = Path(srv.log_path)
    assert search([log]) == [] and "personal data of" in log.read_text("utf-8")
    # The key is in its own file and nowhere in the database.
    key = json.loads(key_file.read_text())
    stored = b"".join(f.read_bytes() for f in files if f.exists())
    secret_keys = [k["key"] for k in key["seal"]] + [key["hash"]]
    assert search(files) == [] and not [k for k in secret_keys if k.encode() in stored or base64.b64decode(k) in stored]


# -- the webhook ------------------------------------------------------------------------


class Receiver:
    """A local webhook: answers 500 to the first `fail` requests (or, with `garbage`, a line
    that is not HTTP), then 200; keeps them all."""

    def __init__(self, fail: int = 0, garbage: bool = False) -> None:
        self.fail, self.garbage = fail, garbage
        self.requests: list[tuple[dict, dict]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.fail
                if failing and receiver.garbage:
                    self.wfile.write(b"garbage\r\n\r\n")
                    self.close_connection = True
                    return
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def receivers():
    made = []

    def make(fail=0, garbage=False):
        made.append(Receiver(fail, garbage))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hall_with_webhook(data_dir: Path, url: str) -> None:
    default = (Path(__file__).resolve().parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "hall.toml").write_text(default + f'\n[notify]\nwebhook_url = "{url}"\nretry_seconds = 0.2\n'
                                        "max_retry_seconds = 1\n", "utf-8")


def test_the_webhook_is_retried_until_the_receiver_takes_it(hall_server, receivers, tmp_path):
    receiver = receivers(fail=2)
    hall_with_webhook(tmp_path / "hook", receiver.url)
    srv = hall_server(tmp_path / "hook")
    id_number, name, phone = PEOPLE[2]
    filed = post(srv, "/api/applications", "terminal", application(id_number, name, phone), key="w1")
    number = filed.json()["tracking_no"]
    wait_for(lambda: len(receiver.requests) >= 3, what="three deliveries")
    headers, payload = receiver.requests[-1]
    assert payload["tracking_no"] == number and payload["status"] == "submitted" and payload["phone"] == phone
    assert payload["item_name"] == "居民身份证换领" and "id_number" not in json.dumps(payload)
    assert name not in json.dumps(payload, ensure_ascii=False)
    assert len({h["Idempotency-Key"] for h, _ in receiver.requests}) == 1  # the same notification each time

    def record():
        out = get(srv, "/api/notifications", "admin").json()["notifications"]
        return out if out and out[0]["state"] == "sent" else None

    sent = wait_for(record, what="the record to say sent")[0]
    assert (sent["tracking_no"], sent["attempts"], sent["last_error"]) == (number, 3, "HTTP 500 Internal Server Error")
    assert "phone" not in sent["payload"]
    # The next change goes out at once; a pending rejection is not the citizen's news.
    post(srv, f"/api/applications/{number}/accept", "staff")
    post(srv, f"/api/applications/{number}/reject", "staff", {"note": "测试"})
    wait_for(lambda: len(receiver.requests) >= 4, what="the accept notice")
    assert receiver.requests[3][1]["status"] == "accepted"
    assert [n["status"] for n in get(srv, "/api/notifications", "admin").json()["notifications"]] == [
        "accepted", "submitted"]
    assert get(srv, "/api/notifications", "staff").status_code == 403
    assert phone not in srv.log(full=True)


def test_a_receiver_answering_broken_http_is_retried_not_fatal(hall_server, receivers, tmp_path):
    receiver = receivers(fail=2, garbage=True)
    hall_with_webhook(tmp_path / "garbage", receiver.url + "?key=SECRET-API-KEY")
    srv = hall_server(tmp_path / "garbage")
    first = post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="g1").json()["tracking_no"]
    wait_for(lambda: len(receiver.requests) >= 3, what="two broken answers, then a good one")

    def sent():
        out = get(srv, "/api/notifications", "admin").json()["notifications"]
        return out if out and out[0]["state"] == "sent" else None

    note = wait_for(sent, what="the record to say sent")[0]
    assert note["tracking_no"] == first and note["attempts"] == 3 and "broken HTTP" in note["last_error"]
    # the sender lives on: the next application is notified too
    post(srv, f"/api/applications/{first}/accept", "staff")
    wait_for(lambda: len(receiver.requests) >= 4, what="the next notice")
    assert "SECRET-API-KEY" not in srv.log(full=True)  # the gateway's key is not logged


def test_queued_notifications_are_sent_after_a_restart(hall_server, receivers, tmp_path):
    receiver = receivers()
    gone_port = receiver.server.server_address[1]
    receiver.close()  # nobody listens: every try fails
    hall_with_webhook(tmp_path / "resume", f"http://127.0.0.1:{gone_port}/sms")
    srv = hall_server(tmp_path / "resume")
    number = post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="r1").json()["tracking_no"]

    def failed_once():
        out = get(srv, "/api/notifications", "admin").json()["notifications"]
        return out and out[0]["attempts"] >= 1 and out[0]["state"] == "queued"

    wait_for(failed_once, what="a failed attempt")
    notes = get(srv, "/api/notifications", "admin").json()["notifications"]
    assert "cannot reach the webhook" in notes[0]["last_error"]
    srv.kill()
    # The receiver comes back on the same port; so does the server, which resumes sending.
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", gone_port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        srv.start()
        wait_for(lambda: got, what="the delivery after the restart")
        assert got[0]["tracking_no"] == number and got[0]["phone"] == PEOPLE[0][2]
        sent = wait_for(lambda: [n for n in get(srv, "/api/notifications?state=sent", "admin").json()["notifications"]],
                        what="the record")
        assert sent[0]["tracking_no"] == number
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_the_data_folder_keeps_its_key_between_starts(hall_server):
    srv = hall_server()
    key_before = (srv.data_dir / "applicant.key").read_bytes()
    id_number, name, phone = PEOPLE[1]
    filed = post(srv, "/api/applications", "terminal", application(id_number, name, phone), key="k")
    number = filed.json()["tracking_no"]
    srv.stop()
    srv.start()
    assert (srv.data_dir / "applicant.key").read_bytes() == key_before
    assert lookup(srv, number, filed.json()["lookup_code"]).json()["applicant"]["name"] == "测*四"
    os.chmod(srv.data_dir / "applicant.key", 0o644)
    srv.stop()
    with pytest.raises(pytest.fail.Exception) as failed:  # start() fails: the server refused to start
        srv.start(timeout=5)
    assert "chmod 600" in str(failed.value)


def test_numbers_typed_into_a_note_are_masked_before_they_are_stored_or_sent(hall_server, receivers, tmp_path,
                                                                             request):
    receiver = receivers()
    hall_with_webhook(tmp_path / "notes", receiver.url)
    srv = hall_server(tmp_path / "notes")
    id_number, name, phone = PEOPLE[1]
    number = post(srv, "/api/applications", "terminal", application(id_number, name, phone), key="n1").json()[
        "tracking_no"]
    card = "6222 0212 3456 7890"
    note = f"证件号 {id_number} 与照片不符，请携带银行卡 {card} 并留电话 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
    assert post(srv, f"/api/applications/{number}/return", "staff", {"note": note}).status_code == 200
    masked = (f"证件号 {id_number[:3]}{'*' * 11}{id_number[-4:]} 与照片不符，请携带银行卡 {'*' * 12}7890 "
              f"并留电话 {phone[:3]}****{phone[-4:]}")
    assert get(srv, f"/api/applications/{number}", "staff").json()["history"][-1]["note"] == masked
    payload = wait_for(lambda: next((p for _h, p in receiver.requests if p["status"] == "returned"), None),
                       what="the return's notification")
    assert payload["note"] == masked
    sent = json.dumps(receiver.requests, ensure_ascii=False)
    assert id_number not in sent and "6222021234567890" not in sent and card not in sent
    stored = b"".join(f.read_bytes() for f in database_files(srv, request) if f.exists())
    assert id_number.encode() not in stored and card.encode() not in stored and b"3456 7890" not in stored


def test_the_lookup_code_over_http(hall_server):
    """POST /api/applications/{no}/lookup on a real server: anyone with the code (no token, a
    terminal's, a staff token alike), a bad token refused; a wrong code and an unknown number
    answer the same bytes; wrong codes from one address lock out that address for that number
    only (429 with Retry-After), never the right code from another address or another number."""
    srv = hall_server()
    filed = [post(srv, "/api/applications", "terminal", application(*who), key=f"lc-{i}").json()
             for i, who in enumerate(PEOPLE[:2])]
    (number, code), (other, other_code) = [(f["tracking_no"], f["lookup_code"]) for f in filed]
    for role in (None, "terminal", "staff"):
        r = lookup(srv, number, code, role)
        assert r.status_code == 200 and r.json()["tracking_no"] == number, (role, r.text)
        assert r.json()["applicant"]["name"] == "欧**试" and code not in r.text
    bad = requests.post(f"{srv.url}/api/applications/{number}/lookup", json={"code": code}, timeout=TIMEOUT,
                        headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    # The code is in the 201 only: the staff's views of it do not show it.
    for path in (f"/api/applications/{number}", "/api/applications"):
        shown = get(srv, path, "admin")
        assert shown.status_code == 200 and code not in shown.text and "lookup_code" not in shown.text
    assert code not in get(srv, f"/api/applications/{number}/personal", "admin").text
    # No public GET any more; the last 4 of the ID number open nothing.
    for path in (f"/api/applications/{number}", f"/api/applications/{number}?id_last4={PEOPLE[0][0][-4:]}"):
        refused = get(srv, path)
        assert refused.status_code == 403 and refused.json()["error"] == "lookup_code_required"
    wrong_code = "ABCD2345" if code != "ABCD2345" else "ABCD2346"
    wrong = lookup(srv, number, wrong_code, address="203.0.113.9")
    unknown = lookup(srv, "SQ20990101-0001", code, address="203.0.113.9")
    assert wrong.status_code == unknown.status_code == 403 and wrong.content == unknown.content
    assert wrong.json()["error"] == "no_match"
    # Throttling per address and number.
    for _ in range(4):  # with the one above: 5 wrong codes from 203.0.113.9 for this number
        assert lookup(srv, number, wrong_code, address="203.0.113.9").status_code == 403
    locked = lookup(srv, number, code, address="203.0.113.9")
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_tries"
    assert 0 < int(locked.headers["Retry-After"]) <= 600
    assert lookup(srv, number, code, address="198.51.100.20").status_code == 200  # the citizen's own phone
    assert lookup(srv, other, other_code, address="203.0.113.9").status_code == 200  # another number
    assert lookup(srv, number, code, "terminal").status_code == 200  # a kiosk counts as its own asker
