"""Retention in process (TestClient and the store on a real SQLite file and on PostgreSQL,
the test's clock): personal data of closed applications erased after [retention]
personal_days while the figures and the anonymous history stay, open applications kept
however old, events deleted after events_days, one run per business day across two stores
on one database, the hall file's checks, and SQLite's secure_delete."""

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from kiosq.queue import retention
from kiosq.queue.api import create_app
from kiosq.queue.config import HallConfigError, load_hall, parse_hall
from kiosq.queue.store import Who
from tests.queue.test_applications import ID1, ID2, NAME1, NAME2, PHONE1, act, auth, file


@pytest.fixture
def tokens(store):
    years = timedelta(days=3650)  # the tests move the clock by months
    return {"terminal": store.create_token("terminal", "T01"),
            "staff": store.create_token("staff", "张敏", (1, 2), ttl=years),
            "supervisor": store.create_token("supervisor", "李科长", (1, 4), ttl=years),
            "admin": store.create_token("admin", "boss", ttl=years)}


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as c:
        yield c


def staff_view(client, tokens, number):
    r = client.get(f"/api/applications/{number}", headers=auth(tokens["staff"]))
    assert r.status_code == 200, r.text
    return r.json()


COUNTS = ("submitted", "completed", "rejected", "open", "completion_rate", "completed_early")


def figures(client, tokens):
    r = client.get("/api/applications/stats?from=2026-11-01&to=2026-11-30", headers=auth(tokens["admin"]))
    assert r.status_code == 200, r.text
    return r.json()["hall"]


def test_personal_data_of_a_closed_application_is_erased_and_its_figures_stay(client, tokens, store, clock):
    done = file(client, tokens, "r1").json()["tracking_no"]
    act(client, tokens, done, "return", note=f"请补充户口簿，{NAME1} 电话 {PHONE1}")
    for action in ("accept", "complete"):
        act(client, tokens, done, action)
    still_open = file(client, tokens, "r2", id_number=ID2, name=NAME2).json()["tracking_no"]
    before = figures(client, tokens)
    assert (before["submitted"], before["completed"], before["open"]) == (2, 1, 1)

    clock.advance(days=179)  # not yet: 180 days after closing
    assert retention.run_now(store, force=False)["applications_erased"] == 0
    assert staff_view(client, tokens, done)["applicant"]["name"] != NAME1  # masked, but there
    clock.advance(days=2)
    run = retention.run_now(store, force=False)
    assert run["state"] == "done" and run["applications_erased"] == 1 and run["personal_days"] == 180

    view = staff_view(client, tokens, done)
    assert view["status"] == "completed" and view["applicant"] is None and view["values"] == {}
    assert view["personal_erased"] == "personal data erased after 180 days"
    assert [s["action"] for s in view["history"]] == ["submit", "return", "accept", "complete"]
    assert all(s["note"] is None for s in view["history"]) and view["history"][1]["by"] == "张敏"
    r = client.get(f"/api/applications/{done}/personal", headers=auth(tokens["staff"]))
    assert r.status_code == 410 and r.json()["error"] == "personal_data_erased"
    listed = client.get("/api/applications", headers=auth(tokens["staff"])).json()["applications"]
    assert {a["tracking_no"]: a["personal_erased"] for a in listed} == {
        done: "personal data erased after 180 days", still_open: None}
    # The figures count it as before; nothing of the person is left in its row.
    after = figures(client, tokens)
    assert {k: after[k] for k in COUNTS} == {k: before[k] for k in COUNTS}
    id_hash, sealed = store.applicant_record(done)
    assert (id_hash, bytes(sealed)) == ("", b"")
    # A lookup by card no longer finds it; the open one of the other person is untouched.
    cards = client.post("/api/applications/lookup", json={"id_number": ID1}, headers=auth(tokens["terminal"]))
    assert cards.status_code == 200 and cards.json()["applications"] == []
    other = staff_view(client, tokens, still_open)
    assert other["applicant"] is not None and other["personal_erased"] is None


def test_an_open_application_is_kept_however_old(client, tokens, store, clock):
    number = file(client, tokens, "o1").json()["tracking_no"]
    act(client, tokens, number, "return", note="缺材料")  # waits for the citizen, for years
    clock.advance(days=3 * 365)
    assert retention.run_now(store, force=False)["applications_erased"] == 0
    view = staff_view(client, tokens, number)
    assert view["status"] == "returned" and view["applicant"] is not None and view["history"][1]["note"] == "缺材料"


def test_a_rejected_application_is_erased_too(client, tokens, store, clock):
    number = file(client, tokens, "j1").json()["tracking_no"]
    act(client, tokens, number, "reject", note=f"{ID1} 不符合条件")
    act(client, tokens, number, "approve-rejection", role="supervisor")
    clock.advance(days=181)
    assert retention.run_now(store, force=False)["applications_erased"] == 1
    public = client.get(f"/api/applications/{number}", headers=auth(tokens["admin"])).json()
    assert public["status"] == "rejected" and public["personal_erased"] and ID1 not in json.dumps(public)


def test_events_older_than_events_days_are_deleted_today_s_stay(client, tokens, store, clock):
    headers = {**auth(tokens["staff"]), "Idempotency-Key": "e1"}
    assert client.post("/api/tickets", json={"service": "A"}, headers=headers).status_code == 201
    first = store.last_event_id()
    clock.advance(days=29)
    assert retention.run_now(store, force=False)["events_deleted"] == 0
    clock.advance(days=2)
    headers["Idempotency-Key"] = "e2"
    assert client.post("/api/tickets", json={"service": "A"}, headers=headers).status_code == 201
    today = [e.id for e in store.events_after(first)]
    run = retention.run_now(store, force=False)
    assert run["events_deleted"] >= 1 and run["events_days"] == 30
    assert [e.id for e in store.events_after(0)] == today  # the old day's gone, today's all there
    assert store.last_event_id() == today[-1]


def test_the_newest_event_stays_however_old(store, clock):
    store.set_notice("欢迎")
    last = store.last_event_id()
    clock.advance(days=400)
    assert retention.run_now(store, force=False)["events_deleted"] == 0
    assert [e.id for e in store.events_after(0)] == [last]  # ids go on from it


def test_one_run_per_business_day_across_two_stores(store, reopen, clock):
    other = reopen(store)
    assert retention.is_due(store) and retention.is_due(other)
    for s in (store, other):
        for _ in retention.steps(s):
            pass
    runs = store.audit_entries(action="retention.ran")
    assert len(runs) == 1 and runs[0].actor == "hall" and runs[0].detail["applications_erased"] == 0
    assert not retention.is_due(store) and not retention.is_due(other)
    assert other.retention_run()["state"] == "done"
    clock.advance(days=1)  # the next business day: due again, done once again
    for s in (other, store):
        for _ in retention.steps(s):
            pass
    assert len(store.audit_entries(action="retention.ran")) == 2


def test_a_run_claimed_by_a_process_that_died_is_taken_over(store, reopen, clock):
    assert store.claim_retention() is not None  # ... and the process dies here
    other = reopen(store)
    assert list(retention.steps(other)) == [] and other.retention_run()["state"] == "running"
    clock.advance(minutes=61)
    for _ in retention.steps(other):
        pass
    assert other.retention_run()["state"] == "done"


def test_the_next_run_is_at_the_next_rollover_once_today_s_is_done(store, clock):
    report = retention.report(store)
    assert report["last_run"] is None and report["next_run"] == "2026-11-23T10:00:00+08:00"  # due now
    retention.run_now(store, force=False)
    report = retention.report(store)
    assert report["next_run"] == "2026-11-24T04:00:00+08:00" and report["last_run"]["state"] == "done"
    assert report["last_run"]["finished_at"] == "2026-11-23T10:00:00+08:00"


def test_a_dry_run_counts_and_changes_nothing(client, tokens, store, clock):
    number = file(client, tokens, "d1").json()["tracking_no"]
    for action in ("accept", "complete"):
        act(client, tokens, number, action)
    clock.advance(days=200)
    before = store.retention_run()
    assert retention.dry_run(store)["applications_erased"] == 1
    assert staff_view(client, tokens, number)["applicant"] is not None and store.retention_run() == before
    assert retention.is_due(store)


def test_old_sessions_and_throttle_rows_go(store, clock):
    store.throttle_count(("no:SQ1",), clock.now)
    store.create_user("clerk", "王芳", "staff", (1,), "correct horse battery")
    store.open_session("clerk", "h" * 64, clock.now + timedelta(hours=12), Who("clerk", "user", "127.0.0.1"))
    clock.advance(days=31)
    run = retention.run_now(store, force=False)
    assert (run["sessions_deleted"], run["throttle_deleted"]) == (1, 1)
    assert store.session("h" * 64) is None


@pytest.mark.sqlite_only("a PRAGMA of SQLite; PostgreSQL has no such setting (docs/architecture.md)")
def test_secure_delete_is_on(store):
    assert store.conn is not None
    assert store.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


@pytest.mark.sqlite_only("reads the SQLite file's bytes")
def test_an_erased_record_leaves_no_bytes_in_the_file(client, tokens, store, clock):
    number = file(client, tokens, "s1").json()["tracking_no"]
    for action in ("accept", "complete"):
        act(client, tokens, number, action)
    _hash, sealed = store.applicant_record(number)
    clock.advance(days=181)
    retention.run_now(store, force=False)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert bytes(sealed)[12:40] not in store.path.read_bytes()


# -- the hall file -----------------------------------------------------------------------

def hall_with(extra: str):
    from tests.queue.conftest import DEFAULT_HALL

    return parse_hall(DEFAULT_HALL.read_text("utf-8") + "\n" + extra, source="hall.toml")


def test_retention_and_terminals_defaults():
    hall = load_hall()
    assert (hall.retention.personal_days, hall.retention.events_days) == (180, 30)
    assert hall.terminals.priorities == ("normal", "elderly")
    assert (hall.terminals.tickets_per_minute, hall.terminals.lookups_per_minute) == (12, 30)
    hall = hall_with("[retention]\npersonal_days = 365\nevents_days = 7\n"
                     "[terminals]\npriorities = [\"normal\"]\ntickets_per_minute = 4\n")
    assert (hall.retention.personal_days, hall.retention.events_days) == (365, 7)
    assert hall.terminals.priorities == ("normal",) and hall.terminals.tickets_per_minute == 4


@pytest.mark.parametrize("extra, message", [
    ("[retention]\npersonal_days = 0", "hall.toml: retention.personal_days: Input should be greater than or equal"),
    ("[retention]\nevents_days = 2.5", "hall.toml: retention.events_days: Input should be a valid integer"),
    ("[retention]\nkeep = 3", "hall.toml: retention.keep: unknown key"),
    ("[terminals]\npriorities = [\"normal\", \"green\"]", "green-channel tickets are given out by staff"),
    ("[terminals]\npriorities = [\"vip\"]", "terminals.priorities: unknown priority 'vip'"),
    ("[terminals]\npriorities = []", "terminals.priorities: "),
    ("[terminals]\ntickets_per_minute = -1", "terminals.tickets_per_minute: Input should be greater than or equal"),
    ("[terminals]\nlookups_per_minute = 20000", "terminals.lookups_per_minute: Input should be less than or equal"),
])
def test_bad_retention_and_terminals_settings_are_named(extra, message):
    with pytest.raises(HallConfigError) as err:
        hall_with(extra)
    assert message in str(err.value)

