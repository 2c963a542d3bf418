"""The fleet in process, on an injected clock: enrollment codes (once, expiry, replacement,
throttling), re-enrollment and revocation, heartbeats and the fleet view with its alerts,
the content rollout (publish, manifest, download with Range, rollback, the server's own
catalog following) and tickets refused outside opening hours."""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiosq.content import bundle
from kiosq.content.catalog import SAMPLE, load_files
from kiosq.queue import fleet, throttle
from kiosq.queue.api import create_app
from kiosq.queue.config import HallConfigError, parse_hall
from kiosq.queue.store import Store

NEW_ITEM = "TEST-NEW-001"


def auth(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin(store):
    return store.create_token("admin", "boss")


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as c:
        yield c


def new_code(client, admin, terminal="T03", ttl_minutes=60):
    r = client.post("/api/terminals/enroll-codes", json={"terminal": terminal, "ttl_minutes": ttl_minutes},
                    headers=auth(admin))
    assert r.status_code == 201, r.text
    return r.json()


def enroll(client, code):
    return client.post("/api/terminals/enroll", json={"code": code})


def beat(client, token, **body):
    payload = {"software_version": "0.3.0", "uptime_seconds": 60, **body}
    return client.post("/api/terminals/heartbeat", json=payload, headers=auth(token))


def fleet_of(client, admin):
    r = client.get("/api/terminals", headers=auth(admin))
    assert r.status_code == 200, r.text
    return r.json()


def one(client, admin, terminal="T03"):
    return next(t for t in fleet_of(client, admin)["terminals"] if t["terminal"] == terminal)


# -- enrollment ----------------------------------------------------------------------


def test_a_code_is_short_typeable_and_stored_only_hashed(client, admin, store):
    made = new_code(client, admin)
    assert len(made["code"]) == 9 and made["code"][4] == "-"
    assert set(made["code"].replace("-", "")) <= set(fleet.CODE_ALPHABET)
    assert made["terminal"] == "T03" and made["expires_at"] == "2026-11-23T11:00:00+08:00"
    stored = [r[0] for r in store.db.rows("SELECT hash FROM enroll_codes")]
    assert stored == [fleet.hash_code(made["code"])]
    assert made["code"].replace("-", "") not in repr(store.db.rows("SELECT * FROM enroll_codes"))
    if store.conn is not None:  # SQLite: not in the file either
        assert made["code"].replace("-", "") not in store.path.read_bytes().decode("latin-1")


def test_a_code_works_once_and_gives_a_terminal_token(client, admin):
    code = new_code(client, admin)["code"]
    # typed in lower case with a space instead of the dash
    r = enroll(client, code.lower().replace("-", " "))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["terminal"] == "T03" and body["token"].startswith("kq_t_")
    assert body["server_time"] == "2026-11-23T10:00:00+08:00"
    me = client.get("/api/me", headers=auth(body["token"])).json()
    assert (me["name"], me["role"]) == ("T03", "terminal")
    again = enroll(client, code)
    assert again.status_code == 410 and again.json()["error"] == "code_used"
    assert "once" in again.json()["detail"]


def test_expired_unknown_and_replaced_codes_are_refused(client, admin, clock):
    old = new_code(client, admin, ttl_minutes=5)["code"]
    clock.advance(minutes=6)
    r = enroll(client, old)
    assert r.status_code == 410 and r.json()["error"] == "code_expired"
    unknown = enroll(client, "AAAA-BBBB")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_code"
    first = new_code(client, admin, "T04")["code"]
    second = new_code(client, admin, "T04")["code"]
    assert enroll(client, first).json()["error"] == "code_replaced"
    assert enroll(client, second).status_code == 201


def test_wrong_codes_are_throttled_per_client_address(client, admin, clock):
    for _ in range(10):
        assert enroll(client, "ZZZZ-ZZZZ").status_code == 404
    good = new_code(client, admin)["code"]
    blocked = enroll(client, good)
    assert blocked.status_code == 429 and blocked.json()["error"] == "too_many_tries"
    assert 0 < int(blocked.headers["Retry-After"]) <= 600
    clock.advance(minutes=11)
    assert enroll(client, good).status_code == 201


def test_enroll_codes_need_an_admin_and_a_good_terminal_id(client, admin, store):
    staff = store.create_token("staff", "张敏", (1,))
    assert client.post("/api/terminals/enroll-codes", json={"terminal": "T03"}, headers=auth(staff)).status_code == 403
    assert client.post("/api/terminals/enroll-codes", json={"terminal": "T03"}).status_code == 401
    bad = client.post("/api/terminals/enroll-codes", json={"terminal": "../T03"}, headers=auth(admin))
    assert bad.status_code == 422
    taken = client.post("/api/terminals/enroll-codes", json={"terminal": "张敏"}, headers=auth(admin))
    assert taken.status_code == 422  # not a terminal id at all
    store.create_token("staff", "T09", (1,))
    clash = client.post("/api/terminals/enroll-codes", json={"terminal": "T09"}, headers=auth(admin))
    assert clash.status_code == 409 and clash.json()["error"] == "name_taken"


def test_enrolling_again_replaces_the_old_token(client, admin):
    first = enroll(client, new_code(client, admin)["code"]).json()["token"]
    assert beat(client, first).status_code == 200
    second = enroll(client, new_code(client, admin)["code"]).json()["token"]
    assert beat(client, first).status_code == 401
    assert beat(client, second).status_code == 200
    assert [t["terminal"] for t in fleet_of(client, admin)["terminals"]] == ["T03"]


def test_a_revoked_terminal_is_refused_at_once_and_can_be_enrolled_again(client, admin):
    token = enroll(client, new_code(client, admin)["code"]).json()["token"]
    assert beat(client, token).status_code == 200
    r = client.post("/api/terminals/T03/revoke", headers=auth(admin))
    assert r.status_code == 200 and r.json()["revoked"] is True and r.json()["online"] is False
    refused = beat(client, token)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    ticket = client.post("/api/tickets", json={"service": "A"}, headers={**auth(token), "Idempotency-Key": "k1"})
    assert ticket.status_code == 401
    data = fleet_of(client, admin)
    assert data["terminals"][0]["revoked"] is True and data["alerts"] == []
    assert client.post("/api/terminals/T99/revoke", headers=auth(admin)).status_code == 404
    back = enroll(client, new_code(client, admin)["code"]).json()["token"]
    assert beat(client, back).status_code == 200 and one(client, admin)["revoked"] is False


def test_revoking_makes_an_unused_code_useless(client, admin, store):
    store.create_token("terminal", "T05")
    code = new_code(client, admin, "T05")["code"]
    assert client.post("/api/terminals/T05/revoke", headers=auth(admin)).status_code == 200
    assert enroll(client, code).json()["error"] == "code_replaced"


# -- heartbeats and the fleet view --------------------------------------------------------


def test_heartbeats_appear_and_lapse_after_the_online_window(client, admin, clock):
    token = enroll(client, new_code(client, admin)["code"]).json()["token"]
    never = fleet_of(client, admin)
    assert never["terminals"][0]["online"] is False and never["terminals"][0]["last_seen"] is None
    assert never["alerts"] == [{"terminal": "T03", "kind": "offline", "detail": "never seen since it was enrolled"}]
    r = beat(client, token, content_version=None, devices={"printer": "ok", "card_reader": "ok", "scanner": "none"},
             outbox_waiting=2, outbox_refused=0, last_error="printer: timeout at 09:58")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["server_time"] == "2026-11-23T10:00:00+08:00" and answer["content"] is None
    assert answer["hours"] == {"open": True, "opens_at": None, "closes_at": None}
    assert answer["heartbeat_seconds"] == 30
    t = one(client, admin)
    assert (t["online"], t["last_seen"], t["software_version"], t["paper"], t["outbox_waiting"], t["uptime_seconds"],
            t["last_error"]) == (True, "2026-11-23T10:00:00+08:00", "0.3.0", "ok", 2, 60, "printer: timeout at 09:58")
    assert t["devices"] == {"printer": "ok", "card_reader": "ok", "scanner": "none"}
    assert fleet_of(client, admin)["alerts"] == []
    clock.advance(seconds=90)
    assert one(client, admin)["online"] is True
    clock.advance(seconds=1)
    lapsed = fleet_of(client, admin)
    assert lapsed["terminals"][0]["online"] is False
    assert lapsed["alerts"] == [{"terminal": "T03", "kind": "offline",
                                 "detail": "no heartbeat since 2026-11-23T10:00:00+08:00"}]


def test_the_online_window_comes_from_the_hall_file(tmp_path, clock, database):
    text = (Path(__file__).parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8")
    hall = parse_hall(text + "\n[fleet]\nheartbeat_seconds = 2\nonline_seconds = 5\n")
    store = Store.in_dir(tmp_path, hall, clock=clock, database=database)
    try:
        token, admin = store.create_token("terminal", "T07"), store.create_token("admin", "boss")
        with TestClient(create_app(store)) as client:
            assert beat(client, token).json()["heartbeat_seconds"] == 2
            clock.advance(seconds=6)
            assert one(client, admin, "T07")["online"] is False
    finally:
        store.close()
    with pytest.raises(HallConfigError, match="online_seconds"):
        parse_hall(text + "\n[fleet]\nheartbeat_seconds = 30\nonline_seconds = 10\n")


def test_alerts_for_paper_devices_and_refused_applications(client, admin, store):
    tokens = {name: store.create_token("terminal", name) for name in ("T01", "T02", "T03")}
    beat(client, tokens["T01"], devices={"printer": "out", "card_reader": "missing"})
    beat(client, tokens["T02"], devices={"printer": "near_end", "scanner": "missing"}, outbox_refused=1)
    beat(client, tokens["T03"], devices={"printer": "cover_open"})
    data = fleet_of(client, admin)
    assert {t["terminal"]: t["paper"] for t in data["terminals"]} == {"T01": "out", "T02": "low", "T03": "unknown"}
    assert [(a["terminal"], a["kind"], a["detail"]) for a in data["alerts"]] == [
        ("T01", "paper_out", "the receipt printer is out of paper"),
        ("T01", "device", "card_reader: missing"),
        ("T02", "paper_low", "the receipt paper is running low"),
        ("T02", "device", "scanner: missing"),
        ("T02", "outbox_refused", "1 application(s) refused by the server wait in the outbox"),
        ("T03", "device", "printer: cover_open"),
    ]


def test_the_fleet_view_counts_each_terminal_s_refusals_whatever_the_database_s_collation(store, clock):
    if store.db.kind == "postgresql":  # ICU's root order puts ';' before ':', which bytes do not
        store.db.execute('ALTER TABLE throttle ALTER COLUMN scope TYPE text COLLATE "und-x-icu"')
    for scopes in (("throttled:tickets:T01", "tickets:T01"), ("throttled:tickets:T01", "lookups:T02"),
                   ("throttled:lookups:T02", "throttle", "throttled;T03", "THROTTLED:tickets:T04")):
        store.throttle_count(scopes, clock.now - timedelta(hours=1))
        clock.advance(seconds=1)
    last = clock.now - timedelta(seconds=1)
    assert throttle.throttled_terminals(store) == {
        "T01": fleet.Throttled(tickets=2, last_at=last - timedelta(seconds=1)),
        "T02": fleet.Throttled(lookups=1, last_at=last)}


@pytest.mark.parametrize("body, where", [
    ({"uptime_seconds": 1}, "software_version"),
    ({"software_version": "1", "uptime_seconds": -1}, "uptime_seconds"),
    ({"software_version": "1", "uptime_seconds": 1, "devices": {"printer": "jammed"}}, "devices.printer"),
    ({"software_version": "1", "uptime_seconds": 1, "devices": {"fax": "ok"}}, "devices.fax"),
    ({"software_version": "1", "uptime_seconds": 1, "content_sha256": "xyz"}, "content_sha256"),
    ({"software_version": "1", "uptime_seconds": 1, "outbox_waiting": "many"}, "outbox_waiting"),
    ({"software_version": "1", "uptime_seconds": 1, "name": "张三"}, "name"),
])
def test_bad_heartbeats_are_422_and_name_the_field(client, store, body, where):
    token = store.create_token("terminal", "T01")
    r = client.post("/api/terminals/heartbeat", json=body, headers=auth(token))
    assert r.status_code == 422 and r.json()["detail"].startswith(where), r.text


def test_only_terminals_send_heartbeats_and_only_admins_see_the_fleet(client, admin, store):
    staff = store.create_token("staff", "张敏", (1,))
    assert beat(client, admin).status_code == 403
    assert beat(client, "kq_t_nonsense").status_code == 401
    assert client.get("/api/terminals", headers=auth(staff)).status_code == 403
    assert client.get("/api/terminals").status_code == 401
    big = client.post("/api/terminals/heartbeat", content=b'{"x": "' + b"a" * 17000 + b'"}',
                      headers={**auth(store.create_token("terminal", "T01")), "Content-Type": "application/json"})
    assert big.status_code == 413


def test_state_changes_are_events_without_free_text(client, admin, store):
    token = store.create_token("terminal", "T01")
    start = store.last_event_id()
    beat(client, token, devices={"printer": "ok"}, last_error="secret detail")
    beat(client, token, devices={"printer": "ok"})  # nothing changed: no event
    beat(client, token, devices={"printer": "out"})
    events = [e for e in store.events_after(start) if e.type == "terminal.changed"]
    assert len(events) == 2
    assert '"paper":"out"' in events[1].data.replace(" ", "") and "secret detail" not in events[0].data


# -- content rollout -------------------------------------------------------------------


def build_bundle(out: Path, extra: bool) -> Path:
    items = load_files(SAMPLE)
    if extra:
        items.append(items[0].model_copy(update={"code": NEW_ITEM, "name": "测试新事项"}))
    return bundle.build(items, out)


def publish_cli_way(store, manifest: Path):
    from kiosq.queue.rollout import Rollout
    return Rollout(store.path.parent).publish_manifest(manifest)


def test_publish_manifest_download_with_range_and_rollback(client, admin, store, tmp_path):
    terminal = store.create_token("terminal", "T01")
    assert client.get("/api/content/manifest", headers=auth(terminal)).json()["error"] == "not_published"
    first = publish_cli_way(store, build_bundle(tmp_path / "b1", extra=False))
    second = bundle.read_manifest(build_bundle(tmp_path / "b2", extra=True))
    assert second.version != first.version
    # the second reaches the server's folder only through `kiosq server publish`; here by hand
    publish_cli_way(store, tmp_path / "b2" / f"catalog-{second.version}.json")
    r = client.get("/api/content/manifest", headers=auth(terminal))
    assert r.status_code == 200
    m = r.json()
    assert (m["version"], m["sha256"], m["items"]) == (second.version, second.sha256, second.items)
    assert m["url"] == f"/api/content/bundles/{second.version}"
    data = (tmp_path / "b2" / second.file).read_bytes()
    assert m["size"] == len(data)
    # An interrupted download resumed with Range gives the whole file back.
    full = client.get(m["url"], headers=auth(terminal))
    assert full.status_code == 200 and full.headers["X-Content-SHA256"] == second.sha256
    part = full.content[:5000]
    rest = client.get(m["url"], headers={**auth(terminal), "Range": f"bytes={len(part)}-"})
    assert rest.status_code == 206 and rest.headers["Content-Range"] == f"bytes 5000-{len(data) - 1}/{len(data)}"
    assert hashlib.sha256(part + rest.content).hexdigest() == second.sha256
    # heartbeats carry the published version; an old terminal is outdated
    assert beat(client, terminal, content_version=first.version).json()["content"]["version"] == second.version
    alert = fleet_of(client, admin)["alerts"]
    assert alert == [{"terminal": "T01", "kind": "outdated",
                      "detail": f"content {first.version}, published {second.version}"}]
    state = client.get("/api/content", headers=auth(admin)).json()
    assert state["published"]["version"] == second.version and state["previous"] == first.version
    assert [(b["version"], b["published"], b["previous"]) for b in state["bundles"]] == [
        (v, v == second.version, v == first.version) for v in sorted([first.version, second.version], reverse=True)]
    back = client.post("/api/content/rollback", headers=auth(admin))
    assert back.status_code == 200 and back.json()["published"]["version"] == first.version
    assert client.get("/api/content/manifest", headers=auth(terminal)).json()["version"] == first.version
    assert one(client, admin, "T01")["outdated"] is False
    again = client.post("/api/content/publish", json={"version": second.version}, headers=auth(admin))
    assert again.status_code == 200 and again.json()["published"]["version"] == second.version
    kinds = [e.type for e in store.events_after(0) if e.type.startswith("content.")]
    assert kinds == ["content.rolled_back", "content.published"]


def test_publishing_reloads_the_servers_catalog(client, admin, store, tmp_path):
    assert client.get(f"/api/items/{NEW_ITEM}").status_code == 404
    manifest = bundle.read_manifest(build_bundle(tmp_path / "b", extra=True))
    old = bundle.read_manifest(build_bundle(tmp_path / "a", extra=False))
    from kiosq.queue.rollout import Rollout
    rollout = Rollout(store.path.parent)  # another process: the server follows on its own
    rollout.publish_manifest(tmp_path / "a" / f"catalog-{old.version}.json")
    rollout.publish_manifest(tmp_path / "b" / f"catalog-{manifest.version}.json")
    assert client.app.state.rollout.follow() is True
    assert client.get(f"/api/items/{NEW_ITEM}").json()["name"] == "测试新事项"
    assert client.get("/api/items").json()["source"] == f"bundle {manifest.version}"
    assert client.post("/api/content/rollback", headers=auth(admin)).status_code == 200
    assert client.get(f"/api/items/{NEW_ITEM}").status_code == 404  # through the API: at once


def test_content_errors(client, admin, store):
    terminal = store.create_token("terminal", "T01")
    assert client.post("/api/content/rollback", headers=auth(admin)).json()["error"] == "no_previous"
    missing = client.post("/api/content/publish", json={"version": "20260101.000000-deadbeef"}, headers=auth(admin))
    assert missing.status_code == 404
    assert client.post("/api/content/publish", json={"version": "../x"}, headers=auth(admin)).status_code == 404
    assert client.get("/api/content/bundles/..%2Fkiosq.db", headers=auth(terminal)).status_code == 404
    assert client.get("/api/content/bundles/nothing", headers=auth(terminal)).status_code == 404
    assert client.post("/api/content/rollback", headers=auth(terminal)).status_code == 403
    assert client.get("/api/content/manifest").status_code == 401


# -- opening hours ---------------------------------------------------------------------


@pytest.fixture
def hours_client(tmp_path, clock, database):
    text = (Path(__file__).parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8")
    hall = parse_hall(text + '\n[hours]\nmon = "08:30-12:00,13:30-17:30"\ntue = "08:30-12:00,13:30-17:30"\n')
    store = Store.in_dir(tmp_path / "h", hall, clock=clock, database=database)
    with TestClient(create_app(store)) as client:
        yield client, store, store.create_token("terminal", "T01")
    store.close()


def test_tickets_are_refused_outside_opening_hours(hours_client, clock):
    client, _store, token = hours_client

    def take(key):
        return client.post("/api/tickets", json={"service": "A"}, headers={**auth(token), "Idempotency-Key": key})

    issued = take("before-noon")
    assert issued.status_code == 201  # Monday 10:00
    services = client.get("/api/services").json()
    assert {(s["open"], s["opens_at"], s["closes_at"]) for s in services} == {(True, None, "2026-11-23T12:00:00+08:00")}
    clock.now = clock.now.replace(hour=4, minute=10)  # 12:10 in Shanghai: lunch
    lunch = take("lunch")
    assert lunch.status_code == 409
    assert lunch.json() == {"error": "closed", "opens_at": "2026-11-23T13:30:00+08:00",
                            "detail": "现在不是取号时间，今天 13:30 起可以取号 / Tickets start again at 13:30 today"}
    # the same request again after closing gets the ticket it already had
    assert take("before-noon").json()["id"] == issued.json()["id"]
    clock.now = clock.now.replace(hour=10)  # 18:10
    evening = take("evening").json()
    assert evening["detail"] == "取号时间已结束，明天 08:30 起可以取号 / Tickets start again at 08:30 tomorrow"
    health = client.get("/api/health").json()
    assert (health["open"], health["opens_at"], health["closes_at"]) == (False, "2026-11-24T08:30:00+08:00", None)
    assert client.get("/api/services").json()[0]["open"] is False
    clock.advance(days=1)  # Tuesday 18:10: next is Monday, the week's other days are closed
    assert take("tuesday").json()["opens_at"] == "2026-11-30T08:30:00+08:00"


def test_heartbeats_tell_terminals_the_hours(hours_client, clock):
    client, _store, token = hours_client
    clock.now = clock.now.replace(hour=10)  # 18:10
    assert beat(client, token).json()["hours"] == {"open": False, "opens_at": "2026-11-24T08:30:00+08:00",
                                                   "closes_at": None}


def test_enroll_code_ttl_parsing():
    assert fleet.parse_ttl("1h") == timedelta(hours=1)
    assert fleet.parse_ttl("45") == timedelta(minutes=45)
    assert fleet.parse_ttl(" 2d ") == timedelta(days=2)
    for bad in ("0m", "8d", "1 week", "-1h", ""):
        with pytest.raises(ValueError):
            fleet.parse_ttl(bad)
