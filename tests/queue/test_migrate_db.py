"""`kiosq server migrate-db --from DATA_DIR --to URL`: a hall copied from SQLite to an empty
PostgreSQL database reads the same there and goes on from where it was; a target that is
not empty is refused, and so is a folder without a database."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from kiosq.queue.items import ItemCatalog
from kiosq.queue.store import Store
from tests.queue.conftest import KIOSQ

pytestmark = pytest.mark.postgresql_only


def migrate(data_dir, url) -> subprocess.CompletedProcess:
    return subprocess.run([*KIOSQ, "server", "migrate-db", "--from", str(data_dir), "--to", url],
                          capture_output=True, text=True, timeout=120)


def a_day_of_work(store: Store) -> dict:
    """Tickets in every state, a paused window, a notice, tokens, an application with steps
    and a notification, an enrollment code: what a hall holds after a morning."""
    for service in "AABBCA":
        store.issue_ticket(service, caller="T01", idempotency_key=f"k-{service}-{len(store.tickets_of_day())}")
    store.call_next(1)
    store.act(1, "start")
    store.call_next(2)
    store.act(2, "no_show")
    store.set_window_state(4, paused=True)
    store.set_notice("午间暂停")
    secret = store.create_token("staff", "张敏", (1, 2))
    item = ItemCatalog(store.data_dir).all()[0]
    app, _ = store.submit_application(item, terminal="T01", id_hash="h", sealed=b"\x00sealed\xff", fingerprint="f",
                                      provisional_no="P-T01-1", caller="c", idempotency_key="a1", notify=True)
    store.act_on_application(app.tracking_no, "accept", "张敏", notify=True)
    return {"secret": secret, "tracking_no": app.tracking_no}


def test_a_hall_copied_to_postgresql_reads_the_same_and_goes_on(tmp_path, hall, clock, empty_database):
    source = Store.in_dir(tmp_path, hall, clock=clock)
    made = a_day_of_work(source)
    before = {"tickets": source.tickets_of_day(), "events": source.events_after(0), "windows": source.windows(),
              "waiting": source.waiting_counts(), "notice": source.notice(),
              "steps": source.application_steps(made["tracking_no"]),
              "applicant": source.applicant_record(made["tracking_no"]), "notes": source.notifications()}
    source.close()

    done = migrate(tmp_path, empty_database.url)
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout and "6 tickets" in done.stdout

    # The data folder now goes with the PostgreSQL database: a plain open finds it.
    assert (tmp_path / "database.url").read_text().strip() == empty_database.url
    from kiosq.queue.server import open_store
    copy = open_store(tmp_path, hall)
    try:
        copy.clock = clock
        assert copy.db.kind == "postgresql"
        after = {"tickets": copy.tickets_of_day(), "events": copy.events_after(0), "windows": copy.windows(),
                 "waiting": copy.waiting_counts(), "notice": copy.notice(),
                 "steps": copy.application_steps(made["tracking_no"]),
                 "applicant": copy.applicant_record(made["tracking_no"]), "notes": copy.notifications()}
        assert after == before
        assert copy.token(made["secret"]).name == "张敏"
        assert copy.application("P-T01-1").tracking_no == made["tracking_no"]
        # It goes on: numbers, ids and replays continue from the copy.
        last_event = copy.last_event_id()
        fresh, replayed = copy.issue_ticket("A", caller="T01", idempotency_key="k-A-0")
        assert replayed and fresh.label == "A001"
        new, _ = copy.issue_ticket("A")
        assert new.label == "A004" and copy.last_event_id() == last_event + 1
        assert int(new.id.split("-")[0]) == max(t.queue_seq for t in before["tickets"]) + 1
    finally:
        copy.close()


def test_a_target_that_is_not_empty_is_refused(tmp_path, hall, clock, empty_database, pg_cluster):
    source = Store.in_dir(tmp_path, hall, clock=clock)
    source.issue_ticket("A")
    source.close()
    assert migrate(tmp_path, empty_database.url).returncode == 0
    again = migrate(tmp_path, empty_database.url)
    assert again.returncode == 1 and "already holds kiosq data (in meta, tickets, events" in again.stderr

    other = pg_cluster.new_database("not_kiosq")
    try:
        with psycopg.connect(other) as conn:
            conn.execute("CREATE TABLE invoices (n int)")
        refused = migrate(tmp_path, other)
        assert refused.returncode == 1 and "not kiosq's (invoices)" in refused.stderr
    finally:
        pg_cluster.drop_database("not_kiosq")


def test_a_folder_without_a_database_is_refused(tmp_path, empty_database):
    done = migrate(tmp_path / "nothing", empty_database.url)
    assert done.returncode == 1 and "there is no kiosq database at" in done.stderr
    assert "Traceback" not in done.stderr
    with_password = migrate(tmp_path, empty_database.url.replace("kiosq@", "kiosq:pw@"))
    assert with_password.returncode == 1 and "holds a password" in with_password.stderr

