"""People over real HTTP against `kiosq server` processes: accounts made with `kiosq server
user`, sign-in with the session cookie (its flags), acting at an allowed window and refused
at another, sign-out, the sixth wrong password throttled for that login and address only,
a disabled user's open session refused at its next request, revoked and expired tokens,
the admin endpoints (no credential, a wrong role, the right one), and the audit trail
naming the person. Another client address is the hall's own proxy's X-Forwarded-For,
which the server believes from 127.0.0.1 only, as behind nginx."""

import csv
import io
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import requests

from kiosq.queue.config import load_hall
from kiosq.queue.store import Store
from tests.queue.conftest import KIOSQ
from tests.queue.test_applications_http import PEOPLE, application

pytestmark = pytest.mark.slow
TIMEOUT = 10.0
PASSWORD = "correct horse battery"


def kiosq(srv, *args, password=None):
    cmd = [*KIOSQ, "server", *args, "--data-dir", str(srv.data_dir),
           *(["--database", srv.database] if srv.database else [])]
    done = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr}"
    return done.stdout


def add_user(srv, login, name, role, windows=None, password=PASSWORD):
    extra = ["--windows", windows] if windows else []
    return kiosq(srv, "user", "add", login, "--name", name, "--role", role, *extra, "--password-stdin",
                 password=password + "\n")


def browser(srv, address=None):
    """A client as a browser on the hall's pages: it keeps the cookie and sends Origin."""
    s = requests.Session()
    s.headers["Origin"] = srv.url
    if address:
        s.headers["X-Forwarded-For"] = address
    return s


def sign_in(session, srv, login, password=PASSWORD):
    return session.post(srv.url + "/api/session", json={"login": login, "password": password}, timeout=TIMEOUT)


def bearer(srv, role):
    return {"Authorization": f"Bearer {srv.tokens[role]}"}


def audit(srv, **query):
    r = requests.get(srv.url + "/api/audit", params=query, headers=bearer(srv, "admin"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def test_a_clerk_signs_in_acts_at_their_window_only_and_signs_out(hall_server):
    srv = hall_server()
    add_user(srv, "zhangmin", "张敏", "staff", "1,2")
    clerk = browser(srv)
    r = sign_in(clerk, srv, "ZhangMin ")  # a login is not case- or space-sensitive
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["login"], me["name"], me["role"], me["windows"], me["via"]) == ("zhangmin", "张敏", "staff", [1, 2],
                                                                               "session")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("kiosq_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP on 127.0.0.1; tests/queue/test_tls.py has HTTPS
    secret = clerk.cookies["kiosq_session"]
    assert len(secret) >= 43  # 256 bits, URL-safe base64

    assert clerk.get(srv.url + "/api/session", timeout=TIMEOUT).json()["login"] == "zhangmin"
    assert clerk.get(srv.url + "/api/me", timeout=TIMEOUT).json()["name"] == "张敏"
    ticket = requests.post(srv.url + "/api/tickets", json={"service": "A"},
                           headers={**bearer(srv, "terminal"), "Idempotency-Key": "p-1"}, timeout=TIMEOUT)
    assert ticket.status_code == 201
    called = clerk.post(srv.url + "/api/windows/1/call-next", timeout=TIMEOUT)
    assert called.status_code == 200, called.text
    assert called.json()["ticket"]["number"] == ticket.json()["number"]
    other = clerk.post(srv.url + "/api/windows/5/call-next", timeout=TIMEOUT)
    assert other.status_code == 403
    assert "zhangmin (张敏) may act at windows 1, 2, not at window 5" in other.json()["detail"]

    # Under the cookie a change needs the hall's own Origin.
    no_origin = requests.post(srv.url + "/api/windows/1/pause", cookies={"kiosq_session": secret}, timeout=TIMEOUT)
    assert (no_origin.status_code, no_origin.json()["error"]) == (403, "origin_required")
    elsewhere = requests.post(srv.url + "/api/windows/1/pause", cookies={"kiosq_session": secret},
                              headers={"Origin": "https://evil.example"}, timeout=TIMEOUT)
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (403, "cross_origin")
    assert clerk.get(srv.url + "/api/windows", timeout=TIMEOUT).json()[0]["state"] == "open"

    out = clerk.delete(srv.url + "/api/session", timeout=TIMEOUT)
    assert out.status_code == 200 and "kiosq_session" not in clerk.cookies
    again = requests.post(srv.url + "/api/windows/1/recall", cookies={"kiosq_session": secret},
                          headers={"Origin": srv.url}, timeout=TIMEOUT)
    assert (again.status_code, again.json()["error"]) == (401, "session_ended")

    actions = [(e["action"], e["actor"], e["actor_kind"]) for e in reversed(audit(srv, actor="zhangmin"))]
    assert actions == [("session.signed_in", "zhangmin", "user"), ("session.signed_out", "zhangmin", "user")]
    created = audit(srv, action="user.created")[0]
    assert created["target"] == "zhangmin" and created["actor"].startswith("cli:") and created["address"] == "local"


def test_the_sixth_wrong_password_is_refused_for_that_address_only(hall_server):
    srv = hall_server()
    add_user(srv, "lisi", "李四", "staff", "3")
    guesser = browser(srv, "10.0.0.66")
    for _ in range(5):
        r = sign_in(guesser, srv, "lisi", "wrong password 1")
        assert (r.status_code, r.json()["error"]) == (401, "wrong_login")
    sixth = sign_in(guesser, srv, "lisi", PASSWORD)  # even the right one, from there
    assert sixth.status_code == 429 and sixth.json()["error"] == "too_many_tries"
    assert 0 < int(sixth.headers["Retry-After"]) <= 600
    # The clerk at the counter, another address, is not locked out by the guesser.
    clerk = browser(srv, "10.0.0.7")
    assert sign_in(clerk, srv, "lisi").status_code == 200
    # An unknown login answers as a wrong password does, and is not written down as typed.
    unknown = sign_in(browser(srv, "10.0.0.8"), srv, "nobody", "my secret password")
    wrong = sign_in(browser(srv, "10.0.0.8"), srv, "lisi", "my secret password")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    failed = audit(srv, action="session.failed")
    assert {(e["actor"], e["address"], e["detail"]["reason"]) for e in failed} == {
        ("lisi", "10.0.0.66", "wrong_password"), ("(unknown login)", "10.0.0.8", "unknown_login"),
        ("lisi", "10.0.0.8", "wrong_password")}
    assert not any("nobody" in str(e) or "secret" in str(e) for e in audit(srv))


def test_a_disabled_users_open_session_is_refused_at_its_next_request(hall_server):
    srv = hall_server()
    add_user(srv, "wangwu", "王五", "staff", "1")
    clerk = browser(srv)
    assert sign_in(clerk, srv, "wangwu").status_code == 200
    assert clerk.post(srv.url + "/api/windows/1/pause", timeout=TIMEOUT).status_code == 200
    kiosq(srv, "user", "disable", "wangwu")
    refused = clerk.post(srv.url + "/api/windows/1/resume", timeout=TIMEOUT)
    assert (refused.status_code, refused.json()["error"]) == (401, "session_ended")
    again = sign_in(browser(srv), srv, "wangwu")
    assert (again.status_code, again.json()["error"]) == (403, "disabled")
    kiosq(srv, "user", "enable", "wangwu")
    assert sign_in(browser(srv), srv, "wangwu").status_code == 200
    # A new password ends the open sessions too.
    kiosq(srv, "user", "passwd", "wangwu", "--password-stdin", password="another long one\n")
    assert clerk.get(srv.url + "/api/session", timeout=TIMEOUT).status_code == 401
    assert sign_in(browser(srv), srv, "wangwu", "another long one").status_code == 200
    listed = kiosq(srv, "user", "list")
    assert "wangwu" in listed and "王五" in listed
    kinds = [e["action"] for e in reversed(audit(srv, actor=None, action="user."))]
    assert kinds == ["user.created", "user.disabled", "user.enabled", "user.password_set"]


def test_revoked_and_expired_tokens_are_refused_with_a_reason(hall_server):
    srv = hall_server()
    staff = bearer(srv, "staff")
    assert requests.post(srv.url + "/api/windows/1/pause", headers=staff, timeout=TIMEOUT).status_code == 200
    listed = requests.get(srv.url + "/api/tokens", headers=bearer(srv, "admin"), timeout=TIMEOUT).json()["tokens"]
    s = next(t for t in listed if t["name"] == "S")
    assert s["state"] == "active" and s["last_used_at"] is not None and s["expires_at"] is not None
    assert s["expires_at"].endswith("+08:00")
    assert "kq_" not in str(listed)  # never a secret
    kiosq(srv, "token", "revoke", "S")
    refused = requests.post(srv.url + "/api/windows/1/resume", headers=staff, timeout=TIMEOUT)
    assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
    assert "revoked" in refused.json()["detail"]
    # The name can be given again; the old secret stays refused.
    srv.tokens["staff"] = srv.token("staff", "S", "1")
    assert requests.post(srv.url + "/api/windows/1/resume", headers=bearer(srv, "staff"),
                         timeout=TIMEOUT).status_code == 200

    # An admin token made 91 days ago (the hall's default life is 90 days).
    old = Store.in_dir(srv.data_dir, load_hall(), clock=lambda: datetime.now(UTC) - timedelta(days=91),
                       database=database_of(srv))
    try:
        stale = old.create_token("admin", "old-admin")
    finally:
        old.close()
    expired = requests.get(srv.url + "/api/stats", headers={"Authorization": f"Bearer {stale}"}, timeout=TIMEOUT)
    assert (expired.status_code, expired.json()["error"]) == (401, "token_expired")
    assert "token 'old-admin' expired at" in expired.json()["detail"]
    states = {t["name"]: t["state"] for t in requests.get(srv.url + "/api/tokens", headers=bearer(srv, "admin"),
                                                          timeout=TIMEOUT).json()["tokens"]}
    assert states["old-admin"] == "expired"
    # Revoking over the API, for every role: a terminal's too.
    r = requests.post(srv.url + "/api/tokens/T/revoke", headers=bearer(srv, "admin"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"name": "T", "revoked": 1}
    t = requests.post(srv.url + "/api/tickets", json={"service": "A"}, headers=bearer(srv, "terminal"),
                      timeout=TIMEOUT)
    assert t.status_code == 401
    assert [e["target"] for e in audit(srv, action="token.revoked")] == ["S"]
    assert [e["target"] for e in audit(srv, action="terminal.revoked")] == ["T"]  # as the fleet view's revoke


def database_of(srv):
    from kiosq.queue.store.database import DatabaseChoice

    return DatabaseChoice(srv.database, source="tests") if srv.database else None


ADMIN_ROUTES = [("GET", "/api/users", None), ("GET", "/api/tokens", None), ("GET", "/api/audit", None),
                ("POST", "/api/users", {"login": "neu", "name": "新人", "role": "staff", "windows": [1],
                                        "password": PASSWORD}),
                ("PATCH", "/api/users/neu", {"windows": [1, 2]}),
                ("POST", "/api/users/neu/password", {"password": "yet another password"}),
                ("POST", "/api/tokens/S/revoke", None)]


def test_the_admin_endpoints_want_an_admin(hall_server):
    srv = hall_server()
    add_user(srv, "chief", "主任", "supervisor")
    add_user(srv, "it", "信息科", "admin")
    supervisor, admin = browser(srv), browser(srv)
    assert sign_in(supervisor, srv, "chief").status_code == 200
    assert sign_in(admin, srv, "it").status_code == 200
    for method, path, body in ADMIN_ROUTES:
        none = requests.request(method, srv.url + path, json=body, timeout=TIMEOUT)
        assert none.status_code == 401, (method, path)
        for wrong in (requests.request(method, srv.url + path, json=body, headers=bearer(srv, "staff"),
                                       timeout=TIMEOUT),
                      supervisor.request(method, srv.url + path, json=body, timeout=TIMEOUT)):
            assert wrong.status_code == 403, (method, path, wrong.text)
        right = admin.request(method, srv.url + path, json=body, timeout=TIMEOUT)
        assert right.status_code in (200, 201), (method, path, right.text)
    users = {u["login"]: u for u in admin.get(srv.url + "/api/users", timeout=TIMEOUT).json()["users"]}
    assert users["neu"]["windows"] == [1, 2] and users["it"]["sessions"] == 1
    # Clear refusals: a short password, the login in the password, a taken login, no windows.
    for body, code in (({"password": "short"}, "invalid_user"), ({"password": "neu2-and-more"}, "invalid_user"),
                       ({"login": "neu"}, "login_taken"), ({"windows": []}, "invalid_user")):
        r = admin.post(srv.url + "/api/users", json={"login": "neu2", "name": "x", "role": "staff", "windows": [1],
                                                     "password": PASSWORD, **body}, timeout=TIMEOUT)
        assert (r.status_code, r.json()["error"]) == ((409 if code == "login_taken" else 422), code), body
    own = admin.patch(srv.url + "/api/users/it", json={"disabled": True}, timeout=TIMEOUT)
    assert own.status_code == 409
    assert sign_in(browser(srv), srv, "neu", "yet another password").status_code == 200
    by_it = {e["action"] for e in audit(srv, actor="it")}
    assert {"session.signed_in", "user.created", "user.changed", "user.password_set", "token.revoked"} <= by_it


def test_the_audit_trail_names_the_login_that_opened_personal_data(hall_server):
    srv = hall_server()
    add_user(srv, "clerk1", "甲", "staff", "1,2,3,4,5,6,7,8")
    add_user(srv, "clerk2", "乙", "staff", "1,2,3,4,5,6,7,8")
    add_user(srv, "boss", "丙", "supervisor")
    id_number, name, phone = PEOPLE[0]
    filed = requests.post(srv.url + "/api/applications", json=application(id_number, name, phone),
                          headers={**bearer(srv, "terminal"), "Idempotency-Key": "a-1"}, timeout=TIMEOUT)
    assert filed.status_code == 201, filed.text
    no = filed.json()["tracking_no"]
    one, two, boss = browser(srv, "10.1.0.1"), browser(srv, "10.1.0.2"), browser(srv, "10.1.0.3")
    for s, login in ((one, "clerk1"), (two, "clerk2"), (boss, "boss")):
        assert sign_in(s, srv, login).status_code == 200
    assert one.get(srv.url + f"/api/applications/{no}/personal", timeout=TIMEOUT).json()["applicant"]["name"] == name
    assert two.post(srv.url + f"/api/applications/{no}/accept", timeout=TIMEOUT).status_code == 200
    asked = two.post(srv.url + f"/api/applications/{no}/reject", json={"note": "材料不符"}, timeout=TIMEOUT)
    assert asked.status_code == 200, asked.text
    approved = boss.post(srv.url + f"/api/applications/{no}/approve-rejection", timeout=TIMEOUT)
    assert approved.status_code == 200, approved.text
    kiosq(srv, "user", "disable", "clerk1")

    viewed = audit(srv, action="application.personal_viewed")
    assert [(e["actor"], e["address"], e["target"]) for e in viewed] == [("clerk1", "10.1.0.1", no)]
    steps = [(e["action"], e["actor"]) for e in reversed(audit(srv, action="application."))]
    assert steps == [("application.personal_viewed", "clerk1"), ("application.accept", "clerk2"),
                     ("application.reject", "clerk2"), ("application.approve_rejection", "boss")]
    # The record names the person too, and the audit holds no personal data.
    history = two.get(srv.url + f"/api/applications/{no}", timeout=TIMEOUT).json()["history"]
    assert {"clerk2", "boss"} <= {h.get("by") for h in history}
    everything = str(audit(srv, limit=1000))
    assert id_number not in everything and name not in everything and phone not in everything

    exported = requests.get(srv.url + "/api/audit", params={"format": "csv", "actor": "clerk2"},
                            headers=bearer(srv, "admin"), timeout=TIMEOUT)
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["application.reject", "application.accept", "session.signed_in"]
    assert all(r["actor"] == "clerk2" and r["address"] == "10.1.0.2" for r in rows)


def test_enrollment_codes_made_and_used_are_in_the_audit(hall_server):
    srv = hall_server()
    add_user(srv, "it", "信息科", "admin")
    admin = browser(srv, "10.2.0.1")
    assert sign_in(admin, srv, "it").status_code == 200
    made = admin.post(srv.url + "/api/terminals/enroll-codes", json={"terminal": "T09"}, timeout=TIMEOUT)
    assert made.status_code == 201, made.text
    from_cli = kiosq(srv, "enroll-code", "--terminal", "T10").strip()
    enrolled = requests.post(srv.url + "/api/terminals/enroll", json={"code": made.json()["code"]},
                             headers={"X-Forwarded-For": "10.2.0.9"}, timeout=TIMEOUT)
    assert enrolled.status_code == 201, enrolled.text
    codes = [(e["actor"], e["actor_kind"], e["target"]) for e in reversed(audit(srv, action="enroll_code.created"))]
    assert codes[0] == ("it", "user", "T09") and codes[1][1:] == ("cli", "T10") and from_cli not in str(codes)
    used = audit(srv, action="terminal.enrolled")
    assert [(e["actor"], e["address"]) for e in used] == [("T09", "10.2.0.9")]
    assert made.json()["code"] not in str(audit(srv, limit=1000))  # a code is a secret: never in the log
