"""Staff notes are personal data (#17): sealed at rest like the applicant's record, on
SQLite and PostgreSQL, over real HTTP against `kiosq server` processes. A return's and a
rejection's notes are on no database file in clear, yet staff, the citizen's lookup and
the webhook read them (masked where they held a number); `rotate-key` seals them again
under the new key; notes a database from before kept in clear are sealed at the server's
start; the retention run erases them with the applicant's data."""

import json

import pytest

from kiosq.base import keyring
from kiosq.queue.config import load_hall
from kiosq.queue.personal import Personal
from kiosq.queue.store import Store
from kiosq.queue.store.database import DatabaseChoice
from tests.queue.test_applications_http import (
    PEOPLE,
    application,
    database_files,
    get,
    hall_with_webhook,
    lookup,
    post,
    receivers,  # noqa: F401 (the fixture)
    wait_for,
)
from tests.queue.test_keys import run_kiosq

pytestmark = pytest.mark.slow
RETURN_NOTE = "请补充户口簿首页复印件，经办人核对原件"
REJECT_NOTE = "申请事项不属于本厅受理范围，请向户籍地派出所申请"
OLD_NOTE = "旧库里的明文备注，升级后应当封存"
# The columns sealed notes are in, and the clear ones a database from before kept them in.
SEALED_NOTES = (("application_steps", "sealed_note", "note"), ("applications", "rejection_sealed", "rejection_note"),
                ("notifications", "sealed_note", None))


def stored_bytes(srv, request) -> bytes:
    return b"".join(f.read_bytes() for f in database_files(srv, request) if f.exists())


def open_store(srv) -> Store:
    return Store.in_dir(srv.data_dir, load_hall(), database=DatabaseChoice(url=srv.database))


def note_key_ids(srv) -> set[str | None]:
    """The key ids the sealed notes are under, read from the database itself."""
    store = open_store(srv)
    try:
        return {keyring.id_of(bytes(blob)) for table, column, _clear in SEALED_NOTES
                for (blob,) in store.db.rows(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")}
    finally:
        store.close()


def file_return_and_reject(srv, approve: bool = True) -> tuple[str, str, str]:
    """Two applications: one returned with a note (and the applicant's phone in it), one
    rejected with a note (pending, or approved). Their numbers and the first's code."""
    first = post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="note-1").json()
    second = post(srv, "/api/applications", "terminal", application(*PEOPLE[1]), key="note-2").json()
    note = f"{RETURN_NOTE}，电话 {PEOPLE[0][2]}"
    assert post(srv, f"/api/applications/{first['tracking_no']}/return", "staff", {"note": note}).status_code == 200
    number = second["tracking_no"]
    assert post(srv, f"/api/applications/{number}/accept", "staff").status_code == 200
    assert post(srv, f"/api/applications/{number}/reject", "staff", {"note": REJECT_NOTE}).status_code == 200
    if approve:
        assert post(srv, f"/api/applications/{number}/approve-rejection", "admin").status_code == 200
    return first["tracking_no"], number, first["lookup_code"]


def masked_return_note() -> str:
    phone = PEOPLE[0][2]
    return f"{RETURN_NOTE}，电话 {phone[:3]}****{phone[-4:]}"


def test_notes_are_sealed_at_rest_and_read_where_they_are_shown(hall_server, receivers, tmp_path, request):
    receiver = receivers()
    hall_with_webhook(tmp_path / "hall", receiver.url)
    srv = hall_server(tmp_path / "hall")
    returned, rejected, code = file_return_and_reject(srv)

    # Staff see both notes, the rejection's also as the application's rejection.
    history = get(srv, f"/api/applications/{returned}", "staff").json()["history"]
    assert history[-1]["action"] == "return" and history[-1]["note"] == masked_return_note()
    view = get(srv, f"/api/applications/{rejected}", "staff").json()
    assert view["status"] == "rejected" and [s["note"] for s in view["history"] if s["action"] == "reject"] == [
        REJECT_NOTE]
    # The citizen's lookup says what to bring; the webhook told them too.
    public = lookup(srv, returned, code).json()
    assert masked_return_note() in json.dumps(public, ensure_ascii=False)
    wait_for(lambda: len([p for _h, p in receiver.requests if p["status"] in ("returned", "rejected")]) == 2,
             what="both notifications")
    sent = {p["status"]: p["note"] for _h, p in receiver.requests if p["status"] in ("returned", "rejected")}
    assert sent == {"returned": masked_return_note(), "rejected": REJECT_NOTE}
    listed = get(srv, "/api/notifications", "admin").json()["notifications"]
    assert {n["payload"]["note"] for n in listed if n["status"] in ("returned", "rejected")} == set(sent.values())

    # Nowhere in the database's files in clear (the search does find what is stored in clear).
    stored = stored_bytes(srv, request)
    assert returned.encode() in stored
    for text in (RETURN_NOTE, REJECT_NOTE, "户口簿首页", "派出所"):
        assert text.encode() not in stored, f"{text!r} is in the database in clear"
    srv.kill()
    stored = stored_bytes(srv, request)
    assert RETURN_NOTE.encode() not in stored and REJECT_NOTE.encode() not in stored
    # Each sealed under the applicant key, its id in front.
    assert note_key_ids(srv) == {Personal.in_dir(srv.data_dir).key_id}


def test_rotate_key_seals_the_notes_again(hall_server):
    srv = hall_server()
    returned, rejected, code = file_return_and_reject(srv)
    old = Personal.in_dir(srv.data_dir).key_id
    done = run_kiosq(srv, "server", "rotate-key", "--json")
    assert done.returncode == 0, done.stderr
    new = json.loads(done.stdout)["key_id"]
    assert note_key_ids(srv) == {new} != {old}
    done = run_kiosq(srv, "server", "rotate-key", "--finish")
    assert done.returncode == 0 and f"dropped {old}" in done.stdout, done.stderr
    srv.stop()
    srv.start()  # the old key is gone: the notes open with the new one alone
    assert lookup(srv, returned, code).json()["history"][-1]["note"] == masked_return_note()
    assert [s["note"] for s in get(srv, f"/api/applications/{rejected}", "staff").json()["history"]
            if s["action"] == "reject"] == [REJECT_NOTE]


def test_notes_a_database_from_before_kept_in_clear_are_sealed_at_the_start(hall_server):
    srv = hall_server()
    returned, rejected, _code = file_return_and_reject(srv, approve=False)
    assert get(srv, f"/api/applications/{rejected}", "staff").json()["rejection_pending"]["note"] == REJECT_NOTE
    srv.stop()
    # As a database from before sealed notes kept them: in the clear columns.
    store = open_store(srv)
    try:
        def unseal() -> None:
            store.db.execute("UPDATE application_steps SET note = ?, sealed_note = NULL WHERE tracking_no = ? "
                             "AND action = 'return'", (OLD_NOTE, returned))
            store.db.execute("UPDATE applications SET rejection_note = ?, rejection_sealed = NULL "
                             "WHERE tracking_no = ?", (OLD_NOTE, rejected))
            store.db.execute("INSERT INTO notifications (tracking_no, status, payload, state, created_at, sent_at) "
                             "VALUES (?, 'returned', ?, 'sent', '2026-01-05T02:00:00+00:00', "
                             "'2026-01-05T02:00:01+00:00')",
                             (returned, json.dumps({"tracking_no": returned, "note": OLD_NOTE}, ensure_ascii=False)))
        store.db.run(unseal, on_retry=lambda: None)
    finally:
        store.close()
    srv.start()
    assert get(srv, f"/api/applications/{returned}", "staff").json()["history"][-1]["note"] == OLD_NOTE
    assert get(srv, f"/api/applications/{rejected}", "staff").json()["rejection_pending"]["note"] == OLD_NOTE
    listed = get(srv, "/api/notifications", "admin").json()["notifications"]
    assert [n["payload"]["note"] for n in listed if n["tracking_no"] == returned] == [OLD_NOTE]
    store = open_store(srv)
    try:
        for table, _sealed, clear in SEALED_NOTES:
            if clear:
                assert store.db.one(f"SELECT COUNT(*) FROM {table} WHERE {clear} IS NOT NULL")[0] == 0
        assert store.db.one("SELECT COUNT(*) FROM notifications WHERE payload LIKE ?", (f"%{OLD_NOTE}%",))[0] == 0
    finally:
        store.close()
