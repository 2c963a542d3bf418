"""好差评 over real HTTP against `kiosq server` processes (SQLite and PostgreSQL): a ticket
finished at window 1 rated by the holder of its id, twice 409, a 差评 with no reason 422;
the case followed up by a supervisor (call-back, fix) moves the figures; the window's
appeal upheld takes the rating out of them; every endpoint refused without a token and to
a wrong role; an application rated with its lookup code; the figures as CSV."""

import csv
import io
import itertools

import pytest
import requests

from tests.queue.test_applications_http import PEOPLE, application, lookup

pytestmark = pytest.mark.slow
TIMEOUT = 10.0
KEYS = itertools.count()


def call(srv, method, path, token=None, body=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, srv.url + path, json=body, params=params, headers=headers, timeout=TIMEOUT)


@pytest.fixture
def srv(hall_server):
    server = hall_server()
    server.tokens["supervisor"] = server.token("supervisor", "SUP")
    server.tokens["staff2"] = server.token("staff", "S2", "2")
    return server


def finished_ticket(srv, window=1):
    """A ticket issued at a terminal and finished at `window` by the staff token S."""
    r = requests.post(srv.url + "/api/tickets", json={"service": "A"}, timeout=TIMEOUT,
                      headers={"Authorization": f"Bearer {srv.tokens['terminal']}",
                               "Idempotency-Key": f"rate-{next(KEYS)}"})
    assert r.status_code == 201, r.text
    ticket = r.json()
    for step in ("call-next", "start", "finish"):
        assert call(srv, "POST", f"/api/windows/{window}/{step}", srv.tokens["staff"]).status_code == 200
    return ticket


def rate(srv, ticket_id, body, token=None):
    return call(srv, "POST", f"/api/tickets/{ticket_id}/rating", token, body)


def stats(srv, role="supervisor"):
    return call(srv, "GET", "/api/ratings/stats", srv.tokens[role]).json()


def test_a_ticket_rated_once_by_the_holder_of_its_id(srv):
    waiting = requests.post(srv.url + "/api/tickets", json={"service": "A"}, timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {srv.tokens['terminal']}",
                                     "Idempotency-Key": "waiting"}).json()
    r = rate(srv, waiting["id"], {"level": 5})
    assert r.status_code == 409 and r.json()["error"] == "not_finished"
    assert call(srv, "POST", f"/api/tickets/{waiting['id']}/cancel", srv.tokens["terminal"]).status_code == 200
    r = rate(srv, waiting["id"], {"level": 5})
    assert r.status_code == 409 and r.json()["error"] == "not_finished"  # cancelled: there was no service
    ticket = finished_ticket(srv)
    assert call(srv, "GET", f"/api/tickets/{ticket['id']}/rating").json()["rateable"] is True
    r = rate(srv, ticket["id"], {"level": 2})
    assert r.status_code == 422 and r.json()["error"] == "reason_required"
    r = rate(srv, ticket["id"], {"level": 6})
    assert r.status_code == 422
    for role in ("staff", "admin"):  # staff do not rate their own service
        r = rate(srv, ticket["id"], {"level": 5}, srv.tokens[role])
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = rate(srv, ticket["id"], {"level": 5, "channel": "window"})  # a device's channel needs its token
    assert r.status_code == 403
    r = rate(srv, ticket["id"], {"level": 2, "reasons": ["等候时间过长"], "comment": "我的电话 13800138000"})
    assert r.status_code == 201, r.text
    given = r.json()
    assert given["bad"] is True and given["channel"] == "online" and given["follow_up"]["fix_due"]
    r = rate(srv, ticket["id"], {"level": 5})
    assert r.status_code == 409 and r.json()["error"] == "already_rated"
    seen = call(srv, "GET", f"/api/tickets/{ticket['id']}/rating").json()
    assert seen["rateable"] is False and seen["rating"]["level"] == 2 and len(seen["reasons"]) == 6
    assert rate(srv, "1-nosuchticket000", {"level": 5}).status_code == 404

    # The device at the window rates the next one with the terminal token.
    other = finished_ticket(srv)
    r = rate(srv, other["id"], {"level": 5, "channel": "window"}, srv.tokens["terminal"])
    assert r.status_code == 201 and r.json()["channel"] == "window"

    cases = call(srv, "GET", "/api/ratings/cases", srv.tokens["supervisor"]).json()
    assert cases["count"] == 1 and cases["counts"]["open"] == 1
    case = cases["cases"][0]
    assert (case["window"], case["clerk"], case["service"], case["level"]) == (1, "S", "A", 2)
    assert case["comment"] == "我的电话 138****8000"  # masked before it was stored
    assert case["callback"]["due"] <= case["fix"]["due"] and case["callback"]["due_state"] in ("ok", "warning")


def test_a_case_followed_up_moves_the_figures_and_an_upheld_appeal_leaves_them(srv):
    bad = rate(srv, finished_ticket(srv)["id"], {"level": 1, "reasons": ["服务态度不好"]}).json()
    rate(srv, finished_ticket(srv)["id"], {"level": 5})
    appealed = rate(srv, finished_ticket(srv)["id"], {"level": 2, "comment": "不满意"}).json()
    hall = stats(srv)["hall"]
    assert (hall["ratings"], hall["bad"], hall["good_rate"], hall["callback_rate"], hall["fix_rate"]) == (
        3, 2, 0.3333, 0.0, 0.0)
    sup = srv.tokens["supervisor"]
    r = call(srv, "POST", f"/api/ratings/cases/{bad['id']}/callback", sup, {"note": "已回访 13800138000"})
    assert r.status_code == 200 and r.json()["callback"]["note"] == "已回访 138****8000"
    r = call(srv, "POST", f"/api/ratings/cases/{bad['id']}/fix", sup, {})
    assert r.status_code == 422 and r.json()["error"] == "note_required"
    r = call(srv, "POST", f"/api/ratings/cases/{bad['id']}/fix", sup, {"note": "窗口人员已培训"})
    assert r.status_code == 200 and r.json()["state"] == "fixed"
    r = call(srv, "POST", f"/api/ratings/cases/{bad['id']}/fix", sup, {"note": "again"})
    assert r.status_code == 409 and r.json()["error"] == "case_closed"
    hall = stats(srv)["hall"]
    assert (hall["called_back"], hall["callback_rate"], hall["fixed"], hall["fix_rate"], hall["on_time_fix_rate"]) == (
        1, 0.5, 1, 0.5, 0.5)

    # The window appeals (staff of another window may not); a supervisor upholds it.
    r = call(srv, "POST", f"/api/ratings/cases/{appealed['id']}/appeal", srv.tokens["staff2"], {"note": "x"})
    assert r.status_code == 403
    r = call(srv, "POST", f"/api/ratings/cases/{appealed['id']}/appeal", srv.tokens["staff"], {"note": "恶意差评"})
    assert r.status_code == 200 and r.json()["state"] == "appealed"
    r = call(srv, "POST", f"/api/ratings/cases/{appealed['id']}/decide", sup, {"uphold": True, "note": "属实"})
    assert r.status_code == 200 and r.json()["state"] == "upheld" and r.json()["appeal"]["outcome"] == "upheld"
    figures = stats(srv)
    hall = figures["hall"]
    assert (hall["ratings"], hall["bad"], hall["upheld"], hall["good_rate"], hall["fix_rate"]) == (2, 1, 1, 0.5, 1.0)
    assert figures["by"]["window"]["1"]["ratings"] == 2 and figures["by"]["clerk"]["S"]["bad"] == 1
    assert figures["by"]["channel"]["online"]["ratings"] == 2
    assert call(srv, "GET", "/api/ratings/cases", sup, state="upheld").json()["count"] == 1

    text = call(srv, "GET", "/api/ratings/stats", srv.tokens["admin"], format="csv", lang="en").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["dimension"] == "hall" and rows[0]["ratings"] == "2" and rows[0]["upheld"] == "1"
    assert {r["dimension"] for r in rows} >= {"window", "clerk", "service", "channel"}


def test_who_may_call_each_case_endpoint(srv):
    bad = rate(srv, finished_ticket(srv)["id"], {"level": 1, "reasons": ["等候时间过长"]}).json()
    n = bad["id"]
    endpoints = [("GET", "/api/ratings/cases", None), ("GET", "/api/ratings/stats", None),
                 ("POST", f"/api/ratings/cases/{n}/callback", {"note": "a"}),
                 ("POST", f"/api/ratings/cases/{n}/fix", {"note": "a"}),
                 ("GET", "/api/ratings/export", None),
                 ("POST", f"/api/ratings/cases/{n}/decide", {"uphold": False})]
    for method, path, body in endpoints:
        assert call(srv, method, path, None, body).status_code == 401, path
        for wrong in ("terminal", "staff"):
            r = call(srv, method, path, srv.tokens[wrong], body)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", (path, wrong)
    assert call(srv, "GET", "/api/ratings/cases", srv.tokens["admin"]).status_code == 200
    assert call(srv, "GET", "/api/ratings/stats", srv.tokens["supervisor"]).status_code == 200
    # decide: no appeal waits yet (409); the right role got past the role check
    r = call(srv, "POST", f"/api/ratings/cases/{n}/decide", srv.tokens["admin"], {"uphold": False})
    assert r.status_code == 409 and r.json()["error"] == "no_appeal"
    appeal = f"/api/ratings/cases/{n}/appeal"
    assert call(srv, "POST", appeal, None, {"note": "x"}).status_code == 401
    for wrong in ("terminal", "admin"):
        assert call(srv, "POST", appeal, srv.tokens[wrong], {"note": "x"}).status_code == 403
    assert call(srv, "POST", appeal, srv.tokens["staff"], {"note": "x"}).status_code == 200
    assert call(srv, "POST", "/api/ratings/cases/999999/callback", srv.tokens["admin"], {}).status_code == 404
    assert call(srv, "GET", "/api/ratings/reasons").json()["levels"][0] == {
        "level": 5, "name": "非常满意", "name_en": "very satisfied", "bad": False}


def test_an_application_is_rated_with_its_lookup_code_once_it_is_closed(srv):
    filed = requests.post(srv.url + "/api/applications", json=application(*PEOPLE[0]), timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {srv.tokens['terminal']}",
                                   "Idempotency-Key": "rate-app"}).json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    path = f"/api/applications/{number}/rating"
    r = call(srv, "POST", path, None, {"code": code, "level": 5})
    assert r.status_code == 409 and r.json()["error"] == "not_finished"
    for step in ("accept", "complete"):
        assert call(srv, "POST", f"/api/applications/{number}/{step}", srv.tokens["staff"]).status_code == 200
    # An admin opens the personal data afterwards: the clerk rated is still who completed it.
    assert call(srv, "GET", f"/api/applications/{number}/personal", srv.tokens["admin"]).status_code == 200
    r = call(srv, "POST", path, None, {"code": "ABCD2345", "level": 5})
    assert r.status_code == 403 and r.json()["error"] == "no_match"
    r = call(srv, "POST", path, srv.tokens["staff"], {"code": code, "level": 5})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = call(srv, "POST", path, None, {"code": code, "level": 1, "reasons": ["办事效率低"]})
    assert r.status_code == 201 and r.json()["channel"] == "application", r.text
    assert call(srv, "POST", path, None, {"code": code, "level": 5}).status_code == 409
    assert lookup(srv, number, code).status_code == 200  # the lookup is as before
    case = call(srv, "GET", "/api/ratings/cases", srv.tokens["supervisor"]).json()["cases"][0]
    assert (case["subject"], case["label"], case["item"], case["department"], case["clerk"]) == (
        "application", number, "GA-SFZ-002", "公安局", "S")


def test_who_may_rate_at_a_window(srv):
    """The window's rating device (POST /api/windows/{n}/rating): a terminal token only, for
    the ticket its window just finished."""
    number = finished_ticket(srv)["number"]
    body = {"number": number, "level": 4}
    assert call(srv, "POST", "/api/windows/1/rating", None, body).status_code == 401
    for wrong in ("staff", "admin"):
        r = call(srv, "POST", "/api/windows/1/rating", srv.tokens[wrong], body)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = call(srv, "POST", "/api/windows/2/rating", srv.tokens["terminal"], body)
    assert r.status_code == 403 and r.json()["error"] == "not_this_window"
    r = call(srv, "POST", "/api/windows/1/rating", srv.tokens["terminal"], {"number": "Z999", "level": 4})
    assert r.status_code == 404
    r = call(srv, "POST", "/api/windows/1/rating", srv.tokens["terminal"], body)
    assert r.status_code == 201 and r.json()["channel"] == "window"
    r = call(srv, "POST", "/api/windows/1/rating", srv.tokens["terminal"], body)
    assert r.status_code == 409 and r.json()["error"] == "already_rated"


def test_a_kiosk_session_is_rated_once_by_its_terminal(srv):
    body = {"session": "s-0123456789", "level": 5}
    assert call(srv, "POST", "/api/kiosk/rating", None, body).status_code == 401
    for wrong in ("staff", "supervisor"):
        r = call(srv, "POST", "/api/kiosk/rating", srv.tokens[wrong], body)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = call(srv, "POST", "/api/kiosk/rating", srv.tokens["terminal"], body)
    assert r.status_code == 201 and r.json()["channel"] == "kiosk"
    r = call(srv, "POST", "/api/kiosk/rating", srv.tokens["terminal"], body)
    assert r.status_code == 409 and r.json()["error"] == "already_rated"
    r = call(srv, "POST", "/api/kiosk/rating", srv.tokens["terminal"], {"session": "s-other-session", "level": 1})
    assert r.status_code == 422 and r.json()["error"] == "reason_required"
    r = call(srv, "POST", "/api/kiosk/rating", srv.tokens["terminal"], {"session": "bad session!", "level": 5})
    assert r.status_code == 422
    figures = stats(srv)
    assert figures["by"]["channel"]["kiosk"]["ratings"] == 1 and figures["hall"]["good_rate"] == 1.0


def test_the_export_for_a_province_holds_every_rating_and_its_follow_up(srv):
    bad = rate(srv, finished_ticket(srv)["id"], {"level": 2, "reasons": ["等候时间过长"], "comment": "等了很久"}).json()
    rate(srv, finished_ticket(srv)["id"], {"level": 5})
    sup = srv.tokens["supervisor"]
    call(srv, "POST", f"/api/ratings/cases/{bad['id']}/callback", sup, {"note": "回访记录不出厅"})
    call(srv, "POST", f"/api/ratings/cases/{bad['id']}/fix", sup, {"note": "增开午间窗口"})
    assert call(srv, "GET", "/api/ratings/export").status_code == 401
    assert call(srv, "GET", "/api/ratings/export", srv.tokens["staff"]).status_code == 403
    r = call(srv, "GET", "/api/ratings/export", srv.tokens["admin"])
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    doc = r.json()
    assert doc["format"] == "kiosq-ratings-export/1" and doc["summary"]["ratings"] == 2
    first = next(x for x in doc["ratings"] if x["id"] == bad["id"])
    assert (first["kind"], first["level"], first["bad"], first["comment"], first["window"], first["clerk"]) == (
        "ticket", 2, True, "等了很久", 1, "S")
    assert first["rectification"]["state"] == "fixed" and first["rectification"]["fix_note"] == "增开午间窗口"
    assert "回访记录不出厅" not in r.text and first["service_name"]
