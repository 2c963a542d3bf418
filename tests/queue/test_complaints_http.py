"""效能投诉 over real HTTP against `kiosq server` processes (SQLite and PostgreSQL): filed at
a kiosk (terminal token, replayed with its Idempotency-Key) and from a phone (no token,
throttled per address), with deadlines in working days; looked up with the code (a wrong
one 403); accepted, answered and closed by the citizen with their satisfaction, or
declined with a reason; every handling endpoint refused without a token and to a wrong
role; the text's numbers masked and the phone masked to staff, neither in the database in
clear."""

from datetime import date

import pytest
import requests

from kiosq.queue.workdays import WorkCalendar
from tests.queue.test_applications_http import database_files

pytestmark = pytest.mark.slow
TIMEOUT = 10.0
TEXT = "窗口工作人员推诿，让我来回跑了三趟，我的身份证号 110101199003071236"
PHONE = "13912345678"


def call(srv, method, path, token=None, body=None, headers=None, **params):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    h.update(headers or {})
    return requests.request(method, srv.url + path, json=body, params=params, headers=h, timeout=TIMEOUT)


@pytest.fixture
def srv(hall_server):
    server = hall_server()
    server.tokens["supervisor"] = server.token("supervisor", "SUP")
    return server


def complaint(**extra):
    return {"about": {"window": 1, "staff_name": "张敏"}, "category": "evasion", "text": TEXT,
            "contact": {"phone": PHONE}, **extra}


def test_a_complaint_filed_at_a_kiosk_is_handled_and_closed(srv, request):
    r = call(srv, "POST", "/api/complaints", srv.tokens["terminal"], complaint(), {"Idempotency-Key": "c-1"})
    assert r.status_code == 201, r.text
    filed = r.json()
    number, code = filed["complaint_no"], filed["lookup_code"]
    assert number.startswith("TS") and filed["state"] == "received" and len(code) == 8
    cal = WorkCalendar.china()
    today = date.fromisoformat(f"{number[2:6]}-{number[6:8]}-{number[8:10]}")
    assert (filed["accept_by"], filed["reply_by"]) == (cal.add(today, 2).isoformat(), cal.add(today, 10).isoformat())
    again = call(srv, "POST", "/api/complaints", srv.tokens["terminal"], complaint(), {"Idempotency-Key": "c-1"})
    assert again.status_code == 201 and again.json() == filed and again.headers["Idempotent-Replayed"] == "true"

    r = call(srv, "POST", f"/api/complaints/{number}/lookup", None, {"code": "ABCD2345"})
    assert r.status_code == 403 and r.json()["error"] == "no_match"
    r = call(srv, "POST", "/api/complaints/TS20990101-0001/lookup", None, {"code": code})
    assert r.status_code == 403 and r.json()["detail"] == call(
        srv, "POST", f"/api/complaints/{number}/lookup", None, {"code": "ABCD2345"}).json()["detail"]
    seen = call(srv, "POST", f"/api/complaints/{number}/lookup", None, {"code": code.lower()}).json()
    assert seen["state"] == "received" and seen["category_name"] == "推诿扯皮" and seen["accept_due"] in (
        "ok", "due_today")
    assert "text" not in seen and "phone" not in seen

    sup = srv.tokens["supervisor"]
    listed = call(srv, "GET", "/api/complaints", sup).json()
    assert listed["count"] == 1 and listed["overdue"] == 0
    item = listed["complaints"][0]
    assert item["phone"] == "139****5678" and "110101199003071236" not in item["text"]
    assert item["text"].startswith("窗口工作人员推诿") and item["about"]["staff_name"] == "张敏"
    r = call(srv, "POST", f"/api/complaints/{number}/answer", sup, {"text": "x"})
    assert r.status_code == 409 and r.json()["error"] == "invalid_transition"
    assert call(srv, "POST", f"/api/complaints/{number}/accept", sup, {}).json()["state"] == "accepted"
    r = call(srv, "POST", f"/api/complaints/{number}/answer", sup, {})
    assert r.status_code == 422 and r.json()["error"] == "text_required"
    answer = "经核查，已对该窗口人员批评教育，并明确一次性告知清单"
    r = call(srv, "POST", f"/api/complaints/{number}/answer", sup, {"text": answer})
    assert r.status_code == 200 and r.json()["state"] == "answered" and r.json()["reply_due"] is None
    seen = call(srv, "POST", f"/api/complaints/{number}/lookup", None, {"code": code}).json()
    assert seen["answer"] == answer and seen["state"] == "answered"
    r = call(srv, "POST", f"/api/complaints/{number}/close", None, {"code": "ABCD2345", "satisfaction": 1})
    assert r.status_code == 403
    r = call(srv, "POST", f"/api/complaints/{number}/close", None, {"code": code, "satisfaction": 4})
    assert r.status_code == 200 and r.json()["state"] == "closed" and r.json()["satisfaction"] == 4

    stored = b"".join(f.read_bytes() for f in database_files(srv, request) if f.exists())
    assert number.encode() in stored
    for secret in (PHONE, "来回跑了三趟", "批评教育", code):
        assert secret.encode() not in stored, secret


def test_a_declined_complaint_says_why_and_a_phone_is_throttled(srv):
    body = complaint(category="rudeness", contact=None)
    filed = call(srv, "POST", "/api/complaints", None, body).json()
    assert filed["state"] == "received"
    sup = srv.tokens["admin"]
    number = filed["complaint_no"]
    r = call(srv, "POST", f"/api/complaints/{number}/decline", sup, {})
    assert r.status_code == 422
    reason = "反映的问题不属于效能投诉范围，已转12345热线"
    r = call(srv, "POST", f"/api/complaints/{number}/decline", sup, {"text": reason})
    assert r.status_code == 200 and r.json()["state"] == "declined" and r.json()["accept_due"] is None
    seen = call(srv, "POST", f"/api/complaints/{number}/lookup", None, {"code": filed["lookup_code"]}).json()
    assert seen["decline_reason"].startswith("反映的问题不属于")
    for _ in range(2):  # 3 an hour from one address without a token
        assert call(srv, "POST", "/api/complaints", None, body).status_code == 201
    r = call(srv, "POST", "/api/complaints", None, body)
    assert r.status_code == 429 and "Retry-After" in r.headers
    # A kiosk is not throttled by its address.
    assert call(srv, "POST", "/api/complaints", srv.tokens["terminal"], body).status_code == 201


def test_who_may_call_the_complaints_endpoints(srv):
    filed = call(srv, "POST", "/api/complaints", srv.tokens["terminal"], complaint()).json()
    number = filed["complaint_no"]
    r = call(srv, "POST", "/api/complaints", srv.tokens["staff"], complaint())
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for method, path, body in (("GET", "/api/complaints", None), ("POST", f"/api/complaints/{number}/accept", {}),
                               ("POST", f"/api/complaints/{number}/decline", {"text": "理由"}),
                               ("POST", f"/api/complaints/{number}/answer", {"text": "答复"}),
                               ("POST", f"/api/complaints/{number}/close", {"satisfaction": 5})):
        assert call(srv, method, path, None, body).status_code == 401, path
        for wrong in ("terminal", "staff"):
            r = call(srv, method, path, srv.tokens[wrong], body)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", (path, wrong)
    assert call(srv, "GET", "/api/complaints", srv.tokens["supervisor"]).status_code == 200
    assert call(srv, "POST", f"/api/complaints/{number}/accept", srv.tokens["supervisor"], {}).status_code == 200
    r = call(srv, "POST", f"/api/complaints/{number}/close", srv.tokens["admin"], {"satisfaction": 5})
    assert r.status_code == 409  # not answered yet: the right role got past the role check
    assert call(srv, "POST", "/api/complaints/TS20990101-0009/accept", srv.tokens["admin"], {}).status_code == 404
    r = call(srv, "POST", "/api/complaints", srv.tokens["terminal"], {**complaint(), "category": "bribery"})
    assert r.status_code == 422
    cats = call(srv, "GET", "/api/complaints/categories").json()["categories"]
    assert [c["code"] for c in cats] == ["evasion", "favours", "rudeness", "inaction", "other"]
