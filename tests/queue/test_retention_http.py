"""Retention and terminals' limits over real HTTP against `kiosq server` processes: an
application closed 200 days ago (filed through the store on a clock set back) loses its
personal data to `kiosq server retention` or to the server's own daily run at start-up,
keeps its status, history and figures, while an open one as old is kept; the day's run is
done once with two server processes on one database; GET /api/retention for no token, a
wrong role and an admin; a terminal refused a priority the hall file does not give it, its
5th ticket in a minute answered 429 with Retry-After, its 4th lookup too, both shown on the
fleet view, and a staff token unaffected; the ticket limit exact with requests at once on two
processes, a replay never refused; lookups by code on the same budget."""

import json
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from kiosq.queue.config import load_hall
from kiosq.queue.items import ItemCatalog
from kiosq.queue.personal import Personal
from kiosq.queue.store import Store
from tests.conftest import FakeClock
from tests.queue.conftest import DEFAULT_HALL, KIOSQ
from tests.queue.test_applications_http import PEOPLE, application, lookup, post, wait_for

pytestmark = pytest.mark.slow
TIMEOUT = 10.0
ERASED = "personal data erased after 180 days"


def bearer(srv, role):
    return {"Authorization": f"Bearer {srv.tokens[role]}"}


def get(srv, path, role=None, **params):
    return requests.get(srv.url + path, params=params, headers=bearer(srv, role) if role else {}, timeout=TIMEOUT)


def file_long_ago(data_dir: Path, database, days: int) -> tuple[str, str]:
    """Two applications filed `days` ago through the store, as a server then would have:
    one completed that day, one still open. Returns their tracking numbers."""
    store = Store.in_dir(data_dir, load_hall(), clock=FakeClock(datetime.now(UTC) - timedelta(days=days)),
                         database=database)
    try:
        personal = Personal.in_dir(data_dir)
        store.seal_notes_with(personal)
        item = ItemCatalog(data_dir).get("GA-SFZ-002")
        assert item is not None
        numbers = []
        for n, (id_number, name, phone) in enumerate(PEOPLE[:2]):
            body = application(id_number, name, phone)
            record = {"applicant": body["applicant"], "values": body["values"]}
            app, _ = store.submit_application(item, terminal="T", id_hash=personal.id_hash(id_number),
                                              sealed=personal.seal(record), fingerprint=f"f{n}", provisional_no=None,
                                              caller="c", idempotency_key=f"k{n}")
            numbers.append(app.tracking_no)
        store.act_on_application(numbers[0], "accept", "张敏", None)
        store.act_on_application(numbers[0], "return", "张敏", f"请补充材料，联系 {PEOPLE[0][2]}")
        store.act_on_application(numbers[0], "accept", "张敏", None)
        store.act_on_application(numbers[0], "complete", "张敏", None)
    finally:
        store.close()
    return numbers[0], numbers[1]


def retention_cli(data_dir: Path, database: str | None, *args: str) -> dict:
    cmd = [*KIOSQ, "server", "retention", "--data-dir", str(data_dir), "--json", *args,
           *(["--database", database] if database else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr}"
    return json.loads(done.stdout)


def check_erased(srv, closed: str, still_open: str) -> None:
    view = get(srv, f"/api/applications/{closed}", "staff").json()
    assert view["status"] == "completed" and view["applicant"] is None and view["personal_erased"] == ERASED
    assert [s["action"] for s in view["history"]] == ["submit", "accept", "return", "accept", "complete"]
    assert all(s["note"] is None for s in view["history"])
    assert PEOPLE[0][1] not in json.dumps(view) and PEOPLE[0][2] not in json.dumps(view)
    assert get(srv, f"/api/applications/{closed}/personal", "staff").status_code == 410
    kept = get(srv, f"/api/applications/{still_open}", "staff").json()
    assert kept["status"] == "submitted" and kept["applicant"]["id_number"].endswith(PEOPLE[1][0][-2:])
    day = closed[2:10]
    first = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    figures = get(srv, "/api/applications/stats", "admin", **{"from": first, "to": first}).json()["hall"]
    assert (figures["submitted"], figures["completed"], figures["open"]) == (2, 1, 1)


def steady_hall_file(data_dir: Path) -> None:
    """DATA_DIR/hall.toml: the built-in hall with its rollover hour 12 hours away from now,
    as the test server runs it (ServerProcess.steady_hall), so that the command and the
    server count the same business day at any hour (with the built-in 04:00, from 04:00 to
    12:00 the command's day was today and the server's yesterday: it ran again)."""
    hour = (datetime.now(load_hall().tz).hour + 12) % 24
    text = re.sub(r"(?m)^rollover_hour\s*=.*$", f"rollover_hour = {hour}", DEFAULT_HALL.read_text("utf-8"))
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "hall.toml").write_text(text, "utf-8")


def test_kiosq_server_retention_erases_what_is_past_the_hall_s_days(hall_server, tmp_path, database):
    data_dir = tmp_path / "hall"
    steady_hall_file(data_dir)
    closed, still_open = file_long_ago(data_dir, database, days=200)
    dry = retention_cli(data_dir, database.url, "--dry-run")
    assert dry["dry_run"] is True and dry["applications_erased"] == 1 and dry["personal_days"] == 180
    assert retention_cli(data_dir, database.url, "--dry-run")["applications_erased"] == 1  # it changed nothing
    run = retention_cli(data_dir, database.url)
    assert run["state"] == "done" and run["applications_erased"] == 1 and run["by"].startswith("cli:")
    assert retention_cli(data_dir, database.url, "--dry-run")["applications_erased"] == 0

    srv = hall_server(data_dir)
    check_erased(srv, closed, still_open)
    report = get(srv, "/api/retention", "admin").json()
    # Today's run was the command's: the server's daily task found it done.
    assert report["last_run"]["by"].startswith("cli:") and report["last_run"]["applications_erased"] == 1
    assert report["next_run"] > report["last_run"]["finished_at"]
    runs = get(srv, "/api/audit", "admin", action="retention.ran").json()["entries"]
    assert [(e["actor"].startswith("cli:"), e["detail"]["applications_erased"]) for e in runs] == [(True, 1)]


def test_the_server_runs_it_by_itself_and_reports_it_to_admins_only(hall_server, tmp_path, database):
    data_dir = tmp_path / "hall"
    closed, still_open = file_long_ago(data_dir, database, days=181)
    srv = hall_server(data_dir)
    assert get(srv, "/api/retention").status_code == 401
    for role in ("terminal", "staff"):
        r = get(srv, "/api/retention", role)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"

    def done():
        last = get(srv, "/api/retention", "admin").json()["last_run"]
        return last if last and last["state"] == "done" else None
    last = wait_for(done, what="the start-up retention run")
    assert (last["by"], last["applications_erased"], last["events_days"]) == ("hall", 1, 30)
    check_erased(srv, closed, still_open)


def test_two_server_processes_run_it_once_a_day(hall_server, tmp_path, database):
    data_dir = tmp_path / "hall"
    file_long_ago(data_dir, database, days=365)
    a = hall_server(data_dir)
    b = hall_server(data_dir, tokens=False)
    b.tokens = a.tokens
    for srv in (a, b):
        wait_for(lambda srv=srv: (get(srv, "/api/retention", "admin").json()["last_run"] or {}).get("state") == "done",
                 what="the day's run")
    runs = get(b, "/api/audit", "admin", action="retention.ran").json()["entries"]
    assert len(runs) == 1 and runs[0]["detail"]["applications_erased"] == 1
    assert get(a, "/api/retention", "admin").json() == get(b, "/api/retention", "admin").json()


# -- terminals issue what a terminal may ----------------------------------------------------

def limited_hall(data_dir: Path, tickets: int = 4, lookups: int = 3) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "hall.toml").write_text(DEFAULT_HALL.read_text("utf-8") + "\n[terminals]\n"
                                        f"priorities = [\"normal\", \"elderly\"]\ntickets_per_minute = {tickets}\n"
                                        f"lookups_per_minute = {lookups}\n", "utf-8")


def ticket(srv, role, key, priority="normal"):
    return requests.post(srv.url + "/api/tickets", json={"service": "A", "priority": priority},
                         headers={**bearer(srv, role), "Idempotency-Key": key}, timeout=TIMEOUT)


def test_a_terminal_asks_only_for_its_priorities_and_at_its_rate(hall_server, tmp_path):
    limited_hall(tmp_path / "hall")
    srv = hall_server(tmp_path / "hall")
    hb = requests.post(srv.url + "/api/terminals/heartbeat", json={"software_version": "1", "uptime_seconds": 5},
                       headers=bearer(srv, "terminal"), timeout=TIMEOUT)
    assert hb.status_code == 200, hb.text

    refused = ticket(srv, "terminal", "p1", "appointment")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert "[terminals] priorities" in refused.json()["detail"]
    assert ticket(srv, "terminal", "p2", "green").status_code == 403
    assert ticket(srv, "staff", "s0", "appointment").status_code == 201  # staff give out what they did before

    for n in range(4):
        assert ticket(srv, "terminal", f"t{n}", "elderly" if n == 0 else "normal").status_code == 201
    fifth = ticket(srv, "terminal", "t4")
    assert fifth.status_code == 429 and fifth.json()["error"] == "rate_limited"
    assert 1 <= int(fifth.headers["Retry-After"]) <= 60 and "tickets_per_minute" in fifth.json()["detail"]
    for n in range(6):  # staff tokens have no such limit
        assert ticket(srv, "staff", f"s{n + 1}").status_code == 201

    for _ in range(3):
        r = requests.post(srv.url + "/api/applications/lookup", json={"id_number": PEOPLE[0][0]},
                          headers=bearer(srv, "terminal"), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    fourth = requests.post(srv.url + "/api/applications/lookup", json={"id_number": PEOPLE[0][0]},
                           headers=bearer(srv, "terminal"), timeout=TIMEOUT)
    assert fourth.status_code == 429 and "Retry-After" in fourth.headers

    fleet = get(srv, "/api/terminals", "admin").json()
    row = next(t for t in fleet["terminals"] if t["terminal"] == "T")
    assert (row["throttled"], row["throttled_tickets"], row["throttled_lookups"]) == (2, 1, 1)
    assert row["throttled_last_at"] is not None
    assert [a["kind"] for a in fleet["alerts"] if a["terminal"] == "T"] == ["throttled"]


def test_a_terminal_s_ticket_limit_is_exact_under_concurrency_and_a_replay_is_never_refused(hall_server, tmp_path):
    """8 requests at once from one terminal, spread over two server processes on one database,
    with tickets_per_minute = 3: exactly three tickets, five 429s; a retry of an issued
    request (its Idempotency-Key) gets its ticket again past the limit, and is not counted."""
    limited_hall(tmp_path / "hall", tickets=3)
    first = hall_server(tmp_path / "hall")
    second = hall_server(first.data_dir, tokens=False)
    second.tokens = first.tokens
    start = threading.Barrier(8)

    def take(n: int) -> requests.Response:
        start.wait(TIMEOUT)
        return ticket((first, second)[n % 2], "terminal", f"c{n}")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(take, range(8)))
    issued = [(n, r) for n, r in enumerate(answers) if r.status_code == 201]
    assert sorted(r.status_code for r in answers) == [201] * 3 + [429] * 5, [r.text for r in answers]
    assert all(r.json()["error"] == "rate_limited" for r in answers if r.status_code == 429)
    assert len({r.json()["number"] for _, r in issued}) == 3

    for n, r in issued:  # a retry after the limit: its own answer again, from either process
        for srv in (first, second):
            again = ticket(srv, "terminal", f"c{n}")
            assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.text
            assert again.json()["id"] == r.json()["id"]
    refused = next(n for n, r in enumerate(answers) if r.status_code == 429)
    assert ticket(first, "terminal", f"c{refused}").status_code == 429  # a refused request made nothing to replay
    fleet = get(first, "/api/terminals", "admin").json()
    row = next(t for t in fleet["terminals"] if t["terminal"] == "T")
    assert (row["throttled_tickets"], row["throttled_lookups"]) == (6, 0)


def test_a_terminal_s_lookups_by_code_count_against_its_limit_and_no_one_else_s(hall_server, tmp_path):
    """lookups_per_minute = 3: a kiosk's 4th lookup by code is 429 `rate_limited` even with the
    right code, and so is its next lookup by card (one budget); the citizen's own phone, and
    staff, look the same application up meanwhile."""
    limited_hall(tmp_path / "hall", lookups=3)
    srv = hall_server(tmp_path / "hall")
    filed = post(srv, "/api/applications", "terminal", application(*PEOPLE[0]), key="lk-1").json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    for _ in range(3):
        assert lookup(srv, number, code, "terminal").status_code == 200
    fourth = lookup(srv, number, code, "terminal")
    assert fourth.status_code == 429 and fourth.json()["error"] == "rate_limited", fourth.text
    assert "lookups_per_minute" in fourth.json()["detail"] and 1 <= int(fourth.headers["Retry-After"]) <= 60
    card = requests.post(srv.url + "/api/applications/lookup", json={"id_number": PEOPLE[0][0]},
                         headers=bearer(srv, "terminal"), timeout=TIMEOUT)
    assert card.status_code == 429 and card.json()["error"] == "rate_limited"
    for role in (None, "staff"):
        assert lookup(srv, number, code, role, address="198.51.100.20").status_code == 200
    row = next(t for t in get(srv, "/api/terminals", "admin").json()["terminals"] if t["terminal"] == "T")
    assert (row["throttled_tickets"], row["throttled_lookups"]) == (0, 2)
