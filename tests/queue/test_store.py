"""The store on real SQLite files and real PostgreSQL databases (each test runs on both, see
tests/conftest.py): numbering, transactions, events, rollover, tokens."""

import asyncio
import json
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from kiosq.queue import engine
from kiosq.queue.store import MIGRATIONS, IdempotencyConflict, NotFound, Store, roll_over_daily
from kiosq.queue.store.rollover import next_rollover
from kiosq.queue.store.schema_pg import MIGRATIONS_PG

INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.errors.IntegrityError)


def labels(tickets):
    return [t.label for t in tickets]


def test_schema_is_migrated_once_and_recorded(tmp_path, hall, clock, empty_database, reopen):
    assert [name for name, _ in MIGRATIONS] == [name for name, _ in MIGRATIONS_PG]  # one numbering for both
    store = Store.in_dir(tmp_path, hall, clock=clock, database=empty_database)
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    again = reopen(store)  # reopening applies nothing twice
    assert again.db.rows("SELECT COUNT(*) FROM migrations") == [(len(MIGRATIONS),)]


@pytest.mark.sqlite_only("PRAGMAs of the SQLite file")
def test_wal_and_normal_sync(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_numbers_are_consecutive_per_service(store):
    issued = [store.issue_ticket(s)[0] for s in "AABABC"]
    assert labels(issued) == ["A001", "A002", "B001", "A003", "B002", "C001"]


def test_database_refuses_a_duplicate_number(store):
    store.issue_ticket("A")
    with pytest.raises(INTEGRITY_ERRORS, match="(?i)unique|duplicate key"):
        store.db.execute("INSERT INTO tickets (id, day, number_service, number, label, service, priority, rank, "
                           "status, issued_at) SELECT 'other', day, number_service, number, label, "
                           "service, priority, rank, status, issued_at FROM tickets")


def test_idempotency_key_returns_the_same_ticket(store):
    first, replayed = store.issue_ticket("A", caller="T01", idempotency_key="k")
    again, replayed_again = store.issue_ticket("A", caller="T01", idempotency_key="k")
    assert (again.id, replayed, replayed_again) == (first.id, False, True)
    assert labels(store.tickets_of_day()) == ["A001"]


def test_idempotency_key_is_per_caller_and_per_request(store):
    a, _ = store.issue_ticket("A", caller="T01", idempotency_key="k")
    b, _ = store.issue_ticket("A", caller="T02", idempotency_key="k")
    assert a.id != b.id
    with pytest.raises(IdempotencyConflict, match="another request"):
        store.issue_ticket("B", caller="T01", idempotency_key="k")


def test_every_change_appends_one_event_in_order(store):
    store.issue_ticket("A")
    store.call_next(1)
    store.act(1, "start")
    store.act(1, "finish")
    store.set_window_state(1, paused=True)
    events = store.events_after(0)
    assert [e.type for e in events] == ["ticket.issued", "ticket.called", "ticket.started", "ticket.finished",
                                        "window.paused"]
    assert [e.id for e in events] == sorted({e.id for e in events})


def test_a_refused_change_writes_nothing(store):
    store.issue_ticket("A")
    before = store.last_event_id()
    store.set_window_state(1, paused=True)
    with pytest.raises(engine.WindowPaused):
        store.call_next(1)
    with pytest.raises(engine.NotAllowed):
        store.act(2, "finish")
    assert store.last_event_id() == before + 1  # only the pause
    assert store.tickets_of_day()[0].status == "waiting"


def test_unknown_service_and_window(store):
    with pytest.raises(NotFound, match="unknown service 'Z'"):
        store.issue_ticket("Z")
    with pytest.raises(NotFound, match="no window 99"):
        store.call_next(99)


def test_sql_queue_order_matches_the_engine(store):
    """Windows call in exactly the order engine.queue_key defines, and ahead() agrees."""
    rng = random.Random(7)
    issued = [store.issue_ticket("C", rng.choice(engine.PRIORITIES[:3]))[0] for _ in range(40)]
    expected = sorted(issued, key=engine.queue_key)
    for t in issued:
        assert store.ahead(t) == expected.index(t)
    calls = []
    for _ in issued:
        calls.append(store.call_next(5).ticket.label)  # window 5 serves only C
        store.act(5, "finish")
    assert calls == labels(expected)


def test_transferred_ticket_keeps_number_and_goes_ahead_of_later_ones(store):
    a1, _ = store.issue_ticket("A")
    store.issue_ticket("B")
    store.issue_ticket("B")
    store.call_next(1)
    out = store.act(1, "transfer", "B")
    assert (out.ticket.label, out.ticket.service, out.ticket.status) == ("A001", "B", "waiting")
    assert store.call_next(3).ticket.label == "A001"  # window 3 serves B
    assert store.issue_ticket("A")[0].label == "A002"  # A's numbering is not disturbed


def test_reinstated_no_show_returns_to_its_place(store, clock):
    for _ in range(3):
        store.issue_ticket("A")
    store.call_next(1)
    store.act(1, "no_show")
    clock.advance(minutes=5)
    store.reinstate(1, "a001")  # staff type it in any case
    assert store.call_next(1).ticket.label == "A001"


def test_window_current_ticket_is_derived_and_survives_a_restart(store, reopen):
    store.issue_ticket("A")
    store.call_next(1)
    store.act(1, "start")
    store.set_window_state(4, paused=True)
    store.close()
    again = reopen(store)
    states = {w.number: w for w in again.windows()}
    assert states[1].current.label == "A001" and states[1].current.status == "serving"
    assert states[4].state == "paused" and states[2].current is None


def test_one_current_ticket_per_window_is_enforced_by_the_database(store):
    store.issue_ticket("A")
    store.issue_ticket("A")
    store.call_next(1)
    with pytest.raises(INTEGRITY_ERRORS):
        store.db.execute("UPDATE tickets SET status = 'called', \"window\" = 1 WHERE status = 'waiting'")


def test_paused_windows_do_not_count_for_estimates(store):
    for _ in range(4):
        store.issue_ticket("F")  # F is served by window 8 only
    last = store.tickets_of_day()[-1]
    assert store.eta(last) == 3 * 20
    store.set_window_state(8, paused=True)
    assert store.open_windows()["F"] == 0 and store.eta(last) is None


def test_rollover_restarts_numbering_and_closes_yesterday(store, clock):
    store.issue_ticket("A")
    store.issue_ticket("A")
    store.issue_ticket("B")
    store.call_next(1)
    store.act(1, "start")
    # The hall turns the day at 04:00 Shanghai time (20:00 UTC).
    clock.now = clock.now.replace(hour=19, minute=59)
    assert store.issue_ticket("A")[0].label == "A003"
    clock.advance(minutes=1)
    fresh, _ = store.issue_ticket("A")
    assert (fresh.label, fresh.day.isoformat()) == ("A001", "2026-11-24")
    yesterday = {t.label: t.status for t in store.tickets_of_day(fresh.day.replace(day=23))}
    assert yesterday == {"A001": "done", "A002": "cancelled", "A003": "cancelled", "B001": "cancelled"}
    assert store.waiting_counts()["A"] == 1 and store.waiting_counts()["B"] == 0
    assert store.windows()[0].current is None
    closing = [e for e in store.events_after(0) if "business day ended" in e.data]
    assert len(closing) == 4


def test_range_exhausted_is_refused_and_nothing_written(tmp_path, clock, database):
    from kiosq.queue.config import parse_hall
    small = parse_hall("""
[hall]
name = "小厅"
[[services]]
code = "A"
name = "甲"
name_en = "A"
first_number = 8
last_number = 9
[[windows]]
number = 1
name = "1"
services = ["A"]
""")
    s = Store(tmp_path / "k.db", small, clock=clock, database=database)
    assert labels(s.issue_ticket("A")[0] for _ in range(2)) == ["A008", "A009"]
    with pytest.raises(engine.RangeExhausted, match="A009"):
        s.issue_ticket("A")
    assert len(s.tickets_of_day()) == 2
    s.close()


def test_two_writers_on_one_database_never_share_a_number(tmp_path, hall, database):
    """The failure of 'max + 1 outside a transaction': several processes' worth of
    stores writing at once still number every ticket exactly once (SQLite's write lock, or
    on PostgreSQL the hall's advisory lock, taken by every change first)."""
    path = tmp_path / "shared.db"
    Store(path, hall, database=database).close()
    results: list[str] = []
    lock = threading.Lock()

    def worker():
        s = Store(path, hall, database=database)
        mine = [s.issue_ticket("A")[0].label for _ in range(150)]
        s.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [f"A{n:03d}" for n in range(1, 601)]


def test_tokens_are_stored_hashed_and_can_be_revoked(store):
    secret = store.create_token("staff", "张敏", (1, 2))
    assert store.token(secret).windows == (1, 2)
    assert secret not in repr(store.db.rows("SELECT * FROM tokens"))
    if store.conn is not None:  # SQLite: not in the file either
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert secret.encode() not in store.path.read_bytes()
    assert store.revoke_tokens("张敏") == 1
    assert store.token(secret) is None


@pytest.mark.parametrize("role, windows, message", [
    ("root", (), "unknown role"),
    ("staff", (), "needs the windows"),
    ("staff", (42,), "no window 42"),
])
def test_bad_tokens_are_refused(store, role, windows, message):
    with pytest.raises(ValueError, match=message):
        store.create_token(role, "x", windows)


def test_old_idempotency_keys_are_forgotten_at_rollover(store, clock):
    first, _ = store.issue_ticket("A", caller="T01", idempotency_key="old")
    clock.advance(days=1)
    assert store.issue_ticket("A", caller="T01", idempotency_key="old")[0].id == first.id  # still remembered
    clock.advance(days=2)
    again, replayed = store.issue_ticket("A", caller="T01", idempotency_key="old")
    assert again.id != first.id and not replayed


def test_waiting_counts_follow_every_kind_of_change(store, clock):
    """The trigger-kept counts equal a fresh count after issues, calls, no-shows,
    reinstatements, transfers, cancellations and a rollover."""
    def fresh():
        return {(d, s, r): n for d, s, r, n in store.db.rows(
            "SELECT day, service, rank, COUNT(*) FROM tickets WHERE status = 'waiting' GROUP BY 1, 2, 3")}

    def kept():
        return {(d, s, r): n for d, s, r, n in store.db.rows(
            "SELECT day, service, rank, n FROM waiting_counts WHERE n > 0")}

    rng = random.Random(3)
    for step in range(300):
        kind = rng.random()
        try:
            if kind < 0.45:
                store.issue_ticket(rng.choice("ABC"), rng.choice(engine.PRIORITIES))
            elif kind < 0.65:
                store.call_next(rng.choice([1, 2, 4]))
            elif kind < 0.75:
                store.act(rng.choice([1, 2, 4]), rng.choice(["no_show", "start", "finish", "recall"]))
            elif kind < 0.85:
                store.act(rng.choice([1, 2, 4]), "transfer", rng.choice("ABC"))
            elif kind < 0.9:
                gone = [t for t in store.tickets_of_day() if t.status == "no_show"]
                if gone:
                    store.reinstate(8, gone[0].label)
            elif kind < 0.97:
                waiting = [t for t in store.tickets_of_day() if t.status == "waiting"]
                if waiting:
                    store.cancel(rng.choice(waiting).id)
            else:
                clock.advance(hours=24)
        except engine.Refusal:
            pass
        assert kept() == fresh(), f"after step {step}"
    assert store.waiting_counts() == {code: sum(n for (d, s, _), n in fresh().items()
                                                if s == code and d == store.today().isoformat())
                                      for code in store.hall.services}


@pytest.mark.sqlite_only("SQLite's WAL checkpoints")
def test_the_checkpointer_thread_copies_the_wal_into_the_database(store):
    for _ in range(300):
        store.issue_ticket("A")
    before = store.path.stat().st_size  # the writer does not checkpoint below the safety threshold
    store.start_checkpointer(interval=0.01)
    deadline = time.monotonic() + 10
    while store.path.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.path.stat().st_size > before, "the checkpointer did not copy the WAL into the database"
    store.close()
    assert store.db._checkpointer is None  # close() stopped and joined it


def test_ticket_ids_are_unguessable_and_checked_whole(store):
    ticket, _ = store.issue_ticket("A")
    seq, _, secret = ticket.id.partition("-")
    assert len(secret) >= 16
    assert store.ticket(ticket.id) == ticket
    for forged in (f"{seq}-{'x' * len(secret)}", seq, f"{seq}-", f"x-{secret}", secret):
        with pytest.raises(NotFound):
            store.ticket(forged)


@pytest.mark.sqlite_only("a PRAGMA of the SQLite file")
def test_new_databases_use_small_pages(store):
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 1024


def test_yesterdays_last_call_is_not_current_after_the_day_turns(store, clock):
    store.issue_ticket("A")
    store.call_next(1)
    clock.advance(days=1)  # nothing has been written since: the rollover has not run yet
    assert store.windows()[0].current is None


def test_a_refused_first_change_of_the_day_does_not_skip_the_rollover(store, clock):
    store.issue_ticket("A")
    store.call_next(1)
    clock.advance(days=1)
    with pytest.raises(engine.NothingWaiting):
        store.call_next(3)  # the rollover runs in this transaction, which is rolled back
    store.issue_ticket("B")
    yesterday = store.tickets_of_day(store.today() - timedelta(days=1))
    assert [t.status for t in yesterday] == ["cancelled"]


def test_token_names_are_required_and_unique_among_active_tokens(store):
    store.create_token("terminal", "T01")
    with pytest.raises(ValueError, match="already named 'T01'"):
        store.create_token("admin", "T01")
    store.revoke_tokens("T01")
    store.create_token("terminal", "T01")  # a revoked name can be used again


def test_a_ticket_of_a_service_since_removed_still_reads(tmp_path, hall, clock, database):
    from kiosq.queue.config import parse_hall
    s = Store(tmp_path / "k.db", hall, clock=clock, database=database)
    ticket, _ = s.issue_ticket("F")
    s.close()
    smaller = parse_hall("""
[hall]
name = "小厅"
[[services]]
code = "A"
name = "户籍"
name_en = "Household"
[[windows]]
number = 1
name = "1"
services = ["A"]
""")
    s = Store(tmp_path / "k.db", smaller, clock=clock, database=database)
    again = s.ticket(ticket.id)
    assert (again.label, s.eta(again)) == ("F001", None)
    s.close()


def test_recent_calls_are_todays_newest_first(store, clock):
    for _ in range(3):
        store.issue_ticket("A")
    store.call_next(1)
    store.call_next(1)
    store.act(1, "recall")
    calls = store.recent_calls(limit=2)
    assert [(e.type, json.loads(e.data)["ticket"]["number"]) for e in calls] == \
        [("ticket.recalled", "A002"), ("ticket.called", "A002")]
    clock.advance(days=1)
    assert store.recent_calls() == []


def test_notice_is_kept_and_announced(store):
    assert store.notice() == ""
    store.set_notice("午间 12:00-13:30 部分窗口暂停")
    assert store.notice() == "午间 12:00-13:30 部分窗口暂停"
    last = store.events_after(0)[-1]
    assert last.type == "hall.notice" and json.loads(last.data)["notice"] == "午间 12:00-13:30 部分窗口暂停"


def test_reads_never_write_and_answer_for_the_new_day(store, clock):
    waiting, _ = store.issue_ticket("A")
    serving, _ = store.issue_ticket("B")
    store.call_next(3)
    store.act(3, "start")
    last = store.last_event_id()
    clock.advance(days=1)  # the rollover timer has not fired yet
    assert store.ticket(waiting.id).status == "cancelled" and store.ticket(serving.id).status == "done"
    assert store.waiting_counts()["A"] == 0 and all(w.current is None for w in store.windows())
    assert store.window(3).current is None and store.recent_calls() == []
    assert store.last_event_id() == last  # nothing was written
    yesterday = store.today() - timedelta(days=1)
    assert [t.status for t in store.tickets_of_day(yesterday)] == ["cancelled", "done"]  # as the rollover leaves them
    assert [r[0] for r in store.db.rows("SELECT status FROM tickets ORDER BY seq")] == ["waiting", "serving"]
    store.roll_over_if_due()  # what the timer does at the rollover hour
    assert [t.status for t in store.tickets_of_day(yesterday)] == ["cancelled", "done"]
    assert store.last_event_id() == last + 2


def test_the_rollover_timer_closes_the_day(store, clock):
    store.issue_ticket("A")
    clock.advance(days=1)

    async def run_briefly() -> None:
        timer = asyncio.create_task(roll_over_daily(store, check_seconds=0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if store.last_event_id() == 2:
                break
        timer.cancel()

    asyncio.run(run_briefly())
    # in the database, not only as read: the timer wrote the rollover
    assert [r[0] for r in store.db.rows("SELECT status FROM tickets")] == ["cancelled"]
    assert next_rollover(clock.now, store) == datetime(2026, 11, 24, 20, tzinfo=UTC)

