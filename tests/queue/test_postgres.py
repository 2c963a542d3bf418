"""What only the PostgreSQL store does, in process: several stores (as several server
processes would) writing one database at once stay exactly-once, events commit in the
order of their ids and wake the other stores' listeners, and a database that is not there
or a URL with a password is refused in one clear sentence."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest
from fastapi.testclient import TestClient

from kiosq.queue.api import create_app
from kiosq.queue.store.database import DatabaseChoice, DatabaseUrlError, choose
from kiosq.queue.store.errors import Unavailable
from tests.queue.conftest import KIOSQ, free_port

pytestmark = pytest.mark.postgresql_only


def together(n: int, work) -> list:
    """`work(i)` in n threads started at once; their results in order (the first error raised)."""
    results: list = [None] * n
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def test_one_idempotency_key_from_two_processes_is_one_ticket(store, reopen):
    stores = [store, reopen(store)]
    for round_ in range(20):
        got = together(2, lambda i, r=round_: stores[i].issue_ticket("A", caller="T01", idempotency_key=f"k{r}"))
        assert got[0][0].id == got[1][0].id and sorted(replayed for _, replayed in got) == [False, True]
    assert [t.label for t in store.tickets_of_day()] == [f"A{n:03d}" for n in range(1, 21)]


def test_application_numbers_and_provisional_links_are_exactly_once_across_processes(store, reopen):
    from kiosq.queue.items import ItemCatalog

    item = ItemCatalog(store.data_dir).all()[0]  # a sample item
    stores = [store, reopen(store), reopen(store)]

    def file(i: int):
        mine = []
        for n in range(15):
            # Each terminal's provisional number is sent by two processes at once (a retry
            # that reached the other one): one application.
            no = f"P-T0{i}-{n}"
            for s in (stores[i], stores[(i + 1) % 3]):
                app, _ = s.submit_application(item, terminal=f"T0{i}", id_hash=f"h{i}", sealed=b"x",
                                              fingerprint=f"f{i}-{n}", provisional_no=no, caller=f"c{i}",
                                              idempotency_key=f"k{i}-{n}")
                mine.append((no, app.tracking_no))
        return mine

    filed = [pair for batch in together(3, file) for pair in batch]
    by_provisional: dict[str, set[str]] = {}
    for no, tracking in filed:
        by_provisional.setdefault(no, set()).add(tracking)
    assert all(len(v) == 1 for v in by_provisional.values()), "a provisional number got two applications"
    numbers = sorted(v.pop() for v in by_provisional.values())
    assert [int(n[-4:]) for n in numbers] == list(range(1, 46))  # the day's counter: 1..45, no gap, no repeat


def test_window_actions_from_two_processes_call_each_ticket_once(store, reopen):
    other = reopen(store)
    for _ in range(30):
        store.issue_ticket("A")

    def call(i: int):
        s, window = (store, 1) if i == 0 else (other, 2)  # windows 1 and 2 both serve A
        called = []
        for _ in range(15):
            outcome = s.call_next(window)
            called.append(outcome.ticket.label)
        return called

    first, second = together(2, call)
    assert sorted(first + second) == [f"A{n:03d}" for n in range(1, 31)]


def test_the_day_rolls_over_once_whichever_process_writes_first(store, reopen, clock):
    others = [reopen(store) for _ in range(3)]
    for _ in range(5):
        store.issue_ticket("A")
    clock.advance(days=1)
    together(4, lambda i: ([store, *others][i]).issue_ticket("B"))
    closing = [e for e in store.events_after(0) if "business day ended" in e.data]
    assert len(closing) == 5, "the rollover ran more than once (or not at all)"
    assert sorted(t.label for t in store.tickets_of_day()) == ["B001", "B002", "B003", "B004"]


def test_event_ids_commit_in_their_order_so_a_reader_never_misses_one(store, reopen):
    """A stream reads the events after the last id it sent. Were a higher id committed
    before a lower one, a read between the two commits would skip the lower for good."""
    writers = [reopen(store) for _ in range(3)]
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        cursor = 0
        while not done.is_set() or cursor < store.last_event_id():
            for ev in store.events_after(cursor, 50):
                seen.append(ev.id)
                cursor = ev.id

    reader = threading.Thread(target=read)
    reader.start()
    try:
        together(3, lambda i: [writers[i].issue_ticket("ABC"[i]) for _ in range(60)])
    finally:
        done.set()
        reader.join(60)
    everything = [r[0] for r in store.db.rows("SELECT id FROM events ORDER BY id")]
    assert len(everything) == 180
    assert seen == everything, "the reader missed or repeated events"


def test_another_process_commit_wakes_this_one(store, reopen):
    heard: queue.Queue[int] = queue.Queue()
    store.listeners.append(heard.put)
    store.start_background()
    other = reopen(store)
    assert heard.get(timeout=10) == 0  # the listener connected, and says "look" once for what it may have missed
    ticket, _ = other.issue_ticket("A")
    assert heard.get(timeout=5) == other.last_event_id()
    assert json.loads(store.events_after(0)[-1].data)["ticket"]["number"] == ticket.label


def test_health_reports_the_database_and_a_gone_database_is_a_503(store, pg_cluster):
    with TestClient(create_app(store)) as client:
        body = client.get("/api/health").json()
        assert body["database"]["kind"] == "postgresql" and body["database"]["ok"] is True
        assert body["database"]["port"] == pg_cluster.port and body["database"]["latency_ms"] >= 0
        assert "password" not in json.dumps(body)
        pg_cluster.drop_database(store.database.url.rsplit("/", 1)[1])  # WITH (FORCE): our connection dies
        r = client.get("/api/health")
        assert r.status_code == 503 and r.json()["database"]["ok"] is False
        assert "PostgreSQL database" in r.json()["database"]["error"]
        r = client.post("/api/tickets", json={"service": "A"},
                        headers={"Authorization": "Bearer x", "Idempotency-Key": "k"})
        assert r.status_code in (401, 503)  # the token cannot be checked: never a 500


def test_a_change_on_a_gone_database_is_unavailable_not_a_driver_error(store, pg_cluster):
    pg_cluster.drop_database(store.database.url.rsplit("/", 1)[1])
    with pytest.raises(Unavailable, match="PostgreSQL database"):
        store.issue_ticket("A")


def test_a_url_with_a_password_is_refused_and_the_password_never_shown(tmp_path):
    with pytest.raises(DatabaseUrlError, match="holds a password"):
        choose("postgresql://kiosq:s3cret@db:5432/kiosq", None, None)
    done = subprocess.run([*KIOSQ, "server", "token", "--role", "admin", "--name", "x", "--data-dir",
                           str(tmp_path), "--database", "postgresql://kiosq:s3cret@db:5432/kiosq"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "password file" in done.stderr and "s3cret" not in done.stderr + done.stdout
    assert not (tmp_path / "kiosq.db").exists()
    with pytest.raises(DatabaseUrlError, match="not a PostgreSQL URL"):
        choose("mysql://db/kiosq", None, None)
    assert choose(None, None, None) == DatabaseChoice()


def test_a_database_that_is_not_there_is_one_clear_line(tmp_path):
    url = f"postgresql://kiosq@127.0.0.1:{free_port()}/kiosq"
    done = subprocess.run([*KIOSQ, "server", "token", "--role", "admin", "--name", "x", "--data-dir",
                           str(tmp_path), "--database", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot connect to the PostgreSQL database 'kiosq' on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr and "check that PostgreSQL runs" in done.stderr


def test_processes_started_together_on_an_empty_database_migrate_it_once(tmp_path, hall, empty_database):
    from kiosq.queue.store import MIGRATIONS, Store

    stores = together(3, lambda i: Store(tmp_path / f"{i}.db", hall, database=empty_database))
    try:
        assert stores[0].db.rows("SELECT version FROM migrations ORDER BY version") == [
            (n,) for n in range(1, len(MIGRATIONS) + 1)]
        assert stores[0].db.rows("SELECT COUNT(*) FROM windows") == [(len(hall.windows),)]
    finally:
        for s in stores:
            s.close()


def test_the_listener_comes_back_after_its_connection_is_cut(store, reopen, pg_cluster):
    heard: queue.Queue[int] = queue.Queue()
    store.listeners.append(heard.put)
    store.start_background()
    assert heard.get(timeout=10) == 0  # listening
    name = store.database.url.rsplit("/", 1)[1]
    # A failover, or an operator: every connection to the database is cut, ours included.
    pg_cluster.admin().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    assert heard.get(timeout=15) == 0  # listening again, and it says "look" for what it may have missed
    other = reopen(store)
    other.issue_ticket("A")
    assert heard.get(timeout=5) == other.last_event_id()
    assert store.ticket(other.tickets_of_day()[0].id).label == "A001"  # the requests' connection came back too


def test_a_password_file_must_be_there_and_the_owners_only(tmp_path):
    url = "postgresql://kiosq@db.hall.lan:5432/kiosq"
    with pytest.raises(DatabaseUrlError, match="password_file .*nope cannot be read"):
        choose(url, None, str(tmp_path / "nope"))
    secret = tmp_path / "db.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with pytest.raises(DatabaseUrlError, match=r"can be read by others \(mode 644\); run `chmod 600"):
        choose(url, None, str(secret))
    secret.chmod(0o600)
    assert choose(url, None, str(secret)) == DatabaseChoice(url, str(secret), "--database")


def test_a_wrong_password_is_named_as_such(tmp_path, store):
    from datetime import UTC, datetime

    from kiosq.queue.store.postgres import PostgresDatabase
    from kiosq.queue.store.schema_pg import MIGRATIONS_PG

    wrong = tmp_path / "db.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    with pytest.raises(Unavailable, match='password authentication failed for user "kiosq"') as refused:
        PostgresDatabase(store.database.url, MIGRATIONS_PG, datetime.now(UTC), str(wrong))
    assert "\t" not in str(refused.value) and "not-the-password" not in str(refused.value)
