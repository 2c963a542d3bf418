"""People in process, on a clock the test moves: a session's idle timeout and absolute
lifetime from the hall file, what is stored (an argon2id hash, the session id only hashed),
the audit log refusing changes, the password rules, and the token life."""

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiosq.queue import people
from kiosq.queue.api import create_app
from kiosq.queue.config import parse_hall
from kiosq.queue.store import Store

PASSWORD = "correct horse battery"
ORIGIN = {"Origin": "http://testserver"}


DEFAULT_HALL = Path(__file__).resolve().parents[2] / "queue" / "halls" / "default.toml"


def hall_with(text: str):
    return parse_hall(DEFAULT_HALL.read_text("utf-8") + "\n" + text, source="test")


@pytest.fixture
def short_sessions():
    return hall_with("[sessions]\nidle_minutes = 30\nlifetime_hours = 2\n")


@pytest.fixture
def people_store(tmp_path, short_sessions, clock, database):
    s = Store.in_dir(tmp_path, short_sessions, clock=clock, database=database)
    s.create_user("zhangmin", "张敏", "staff", (1, 2), PASSWORD)
    yield s
    s.close()


@pytest.fixture
def client(people_store):
    with TestClient(create_app(people_store)) as c:
        yield c


def signed_in(client):
    r = client.post("/api/session", json={"login": "zhangmin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


def test_an_idle_session_ends_after_the_hall_files_minutes(client, clock):
    signed_in(client)
    clock.advance(minutes=29)
    assert client.get("/api/session").status_code == 200  # a use: the idle time starts again
    clock.advance(minutes=29)
    assert client.post("/api/windows/1/pause", headers=ORIGIN).status_code == 200
    clock.advance(minutes=31)
    r = client.get("/api/session")
    assert (r.status_code, r.json()["error"]) == (401, "session_expired")
    assert "unused for 30 minutes, or 2 hours after signing in" in r.json()["detail"]
    assert client.get("/api/session").json()["error"] == "session_ended"  # it was ended on the server


def test_a_used_session_still_ends_at_its_absolute_lifetime(client, clock):
    signed_in(client)
    for _ in range(4):
        clock.advance(minutes=25)
        assert client.get("/api/me").status_code == 200
    clock.advance(minutes=25)  # 2 h 5 min after signing in, 25 min after the last use
    assert client.get("/api/me").json()["error"] == "session_expired"


def test_only_hashes_are_stored(people_store, client):
    secret = signed_in(client).cookies["kiosq_session"]
    stored = people_store.db.one("SELECT password_hash FROM users WHERE login = 'zhangmin'")[0]
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in stored
    hashes = [r[0] for r in people_store.db.rows("SELECT hash FROM sessions")]
    assert hashes == [people.hash_session(secret)] and secret not in hashes


def test_the_audit_log_cannot_be_changed_or_deleted(people_store):
    people_store.audit("session.failed", people_store_who(), "zhangmin")
    for sql in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"):
            people_store._write(lambda _now, sql=sql: people_store.db.execute(sql))
    assert len(people_store.audit_entries()) == 2  # user.created and the line above


def people_store_who():
    from kiosq.queue.store import Who

    return Who("zhangmin", "user", "10.0.0.1")


@pytest.mark.parametrize("login, password, message", [
    ("zhangmin", "short", "too short"),
    ("zhangmin", "my-zhangmin-pass", "must not contain the login"),
    ("zhangmin", "aaaaaaaaaaaa", "repeats too few"),
])
def test_passwords_that_are_refused(login, password, message):
    with pytest.raises(ValueError, match=message):
        people.check_password(password, login)


@pytest.mark.parametrize("login", ["a", "Ω", "-x", "x" * 33, "zhang min"])
def test_logins_that_are_refused(login):
    with pytest.raises(ValueError, match="cannot be a login"):
        people.check_login(login)


def test_a_wrong_password_costs_what_an_unknown_login_costs():
    stored = people.hash_password(PASSWORD)
    assert people.password_matches(PASSWORD, stored)
    assert not people.password_matches(PASSWORD + "x", stored)
    assert not people.password_matches(PASSWORD, None)  # the dummy hash is checked, and False
    assert not people.password_matches(PASSWORD, "not a hash")


def test_staff_tokens_expire_after_the_halls_days_terminals_never(people_store, clock):
    people_store.create_token("staff", "S1", (1,))
    people_store.create_token("terminal", "T1")
    people_store.create_token("admin", "A1", ttl=timedelta(hours=1))
    life = {t["name"]: t["expires_at"] for t in people_store.tokens()}
    assert life["T1"] is None
    assert life["S1"] == (clock() + timedelta(days=90)).isoformat()
    clock.advance(hours=2)
    assert {t["name"]: t["state"] for t in people_store.tokens(every=True)}["A1"] == "expired"
    assert "A1" not in {t["name"] for t in people_store.tokens()}
    # an expired name can be given again
    assert re.match(r"^kq_a_", people_store.create_token("admin", "A1"))


def test_the_audit_log_refuses_a_delete_from_any_sqlite_client(tmp_path, short_sessions, clock):
    """The append-only triggers are in the database file: a tool that opens it without
    kiosq is refused too."""
    s = Store.in_dir(tmp_path, short_sessions, clock=clock)
    s.audit("x.y", people_store_who())
    s.close()
    conn = sqlite3.connect(tmp_path / "kiosq.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()
