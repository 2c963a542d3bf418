"""The terminal's outbox and sender (kiosk/outbox.py) and the client's application calls,
against a real `kiosq server` on 127.0.0.1 that the tests stop, start and SIGKILL. No Kivy:
this is the part of filing an application that runs without a screen."""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import sqlite3
import stat
import threading
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
import requests

from kiosq.content.model import id_number_valid
from kiosq.kiosk.hall_client import HallClient, ServerRefused, ServerUnreachable
from kiosq.kiosk.outbox import KEY_FILE, Outbox, OutboxError, provisional_prefix
from kiosq.kiosk.outbox_sender import Sender, Submitted, submit
from tests.queue.conftest import ServerProcess

pytestmark = pytest.mark.slow

ITEM = "GA-SFZ-002"  # 居民身份证换领 in the sample catalog: fileable, its form below
SERVER_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$")  # queue/routers/applications.py NUMBER
DIGITS = "零一二三四五六七八九"


def id_number(i: int) -> str:
    """A fictitious resident ID number with a valid check digit: area code 9999xx, which
    GB/T 2260 does not use (as devices/sim/idcard.py's test cards)."""
    body = f"9999{i % 100:02d}{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return body + next(c for c in "0123456789X" if id_number_valid(body + c))


def person(i: int) -> dict:
    return {"id_number": id_number(i), "name": "测试" + "".join(DIGITS[int(d)] for d in f"{i:03d}"),
            "phone": f"139{i:08d}", "address": f"虚构省示例市演示区测试路{i}号", "source": "card"}


def form(applicant: dict, **changes) -> dict:
    return {"applicant_name": applicant["name"], "id_number": applicant["id_number"], "phone": applicant["phone"],
            "reason": "expired", "delivery": "window", "promise": True, **changes}


def start_server(tmp: Path) -> ServerProcess:
    srv = ServerProcess(tmp / "server", tmp)
    srv.make_tokens()
    return srv.start()


@pytest.fixture(scope="module")
def hall_srv(tmp_path_factory):
    """One server for the tests that neither stop it nor use up the lookup throttle."""
    srv = start_server(tmp_path_factory.mktemp("outbox-server"))
    yield srv
    srv.stop()


@pytest.fixture
def own_srv(tmp_path):
    """A server of this test's own: it is stopped, killed or throttled."""
    srv = start_server(tmp_path)
    yield srv
    srv.kill()


@pytest.fixture
def kiosk(tmp_path, request):
    """A factory of (Outbox, Sender) pairs on this test's data folder; all closed at teardown."""
    opened: list = []

    def make(srv: ServerProcess | None, terminal_id: str, sender: bool = True, **kwargs):
        outbox = Outbox(tmp_path / "kiosk", terminal_id)
        opened.append(outbox)
        if not sender:
            return outbox, None
        client = kwargs.pop("client", None) or HallClient(srv.url, srv.tokens["terminal"], timeout=2)
        kwargs = {"interval": 0.05, "first_delay": 0.05, "max_delay": 0.2, **kwargs}
        snd = Sender(outbox, client, **kwargs)
        opened.append(snd)
        return outbox, snd

    yield make
    for thing in reversed(opened):
        if isinstance(thing, Sender):
            thing.stop()
            assert not thing.running
        else:
            thing.close()


def wait_until(done, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.02)  # polling interval of a bounded wait
    return done()


def server_applications(srv: ServerProcess, prefix: str | None) -> list[dict]:
    """What the server holds from a terminal whose provisional numbers start with `prefix`
    (None: everything; the staff list, with the admin token)."""
    resp = requests.get(srv.url + "/api/applications", timeout=10,
                        headers={"Authorization": f"Bearer {srv.tokens['admin']}"})
    resp.raise_for_status()
    found = resp.json()["applications"]
    return found if prefix is None else [a for a in found if (a["provisional_no"] or "").startswith(prefix + "-")]


class CountingClient(HallClient):
    """The real client, counting the filing attempts per provisional number and their outcome."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, int] = {}
        self.unreachable = 0

    def file_application(self, item, applicant, values, key, provisional_no=None):
        self.calls[provisional_no] = self.calls.get(provisional_no, 0) + 1
        try:
            return super().file_application(item, applicant, values, key, provisional_no)
        except ServerUnreachable:
            self.unreachable += 1
            raise


# -- the client ----------------------------------------------------------------------


def test_client_files_an_application_once_per_key_and_looks_it_up(hall_srv):
    client = HallClient(hall_srv.url, hall_srv.tokens["terminal"])
    who = person(1)
    filed = client.file_application(ITEM, who, form(who), "key-client-1", "CL1-20261122-0001")
    assert filed["tracking_no"].startswith("SQ") and filed["status"] == "submitted"
    assert filed["provisional_no"] == "CL1-20261122-0001" and filed["item"] == ITEM
    assert set(filed) == {"tracking_no", "status", "promised_date", "legal_date", "submitted_at", "item",
                          "item_name", "department", "provisional_no", "lookup_code"}
    assert client.file_application(ITEM, who, form(who), "key-client-1", "CL1-20261122-0001") == filed
    # by the ID card, by the tracking number and by the provisional number
    assert [a["tracking_no"] for a in client.lookup_by_id(who["id_number"])] == [filed["tracking_no"]]
    for number in (filed["tracking_no"], "CL1-20261122-0001"):
        got = client.application(number, filed["lookup_code"])
        assert got["tracking_no"] == filed["tracking_no"] and got["status"] == "submitted"
        assert who["id_number"] not in json.dumps(got)  # masked


def test_client_refusals_carry_the_servers_words_and_no_personal_data(hall_srv):
    client = HallClient(hall_srv.url, hall_srv.tokens["terminal"])
    who = person(2)
    with pytest.raises(ServerRefused) as refused:
        client.file_application(ITEM, who, form(who, reason="bogus"), "key-client-2")
    assert (refused.value.status, refused.value.code) == (422, "invalid_values")
    assert "reason" in refused.value.detail
    with pytest.raises(ServerRefused) as refused:
        client.file_application("NO-SUCH-ITEM", who, form(who), "key-client-3")
    assert (refused.value.status, refused.value.code) == (404, "not_found")
    with pytest.raises(ServerRefused) as refused:
        HallClient(hall_srv.url, hall_srv.tokens["staff"]).file_application(ITEM, who, form(who), "key-client-4")
    assert refused.value.status == 403
    with pytest.raises(ServerUnreachable) as away:
        HallClient("http://127.0.0.1:9", "x").application("SQ20261122-0001", "K7MW2QXR")
    assert "K7MW2QXR" not in str(away.value)


def test_wrong_codes_are_refused_then_throttled_with_retry_after(own_srv):
    client = HallClient(own_srv.url, own_srv.tokens["terminal"])
    who = person(3)
    filed = client.file_application(ITEM, who, form(who), "key-throttle")
    wrong = "ABCD2345" if filed["lookup_code"] != "ABCD2345" else "ABCD2346"
    for _ in range(5):
        with pytest.raises(ServerRefused) as refused:
            client.application(filed["tracking_no"], wrong)
        assert (refused.value.status, refused.value.code, refused.value.retry_after) == (403, "no_match", None)
    with pytest.raises(ServerRefused) as refused:
        client.application(filed["tracking_no"], filed["lookup_code"])
    assert refused.value.status == 429 and refused.value.code == "too_many_tries"
    assert isinstance(refused.value.retry_after, int) and 0 < refused.value.retry_after <= 600
    assert filed["lookup_code"] not in str(refused.value)


# -- provisional numbers -------------------------------------------------------------


@pytest.mark.parametrize("terminal_id, prefix", [
    ("T01", "T01"), ("kiosk-01", "kiosk-01"), ("SQ20261122", "TSQ20261122"), ("sq-1", "Tsq-1"),
    ("kiosk_01.hall.local", "kiosk-01-hall-local-*"), ("自助机", "T-*"), ("--a--", "a-*"), ("x" * 60, "x" * 19 + "-*"),
])
def test_provisional_prefix_is_readable_and_never_a_tracking_number(terminal_id, prefix):
    made = provisional_prefix(terminal_id)
    if prefix.endswith("*"):  # changed to fit: four hex digits of the id's hash follow
        assert made.startswith(prefix[:-1]) and len(made) == len(prefix) + 3 and int(made[-4:], 16) >= 0
    else:
        assert made == prefix
    number = f"{made}-20261122-0007"
    assert SERVER_NUMBER.fullmatch(number) and not number.upper().startswith("SQ") and len(made) <= 24


def test_terminals_whose_ids_read_alike_get_different_prefixes():
    alike = [("自助终端01", "二楼终端01"), ("T_01", "T-01"),
             ("hall3-floor1-selfservice-01", "hall3-floor1-selfservice-02")]
    for one, other in alike:
        assert provisional_prefix(one) != provisional_prefix(other), (one, other)


def test_provisional_numbers_count_per_day_and_continue_after_reopening(tmp_path):
    day = [datetime(2026, 11, 22, 23, 59).astimezone()]
    outbox = Outbox(tmp_path, "T01", clock=lambda: day[0])
    who = person(4)
    assert [outbox.add(ITEM, who, form(who)).provisional_no for _ in range(2)] == [
        "T01-20261122-0001", "T01-20261122-0002"]
    outbox.close()
    outbox = Outbox(tmp_path, "T01", clock=lambda: day[0])
    assert outbox.add(ITEM, who, form(who)).provisional_no == "T01-20261122-0003"
    day[0] = day[0].replace(day=23)
    assert outbox.add(ITEM, who, form(who)).provisional_no == "T01-20261123-0001"
    keys = [p.key for p in outbox.pending()]
    assert len(set(keys)) == 4 and all(re.fullmatch(r"[0-9a-f-]{36}", k) for k in keys)
    outbox.close()


# -- submitting ------------------------------------------------------------------------


def test_submit_online_returns_the_tracking_number_and_drops_the_personal_data(hall_srv, kiosk):
    told = []
    outbox, sender = kiosk(hall_srv, "ON1", on_delivered=lambda n, f: told.append((n, f)))
    who = person(5)
    done = submit(outbox, sender, ITEM, who, form(who), wait=5)
    assert isinstance(done, Submitted) and done.delivered and done.refused is None
    assert done.filed["tracking_no"].startswith("SQ") and done.filed["provisional_no"] == done.provisional_no
    assert outbox.result(done.provisional_no) == done.filed and outbox.state(done.provisional_no) == "delivered"
    assert wait_until(lambda: told == [(done.provisional_no, done.filed)], 5)
    # The lookup code went to the waiting submit() (for the receipt), not into the outbox.
    assert done.lookup_code and "lookup_code" not in done.filed and not sender._codes
    assert HallClient(hall_srv.url, None).application(done.provisional_no, done.lookup_code)["status"] == "submitted"
    assert outbox.pending_count() == 0
    with pytest.raises(OutboxError):
        outbox.open(done.provisional_no)
    with closing(sqlite3.connect(outbox.path)) as db:
        row = db.execute("SELECT sealed, tracking_no FROM applications WHERE provisional_no = ?",
                         (done.provisional_no,)).fetchone()
    assert row == (None, done.filed["tracking_no"])
    assert [a["tracking_no"] for a in server_applications(hall_srv, "ON1")] == [done.filed["tracking_no"]]


def test_submit_offline_gives_the_provisional_number_and_delivers_it_when_the_server_is_back(own_srv, kiosk):
    outbox, sender = kiosk(own_srv, "OFF1")
    own_srv.stop()
    who = person(6)
    started = time.monotonic()
    done = submit(outbox, sender, ITEM, who, form(who), wait=5)
    assert time.monotonic() - started < 4  # the failed attempt ends the wait: nobody waits for a dead server
    assert not done.delivered and done.refused is None
    assert re.fullmatch(r"OFF1-\d{8}-0001", done.provisional_no)
    assert outbox.state(done.provisional_no) == "pending" and sender.state == "unreachable"
    own_srv.start()
    sender.kick()
    assert wait_until(lambda: outbox.result(done.provisional_no) is not None)
    filed = outbox.result(done.provisional_no)
    # Delivered after the citizen left: nobody waits for its code, so it is kept nowhere
    # (the receipt sent the citizen to the kiosk's ID-card lookup).
    assert done.lookup_code is None and "lookup_code" not in filed and not sender._codes
    (got,) = HallClient(own_srv.url, own_srv.tokens["terminal"]).lookup_by_id(who["id_number"])
    assert got["tracking_no"] == filed["tracking_no"] and got["provisional_no"] == done.provisional_no


def test_the_issue_200_applications_while_the_server_is_killed_and_restarted(own_srv, kiosk):
    """Issue #7 item 6: every one of 200 applications arrives exactly once, though the
    server is SIGKILLed at random moments in the middle of the deliveries."""
    seed = random.randrange(1 << 30)
    rng, pace = random.Random(seed), random.Random(seed + 1)  # kills; the citizens' pace (their thread)
    client = CountingClient(own_srv.url, own_srv.tokens["terminal"], timeout=2)
    delivered: list[str] = []
    outbox, sender = kiosk(own_srv, "T01", client=client, on_delivered=lambda n, f: delivered.append(n))
    people = [person(100 + i) for i in range(200)]
    added: list[str] = []

    def citizens() -> None:
        for who in people:
            added.append(outbox.add(ITEM, who, form(who)).provisional_no)
            sender.kick()
            time.sleep(pace.uniform(0, 0.03))

    adder = threading.Thread(target=citizens, daemon=True)
    adder.start()
    kills = 0
    while kills < 5:
        # kill while deliveries are under way: after a random number more have arrived
        target = len(delivered) + rng.randint(1, 30)
        wait_until(lambda t=target: len(delivered) >= t or (not adder.is_alive() and outbox.pending_count() == 0), 10)
        own_srv.kill()
        kills += 1
        time.sleep(rng.uniform(0, 0.3))
        own_srv.start()
    adder.join(30)
    assert not adder.is_alive()
    assert wait_until(lambda: outbox.pending_count() == 0, 30), f"seed {seed}: {outbox.pending_count()} pending"

    assert len(added) == len(set(added)) == 200
    assert outbox.refused() == [], f"seed {seed}"
    on_server = server_applications(own_srv, None)  # this server's every application
    assert len(on_server) == 200, f"seed {seed}: {len(on_server)} on the server, not exactly once"
    assert sorted(a["provisional_no"] for a in on_server) == sorted(added), f"seed {seed}"
    assert len({a["tracking_no"] for a in on_server}) == 200
    tracking = {a["provisional_no"]: a["tracking_no"] for a in on_server}
    assert all(outbox.result(n)["tracking_no"] == tracking[n] for n in added)
    assert sorted(delivered) == sorted(added)  # each told to the screen once
    # the sender did meet the dead server (retries), and every receipt's number resolves
    assert client.unreachable > 0 and sum(client.calls.values()) > 200, f"seed {seed}"
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {own_srv.tokens['admin']}"
        for number in added:
            got = http.get(f"{own_srv.url}/api/applications/{number}", timeout=5)
            assert got.status_code == 200, got.text
            assert got.json()["tracking_no"] == tracking[number]


def test_a_kiosk_killed_between_send_and_record_does_not_file_twice(hall_srv, kiosk):
    outbox, _ = kiosk(hall_srv, "KILL1", sender=False)
    who = person(7)
    pending = outbox.add(ITEM, who, form(who))
    record = outbox.open(pending.provisional_no)
    # The sender's request reached the server and was committed; the kiosk died before
    # recording the answer.
    first = HallClient(hall_srv.url, hall_srv.tokens["terminal"]).file_application(
        pending.item, record["applicant"], record["values"], pending.key, pending.provisional_no)
    outbox.close()
    outbox, _sender = kiosk(hall_srv, "KILL1")  # the restarted kiosk, on the same outbox
    assert [p.provisional_no for p in outbox.pending()] == [pending.provisional_no]
    assert wait_until(lambda: outbox.pending_count() == 0, 10)
    assert outbox.result(pending.provisional_no)["tracking_no"] == first["tracking_no"]
    assert [a["tracking_no"] for a in server_applications(hall_srv, "KILL1")] == [first["tracking_no"]]


def test_refused_applications_are_kept_for_staff_and_not_retried(hall_srv, kiosk):
    client = CountingClient(hall_srv.url, hall_srv.tokens["terminal"])
    outbox, sender = kiosk(hall_srv, "REF1", sender=False)
    a, b, c = person(8), person(9), person(10)
    bad_values = outbox.add(ITEM, a, form(a, reason="bogus")).provisional_no  # the catalog changed
    bad_item = outbox.add("GONE-001", b, form(b)).provisional_no
    good = outbox.add(ITEM, c, form(c)).provisional_no
    told = []
    _, sender = kiosk(hall_srv, "REF1", client=client, on_refused=lambda n, r: told.append((n, r.code)))
    assert wait_until(lambda: outbox.pending_count() == 0, 10)
    assert outbox.result(good) is not None  # the refused ones did not hold it up
    refused = {r.provisional_no: r for r in outbox.refused()}
    assert list(refused) == [bad_values, bad_item] and outbox.refused_count() == 2
    assert told == [(bad_values, "invalid_values"), (bad_item, "not_found")]  # the maintenance count can follow
    assert (refused[bad_values].status, refused[bad_values].code) == (422, "invalid_values")
    assert "reason" in refused[bad_values].detail
    assert (refused[bad_item].status, refused[bad_item].code, refused[bad_item].item) == (404, "not_found", "GONE-001")
    for r, who in ((refused[bad_values], a), (refused[bad_item], b)):
        assert who["id_number"] not in r.detail and who["name"] not in r.detail and who["phone"] not in r.detail
    sender.kick()
    time.sleep(0.5)  # ten of the sender's intervals: a refused row would have been sent again by now
    assert client.calls == {bad_values: 1, bad_item: 1, good: 1}
    assert outbox.state(bad_values) == "refused" and outbox.result(bad_values) is None
    assert [x["provisional_no"] for x in server_applications(hall_srv, "REF1")] == [good]
    # staff: send one again (still refused: the values are still wrong), discard the other
    assert outbox.retry(bad_values)
    assert wait_until(lambda: client.calls[bad_values] == 2 and outbox.state(bad_values) == "refused", 10)
    assert outbox.discard(bad_item) and outbox.state(bad_item) is None and outbox.refused_count() == 1


def test_submit_tells_at_once_when_the_server_refuses(hall_srv, kiosk):
    outbox, sender = kiosk(hall_srv, "REF2")
    who = person(11)
    done = submit(outbox, sender, ITEM, who, form(who, promise=False), wait=5)
    assert not done.delivered and done.refused is not None
    assert (done.refused.status, done.refused.code) == (422, "invalid_values") and "promise" in done.refused.detail


def test_a_refused_token_blocks_the_outbox_instead_of_refusing_applications(hall_srv, kiosk):
    client = HallClient(hall_srv.url, "not-a-token")
    outbox, sender = kiosk(hall_srv, "TOK1", client=client)
    who = person(12)
    done = submit(outbox, sender, ITEM, who, form(who), wait=5)
    assert not done.delivered and done.refused is None
    assert wait_until(lambda: sender.state == "blocked", 5) and "401" in sender.last_error
    assert outbox.refused_count() == 0 and outbox.pending_count() == 1
    client.token = hall_srv.tokens["terminal"]  # IT re-enrolled the terminal
    sender.kick()
    assert wait_until(lambda: outbox.result(done.provisional_no) is not None, 10)
    assert sender.state == "idle"


# -- on the disk -----------------------------------------------------------------------


def test_no_personal_data_in_clear_in_the_outbox_files_or_the_log(hall_srv, kiosk, caplog):
    caplog.set_level(logging.DEBUG)
    outbox, _ = kiosk(hall_srv, "PRIV1", sender=False)
    people = [person(200 + i) for i in range(20)]
    for who in people:
        outbox.add(ITEM, who, form(who))

    def secrets(who: dict) -> list[bytes]:
        found = [who["id_number"].encode(), who["phone"].encode()]
        for text in (who["name"], who["address"]):
            found += [text.encode("utf-8"), text.encode("gb18030"), text.encode("utf-16-le"),
                      json.dumps(text).strip('"').encode()]  # \uXXXX escapes
        return found

    def on_disk() -> bytes:
        files = [outbox.path.with_name(outbox.path.name + s) for s in ("", "-wal", "-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())

    def check(data: bytes) -> None:
        for who in people:
            for secret in secrets(who):
                assert secret not in data, f"{secret!r} in clear"

    data = on_disk()
    assert outbox.path.with_name("outbox.db-wal").stat().st_size > 0 and b"PRIV1-" in data  # the grep sees rows
    check(data)
    # and after delivery (the sealed blobs deleted), in the files and in every log line
    _, _sender = kiosk(hall_srv, "PRIV1")
    assert wait_until(lambda: outbox.pending_count() == 0, 10)
    check(on_disk())
    check("\n".join(r.getMessage() for r in caplog.records).encode())


def test_files_are_owner_only_and_the_key_is_not_in_the_database(tmp_path):
    outbox = Outbox(tmp_path / "kiosk", "T01")
    who = person(13)
    outbox.add(ITEM, who, form(who))
    folder = tmp_path / "kiosk"
    for name in (KEY_FILE, "outbox.db", "outbox.db-wal", "outbox.db-shm"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    # durable at every commit: WAL, synced in full (what a power cut after "accepted" needs)
    assert outbox.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with closing(sqlite3.connect(outbox.path)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    key = json.loads((folder / KEY_FILE).read_text())["seal"][-1]["key"]
    data = b"".join((folder / n).read_bytes() for n in ("outbox.db", "outbox.db-wal"))
    assert key.encode() not in data and base64.b64decode(key) not in data
    outbox.close()


def test_the_outbox_survives_closing_and_reopening(hall_srv, kiosk):
    outbox, _ = kiosk(hall_srv, "REOPEN1", sender=False)
    people = [person(20 + i) for i in range(3)]
    added = [outbox.add(ITEM, who, form(who)) for who in people]
    outbox.close()
    outbox, _ = kiosk(hall_srv, "REOPEN1", sender=False)
    again = outbox.pending()
    assert [(p.provisional_no, p.key, p.item) for p in again] == [(p.provisional_no, p.key, p.item) for p in added]
    assert [outbox.open(p.provisional_no) for p in again] == [{"applicant": w, "values": form(w)} for w in people]
    _, _sender = kiosk(hall_srv, "REOPEN1")
    assert wait_until(lambda: outbox.pending_count() == 0, 10)
    outbox.close()
    outbox, _ = kiosk(hall_srv, "REOPEN1", sender=False)
    assert all(outbox.result(p.provisional_no)["tracking_no"].startswith("SQ") for p in added)
    assert outbox.prune(days=0) == 3 and outbox.result(added[0].provisional_no) is None


def test_a_missing_or_readable_key_file_is_an_error_not_a_new_key(tmp_path):
    folder = tmp_path / "kiosk"
    outbox = Outbox(folder, "T01")
    who = person(14)
    number = outbox.add(ITEM, who, form(who)).provisional_no
    outbox.close()
    os.chmod(folder / KEY_FILE, 0o644)
    with pytest.raises(OutboxError, match="chmod 600"):
        Outbox(folder, "T01")
    (folder / KEY_FILE).rename(folder / "elsewhere.key")
    with pytest.raises(OutboxError, match="missing"):
        Outbox(folder, "T01")
    assert not (folder / KEY_FILE).exists()
    (folder / "elsewhere.key").rename(folder / KEY_FILE)
    os.chmod(folder / KEY_FILE, 0o600)
    outbox = Outbox(folder, "T01")
    assert outbox.open(number)["applicant"] == who
    outbox.close()
