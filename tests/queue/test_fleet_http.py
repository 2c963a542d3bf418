"""The fleet over real HTTP against `kiosq server` processes: a code from `kiosq server
enroll-code` enrolls a terminal once, revocation refuses it at its next request, heartbeats
lapse (a hall file with a short online window instead of 90 s), a bundle published with
`kiosq server publish` while the server runs reaches its catalog and its terminals, an
interrupted download resumes with Range, and tickets are refused when the hall is closed."""

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosq.content import bundle
from kiosq.content.catalog import SAMPLE, load_files

pytestmark = pytest.mark.slow
DEFAULT_HALL = (Path(__file__).parents[2] / "queue" / "halls" / "default.toml").read_text("utf-8")
NEW_ITEM = "TEST-HTTP-001"
HALL_TZ = ZoneInfo("Asia/Shanghai")  # the default hall's time zone
KIOSQ = [str(Path(sys.executable).parent / "kiosq")]
if not Path(KIOSQ[0]).is_file():
    KIOSQ = [sys.executable, "-m", "kiosq.provisioning.cli"]


def request(srv, method, path, body=None, token=None, headers=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, dict(resp.getheaders()), raw
    finally:
        conn.close()


def call(srv, method, path, body=None, token=None, headers=None):
    status, _headers, raw = request(srv, method, path, body, token, headers)
    return status, json.loads(raw) if raw else None


def kiosq(*args):
    done = subprocess.run([*KIOSQ, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def eventually(check, timeout=8.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout} s")
        time.sleep(0.1)  # polling interval of a bounded wait


@pytest.fixture
def server_with(hall_server, tmp_path):
    """`server_with(hall_extra)`: a server (conftest's hall_server) whose data folder holds
    hall.toml = the default hall plus `hall_extra`."""
    made = []

    def start(extra: str = ""):
        data = tmp_path / f"fleet{len(made)}"
        data.mkdir(mode=0o700)
        (data / "hall.toml").write_text(DEFAULT_HALL + "\n" + extra, "utf-8")
        made.append(data)
        return hall_server(data)

    return start


def test_enroll_with_a_cli_code_once_then_revoke(server_with):
    srv = server_with()
    code, out, err = kiosq("server", "enroll-code", "--terminal", "T03", "--ttl", "30m", "--data-dir",
                           str(srv.data_dir), "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["terminal"] == "T03" and len(made["code"]) == 9 and made["expires_at"].endswith("+08:00")
    status, body = call(srv, "POST", "/api/terminals/enroll", {"code": made["code"]})
    assert status == 201, body
    token = body["token"]
    assert call(srv, "GET", "/api/me", token=token)[1]["name"] == "T03"
    status, again = call(srv, "POST", "/api/terminals/enroll", {"code": made["code"]})
    assert status == 410 and again["error"] == "code_used"
    beat = {"software_version": "0.3.0", "uptime_seconds": 5, "devices": {"printer": "ok"}}
    assert call(srv, "POST", "/api/terminals/heartbeat", beat, token)[0] == 200
    status, revoked = call(srv, "POST", "/api/terminals/T03/revoke", token=srv.tokens["admin"])
    assert status == 200 and revoked["revoked"] is True
    status, refused = call(srv, "POST", "/api/terminals/heartbeat", beat, token)
    assert status == 401 and refused["error"] == "unauthorized"
    # plain text on stdout without --json: just the code
    code, out, err = kiosq("server", "enroll-code", "--terminal", "T04", "--data-dir", str(srv.data_dir))
    assert code == 0 and len(out.strip()) == 9 and "T04" in err
    code, _out, err = kiosq("server", "enroll-code", "--terminal", "T04", "--ttl", "9d", "--data-dir",
                            str(srv.data_dir))
    assert code == 2 and "7 days" in err


def test_heartbeats_appear_and_lapse(server_with):
    srv = server_with("[fleet]\nheartbeat_seconds = 0.5\nonline_seconds = 1.5\n")
    admin, terminal = srv.tokens["admin"], srv.tokens["terminal"]
    status, answer = call(srv, "POST", "/api/terminals/heartbeat",
                          {"software_version": "0.3.0", "uptime_seconds": 1,
                           "devices": {"printer": "out", "card_reader": "ok"}}, terminal)
    assert status == 200 and answer["heartbeat_seconds"] == 0.5 and answer["terminal"] == "T"
    fleet = call(srv, "GET", "/api/terminals", token=admin)[1]
    assert [(t["terminal"], t["online"], t["paper"]) for t in fleet["terminals"]] == [("T", True, "out")]
    assert [a["kind"] for a in fleet["alerts"]] == ["paper_out"]

    def offline():
        data = call(srv, "GET", "/api/terminals", token=admin)[1]
        return not data["terminals"][0]["online"] and data
    lapsed = eventually(offline, what="T offline")
    assert [a["kind"] for a in lapsed["alerts"]] == ["offline", "paper_out"]


def test_maintenance_pin_lockouts_in_heartbeats_show_in_the_fleet_view(server_with):
    srv = server_with()
    admin, terminal = srv.tokens["admin"], srv.tokens["terminal"]
    base = {"software_version": "0.3.0", "uptime_seconds": 1, "devices": {"printer": "ok"}}

    def beat(maintenance):
        return call(srv, "POST", "/api/terminals/heartbeat", {**base, "maintenance": maintenance}, terminal)

    def seen():
        data = call(srv, "GET", "/api/terminals", token=admin)[1]
        return data["terminals"][0], [a for a in data["alerts"] if a["kind"] == "pin_lockout"]

    assert call(srv, "POST", "/api/terminals/heartbeat", base, terminal)[0] == 200  # an older kiosk: no field
    view, alerts = seen()
    assert (view["pin_lockouts"], view["pin_locked_until"], alerts) == (0, None, [])

    now = datetime.now(UTC)  # the server runs on the wall clock: the times are set around it
    until, began = now + timedelta(minutes=5), now - timedelta(seconds=10)
    status, _ = beat({"lockouts": 2, "locked_until": until.isoformat(), "last_lockout_at": began.isoformat()})
    assert status == 200
    view, alerts = seen()
    assert view["pin_lockouts"] == 2
    assert view["pin_locked_until"] == until.astimezone(HALL_TZ).isoformat(timespec="seconds")
    assert view["pin_last_lockout_at"] == began.astimezone(HALL_TZ).isoformat(timespec="seconds")
    assert len(alerts) == 1 and "locked until" in alerts[0]["detail"] and "2 lockout(s)" in alerts[0]["detail"]

    # served, but begun within the day: still an alert (someone tried PINs overnight), no longer locked
    beat({"lockouts": 2, "locked_until": None, "last_lockout_at": began.isoformat()})
    view, alerts = seen()
    assert view["pin_locked_until"] is None and len(alerts) == 1 and "locked until" not in alerts[0]["detail"]
    # a lockout long ago: counted, not an alert
    beat({"lockouts": 2, "locked_until": None, "last_lockout_at": (now - timedelta(days=2)).isoformat()})
    view, alerts = seen()
    assert view["pin_lockouts"] == 2 and alerts == []

    for bad in ({"lockouts": -1}, {"lockouts": "two"}, {"locked_until": "2026-11-23T02:00:00"},
                {"locked_until": "tomorrow"}, {"lockouts": 1, "why": "x"}):
        status, refused = beat(bad)
        assert status == 422, (bad, refused)
        assert "maintenance" in json.dumps(refused), refused


def build(out: Path, extra: bool) -> Path:
    items = load_files(SAMPLE)
    if extra:
        items.append(items[0].model_copy(update={"code": NEW_ITEM, "name": "联调新事项"}))
    return bundle.build(items, out)


def interrupted_download(srv, path, token, keep: int) -> bytes:
    """Read the first `keep` bytes of a download, then drop the connection."""
    with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {srv.host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw.split(b"\r\n\r\n", 1)[1]) < keep:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection early"
            raw += chunk
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    return body[:keep]


def test_publish_while_running_reaches_catalog_and_terminals_and_resumes_downloads(server_with, tmp_path):
    srv = server_with()
    admin, terminal = srv.tokens["admin"], srv.tokens["terminal"]
    assert call(srv, "GET", "/api/content/manifest", token=terminal)[0] == 404
    assert call(srv, "GET", f"/api/items/{NEW_ITEM}")[0] == 404
    first = build(tmp_path / "b1", extra=False)
    second = build(tmp_path / "b2", extra=True)
    for manifest in (first, second):
        code, out, err = kiosq("server", "publish", str(manifest), "--data-dir", str(srv.data_dir), "--json")
        assert code == 0, err
    published = json.loads(out)
    m2 = bundle.read_manifest(second)
    assert published["version"] == m2.version

    # the running server follows the other process's publication
    eventually(lambda: call(srv, "GET", f"/api/items/{NEW_ITEM}")[0] == 200, what="the new item on /api/items")
    status, manifest = call(srv, "GET", "/api/content/manifest", token=terminal)
    assert status == 200 and (manifest["version"], manifest["sha256"]) == (m2.version, m2.sha256)

    part = interrupted_download(srv, manifest["url"], terminal, keep=20000)
    status, headers, rest = request(srv, "GET", manifest["url"], token=terminal,
                                    headers={"Range": f"bytes={len(part)}-"})
    assert status == 206 and headers["x-content-sha256"] == m2.sha256
    assert len(part) + len(rest) == manifest["size"]
    assert hashlib.sha256(part + rest).hexdigest() == m2.sha256

    status, state = call(srv, "POST", "/api/content/rollback", token=admin)
    assert status == 200 and state["published"]["version"] == bundle.read_manifest(first).version
    assert call(srv, "GET", f"/api/items/{NEW_ITEM}")[0] == 404
    beat = call(srv, "POST", "/api/terminals/heartbeat", {"software_version": "1", "uptime_seconds": 1,
                                                          "content_version": m2.version}, terminal)[1]
    assert beat["content"]["version"] == state["published"]["version"]
    alerts = call(srv, "GET", "/api/terminals", token=admin)[1]["alerts"]
    assert [a["kind"] for a in alerts] == ["outdated"]

    code, _out, err = kiosq("server", "publish", str(tmp_path / "nothing.json"), "--data-dir", str(srv.data_dir))
    assert code == 1 and "cannot read the manifest" in err


def test_a_closed_hall_refuses_tickets_and_says_so(server_with):
    srv = server_with("[hours]\n")  # no opening at all: closed until further notice
    status, body = call(srv, "POST", "/api/tickets", {"service": "A"}, srv.tokens["terminal"],
                        {"Idempotency-Key": "closed-1"})
    assert status == 409 and body == {"error": "closed", "detail": "暂停取号 / Tickets are not being issued",
                                      "opens_at": None}
    services = call(srv, "GET", "/api/services")[1]
    assert all(s["open"] is False for s in services)
    assert call(srv, "GET", "/api/health")[1]["open"] is False
