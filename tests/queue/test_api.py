"""The HTTP API in process: contracts, auth, every window action, and errors as 4xx."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiosq.queue.api import create_app


@pytest.fixture
def tokens(store):
    return {"terminal": store.create_token("terminal", "T01"),
            "staff": store.create_token("staff", "张敏", (1, 2)),
            "admin": store.create_token("admin", "boss")}


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as c:
        yield c


def auth(secret, key=None):
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def take(client, tokens, service="A", key=None, **body):
    key = key or f"k-{service}-{take.counter}"
    take.counter += 1
    return client.post("/api/tickets", json={"service": service, **body}, headers=auth(tokens["terminal"], key))


take.counter = 0


def act(client, tokens, window, action, role="staff", **body):
    return client.post(f"/api/windows/{window}/{action}", json=body or None, headers=auth(tokens[role]))


def test_take_a_ticket(client, tokens):
    r = take(client, tokens, "B")
    assert r.status_code == 201
    t = r.json()
    assert (t["number"], t["service"], t["status"], t["position"], t["ahead"], t["eta_minutes"]) == \
        ("B001", "B", "waiting", 1, 0, 0)
    assert t["follow_url"] == f"http://127.0.0.1:8000/t/{t['id']}" and len(t["id"]) >= 16  # the server's own address
    assert t["issued_at"].endswith("+08:00")  # hall time
    second = take(client, tokens, "B").json()
    # 1 ahead x 10 min / 3 open windows serving B (2, 3 and 8)
    assert (second["ahead"], second["position"], second["eta_minutes"]) == (1, 2, 3)
    assert client.get(f"/api/tickets/{t['id']}").json()["number"] == "B001"


def test_same_idempotency_key_same_ticket(client, tokens):
    first = take(client, tokens, key="retry-1")
    again = take(client, tokens, key="retry-1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert take(client, tokens).json()["number"] == "A002"
    conflict = take(client, tokens, "B", key="retry-1")
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_conflict"


def test_services_show_waiting_and_estimates(client, tokens):
    for _ in range(3):
        take(client, tokens, "F")
    f = next(s for s in client.get("/api/services").json() if s["code"] == "F")
    assert (f["waiting"], f["open_windows"], f["eta_minutes"], f["name"]) == (3, 1, 60, "不动产登记")


def test_a_day_at_window_1(client, tokens):
    """Call, recall, start, finish, no-show, reinstate, transfer, pause, resume: each
    answers with the window and ticket after the change."""
    for _ in range(3):
        take(client, tokens, "A")
    r = act(client, tokens, 1, "call-next")
    assert r.status_code == 200
    body = r.json()
    assert (body["ticket"]["number"], body["window"]["current"]["number"], body["events"]) == \
        ("A001", "A001", ["ticket.called"])
    assert act(client, tokens, 1, "recall").json()["ticket"]["recalls"] == 1
    assert act(client, tokens, 1, "start").json()["ticket"]["status"] == "serving"
    done = act(client, tokens, 1, "finish").json()
    assert done["ticket"]["status"] == "done" and done["window"]["current"] is None

    act(client, tokens, 1, "call-next")
    assert act(client, tokens, 1, "no-show").json()["ticket"]["status"] == "no_show"
    assert act(client, tokens, 1, "reinstate", ticket="A002").json()["ticket"]["status"] == "waiting"
    assert act(client, tokens, 1, "call-next").json()["ticket"]["number"] == "A002"  # its old place
    moved = act(client, tokens, 1, "transfer", service="B").json()
    assert (moved["ticket"]["number"], moved["ticket"]["service"], moved["events"]) == \
        ("A002", "B", ["ticket.transferred"])
    assert act(client, tokens, 2, "call-next").json()["ticket"]["number"] == "A003"  # window 2: A before B
    assert act(client, tokens, 1, "pause").json()["window"]["state"] == "paused"
    refused = act(client, tokens, 1, "call-next")
    assert refused.status_code == 409 and refused.json()["error"] == "window_paused"
    assert act(client, tokens, 1, "resume").json()["window"]["state"] == "open"
    windows = {w["number"]: w for w in client.get("/api/windows").json()}
    assert windows[2]["current"]["number"] == "A003" and windows[1]["current"] is None


def test_refusals_are_409_with_a_reason(client, tokens):
    r = act(client, tokens, 1, "call-next")
    assert r.status_code == 409 and r.json() == {
        "error": "nothing_waiting", "detail": "no ticket is waiting for window 1 (services A)"}
    r = act(client, tokens, 1, "finish")
    assert r.status_code == 409 and "no current ticket" in r.json()["detail"]


def test_cancel_a_ticket(client, tokens):
    t = take(client, tokens).json()
    r = client.post(f"/api/tickets/{t['id']}/cancel", headers=auth(tokens["terminal"]))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.post(f"/api/tickets/{t['id']}/cancel", headers=auth(tokens["terminal"]))
    assert again.status_code == 409 and again.json()["error"] == "not_allowed"


@pytest.mark.parametrize("role, window, status", [
    ("staff", 1, 200), ("staff", 3, 403), ("admin", 7, 200), ("terminal", 1, 403),
])
def test_window_actions_need_a_token_for_that_window(client, tokens, role, window, status):
    r = act(client, tokens, window, "pause", role=role)
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"] == "forbidden" and r.json()["detail"]


def test_green_channel_is_not_issued_at_a_terminal(client, tokens):
    r = take(client, tokens, priority="green")
    assert r.status_code == 403 and "green" in r.json()["detail"]
    staff = client.post("/api/tickets", json={"service": "A", "priority": "green"},
                        headers=auth(tokens["staff"], "g1"))
    assert staff.status_code == 201 and staff.json()["priority"] == "green"


@pytest.mark.parametrize("headers, status, error", [
    ({}, 401, "unauthorized"),
    ({"Authorization": "Bearer kq_t_forged"}, 401, "unauthorized"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
])
def test_missing_or_forged_tokens_are_401(client, headers, status, error):
    r = client.post("/api/tickets", json={"service": "A"}, headers={**headers, "Idempotency-Key": "x"})
    assert (r.status_code, r.json()["error"]) == (status, error)
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_token_is_refused_at_once(client, tokens, store):
    store.revoke_tokens("T01")
    assert take(client, tokens).status_code == 401


@pytest.mark.parametrize("body, status, error, detail", [
    (b'{"service": "A"', 400, "malformed_json", "not valid JSON"),
    (b'{"service": 5}', 422, "invalid_request", "service: Input should be a valid string"),
    (b'{"service": "A", "priority": "vip"}', 422, "invalid_request", "priority: Input should be"),
    (b'{"service": "A", "colour": 1}', 422, "invalid_request", "colour: unknown field"),
    (b'{}', 422, "invalid_request", "service: required"),
    (b'["A"]', 422, "invalid_request", "body: Input should be an object"),
    (b'{"service": "Q"}', 404, "not_found", "unknown service 'Q'; services are: A, B, C, D, E, F"),
    (b'{"service": "' + b"A" * 20000 + b'"}', 413, "too_large", "larger than 16384 bytes"),
])
def test_bad_input_is_a_4xx_with_a_reason(client, tokens, body, status, error, detail):
    r = client.post("/api/tickets", content=body,
                    headers={**auth(tokens["terminal"], "bad"), "Content-Type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"] == error and detail in r.json()["detail"]


def test_missing_idempotency_key_is_400(client, tokens):
    r = client.post("/api/tickets", json={"service": "A"}, headers=auth(tokens["terminal"]))
    assert r.status_code == 400 and r.json()["error"] == "idempotency_key_required"


@pytest.mark.parametrize("method, path, status", [
    ("get", "/api/tickets/unknown", 404), ("get", "/api/nothing", 404), ("delete", "/api/services", 405),
    ("post", "/api/windows/99/call-next", 404), ("post", "/api/windows/0/call-next", 422),
    ("post", "/api/windows/abc/call-next", 422), ("get", "/api/events?since=-3", 400),
])
def test_unknown_things_are_4xx_json(client, tokens, method, path, status):
    r = getattr(client, method)(path, headers=auth(tokens["admin"]))
    assert r.status_code == status and set(r.json()) == {"error", "detail"}


def test_openapi_describes_the_contract(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/services", "/api/tickets", "/api/tickets/{ticket_id}", "/api/windows",
                 "/api/windows/{window}/call-next", "/api/windows/{window}/no-show", "/api/events"):
        assert path in spec["paths"], path
    assert "TicketOut" in spec["components"]["schemas"]


def test_rollover_through_the_api_with_an_injected_clock(client, tokens, clock):
    take(client, tokens)
    clock.now = clock.now.replace(hour=20)  # 04:00 next day in Shanghai
    r = take(client, tokens)
    assert (r.json()["number"], r.json()["day"]) == ("A001", "2026-11-24")
    assert client.get("/api/health").json()["business_day"] == "2026-11-24"


@pytest.mark.parametrize("ticket_id", ["%C2%B2-abcdefghijklmnop", "99999999999999999999-abcdefghijklmnop",
                                       "1-" + "x" * 16, "1", "-", "abc-def"])
def test_malformed_or_unknown_ticket_ids_are_404(client, tokens, ticket_id):
    take(client, tokens)
    for r in (client.get(f"/api/tickets/{ticket_id}"),
              client.post(f"/api/tickets/{ticket_id}/cancel", headers=auth(tokens["admin"]))):
        assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.parametrize("role, status", [("terminal", 403), ("other_staff", 403), ("staff", 200), ("admin", 200)])
def test_a_called_ticket_is_cancelled_only_by_its_window_or_an_admin(client, tokens, store, role, status):
    tokens["other_staff"] = store.create_token("staff", "李华", (5,))
    t = take(client, tokens, "B").json()
    act(client, tokens, 2, "call-next")  # window 2 belongs to the "staff" token
    r = client.post(f"/api/tickets/{t['id']}/cancel", headers=auth(tokens[role]))
    assert r.status_code == status
    window_2 = client.get("/api/windows").json()[1]
    assert (window_2["current"] is None) == (status == 200)


def test_a_waiting_ticket_is_cancelled_by_whoever_holds_its_id(client, tokens):
    t = take(client, tokens).json()
    r = client.post(f"/api/tickets/{t['id']}/cancel", headers=auth(tokens["terminal"]))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_transfer_to_an_unknown_service_is_404(client, tokens):
    take(client, tokens)
    act(client, tokens, 1, "call-next")
    r = act(client, tokens, 1, "transfer", service="Q")
    assert r.status_code == 404 and "unknown service 'Q'" in r.json()["detail"]


def test_openapi_documents_the_error_shape_and_bearer_auth(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    issue = spec["paths"]["/api/tickets"]["post"]
    assert issue["security"] == [{"HTTPBearer": []}]
    for status in ("401", "404", "409", "422"):
        assert issue["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "text/event-stream" in spec["paths"]["/api/events"]["get"]["responses"]["200"]["content"]


def test_reads_close_the_previous_day_before_anyone_writes(client, tokens, clock):
    t = take(client, tokens).json()
    clock.advance(days=1)
    assert client.get(f"/api/tickets/{t['id']}").json()["status"] == "cancelled"
    assert client.get("/api/services").json()[0]["waiting"] == 0


def test_me_names_the_token(client, tokens):
    assert client.get("/api/me", headers=auth(tokens["staff"])).json() == {"name": "张敏", "role": "staff",
                                                                           "windows": [1, 2], "via": "token"}
    assert client.get("/api/me").status_code == 401


def test_display_snapshot_has_everything_a_display_shows(client, tokens, store):
    for _ in range(3):
        take(client, tokens, "A")
    act(client, tokens, 1, "call-next")
    act(client, tokens, 1, "recall")
    snap = client.get("/api/display").json()
    assert snap["hall"]["name"] == "示范区政务服务中心" and snap["hall"]["sla_wait_minutes"] == 10
    assert [(c["type"], c["ticket"]["number"], c["window"]) for c in snap["calls"]] == \
        [("ticket.recalled", "A001", 1), ("ticket.called", "A001", 1)]
    assert snap["last_event_id"] == store.last_event_id()
    assert next(s for s in snap["services"] if s["code"] == "A")["waiting"] == 2
    assert snap["windows"][0]["current"]["number"] == "A001"
    assert snap["voice"] == {"available": False, "reason": "voice is not configured on this server"}


def test_only_an_admin_sets_the_notice(client, tokens):
    r = client.put("/api/hall/notice", json={"notice": "今日下午 3 点起 8 号窗口暂停"}, headers=auth(tokens["staff"]))
    assert r.status_code == 403
    r = client.put("/api/hall/notice", json={"notice": "今日下午 3 点起 8 号窗口暂停"}, headers=auth(tokens["admin"]))
    assert r.status_code == 200
    assert client.get("/api/display").json()["hall"]["notice"] == "今日下午 3 点起 8 号窗口暂停"
    too_long = client.put("/api/hall/notice", json={"notice": "长" * 201}, headers=auth(tokens["admin"]))
    assert too_long.status_code == 422


def test_announcements_without_voice_say_why(client):
    r = client.get("/api/announcements", params={"number": "A001", "window": 3})
    assert r.status_code == 503 and r.json()["error"] == "voice_unavailable"
    assert client.get("/api/announcements", params={"number": "a;rm", "window": 3}).status_code == 422
    assert client.get("/api/announcements", params={"number": "A001", "window": 99}).status_code == 404


def test_announcement_is_a_cached_wav(store, tokens, tmp_path):
    from kiosq.queue.voice import Voice
    with TestClient(create_app(store, voice=Voice(tmp_path / "voice"))) as c:
        r = c.get("/api/announcements", params={"number": "A001", "window": 3})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.content[:4] == b"RIFF" and len(r.content) > 22050  # over half a second of 16-bit audio
        assert c.get("/api/announcements", params={"number": "A001", "window": 3}).content == r.content
        assert len(list((tmp_path / "voice").glob("*.wav"))) == 1


def test_stats_are_for_admins_and_cover_the_day(client, tokens, clock):
    for _ in range(2):
        take(client, tokens, "A")
    act(client, tokens, 1, "call-next")
    clock.advance(minutes=4)
    act(client, tokens, 1, "finish")
    assert client.get("/api/stats", headers=auth(tokens["staff"])).status_code == 403
    figures = client.get("/api/stats", headers=auth(tokens["admin"])).json()
    assert figures["day"] == "2026-11-23"
    assert (figures["hall"]["issued"], figures["hall"]["served"], figures["hall"]["waiting"]) == (2, 1, 1)
    assert figures["hall"]["service_minutes"]["mean"] == 4.0
    csv_answer = client.get("/api/stats/export.csv", headers=auth(tokens["admin"]))
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert csv_answer.text.lstrip("\ufeff").splitlines()[1].startswith("2026-11-23,")
    chart = client.get("/api/stats/chart.svg", headers=auth(tokens["admin"]))
    assert chart.headers["content-type"] == "image/svg+xml" and chart.text.startswith("<svg")
    future = client.get("/api/stats", params={"day": "2026-12-31"}, headers=auth(tokens["admin"]))
    assert future.status_code == 404
    past = client.get("/api/stats", params={"day": "2026-11-01"}, headers=auth(tokens["admin"])).json()
    assert (past["day"], past["hall"]["issued"]) == ("2026-11-01", 0)


@pytest.mark.parametrize("path", ["/display/hall", "/display/window/3", "/window/1", "/t/1-abcdefghijklmnop", "/admin"])
def test_pages_are_served_as_html(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/static/common.js">' in r.text
    assert client.get("/static/common.js").status_code == 200


def test_follow_urls_come_from_the_hall_file_never_from_the_host_header(client, tokens, tmp_path, clock, database):
    """The slip's QR code is the follow_url: a request with `Host: evil.example` must not
    make the hall print a link to someone else's site."""
    from kiosq.queue.config import parse_hall
    from kiosq.queue.store import Store

    forged = client.post("/api/tickets", json={"service": "B"},
                         headers={**auth(tokens["terminal"], "k-forged"), "Host": "evil.example"}).json()
    assert forged["follow_url"] == f"http://127.0.0.1:8000/t/{forged['id']}"  # the server's own address
    text = (Path(__file__).parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8")
    hall = parse_hall(text.replace("[hall]", '[hall]\npublic_url = "https://hall.district.lan:8443"', 1))
    store = Store.in_dir(tmp_path / "public", hall, clock=clock, database=database)  # the same database
    try:
        secret = store.create_token("terminal", "T02")
        with TestClient(create_app(store)) as c:
            r = c.post("/api/tickets", json={"service": "A"}, headers={
                "Authorization": f"Bearer {secret}", "Idempotency-Key": "k1", "Host": "evil.example"})
            assert r.status_code == 201
            assert r.json()["follow_url"] == f"https://hall.district.lan:8443/t/{r.json()['id']}"
    finally:
        store.close()
