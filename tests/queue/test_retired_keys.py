"""A key that `rotate-key --finish` dropped is retired in the database (#17): a server
process of the hall whose data folder still holds the old `applicant.key` (the rotation
ran on another folder's copy) refuses new filings and notes with a 503 that says which file
to copy, instead of sealing records no other process can open; restarted with that file, it
does not start. Over real HTTP against `kiosq server` processes on PostgreSQL: two data
folders on one database (on SQLite the database is in the data folder, which holds the key)."""

import json
import shutil

import pytest

from tests.queue.test_applications_http import PEOPLE, application, get, post
from tests.queue.test_keys import run_kiosq, start_fails

pytestmark = pytest.mark.slow


def test_a_server_with_a_retired_key_seals_nothing_and_does_not_start_again(hall_server, tmp_path, database):
    if database.url is None:
        pytest.skip("two data folders on one database: PostgreSQL (SQLite's database is in its data folder)")
    srv = hall_server(tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy2(srv.data_dir / "applicant.key", tmp_path / "b" / "applicant.key")  # the copy that is forgotten
    stale = hall_server(tmp_path / "b", tokens=False)
    stale.tokens = srv.tokens
    r = post(stale, "/api/applications", "terminal", application(*PEOPLE[0]), key="before")
    assert r.status_code == 201
    number = r.json()["tracking_no"]

    done = run_kiosq(srv, "server", "rotate-key", "--json")
    assert done.returncode == 0, done.stderr
    old, new = json.loads(done.stdout)["keys"]
    done = run_kiosq(srv, "server", "rotate-key", "--finish")
    assert done.returncode == 0 and f"dropped {old}" in done.stdout, done.stderr

    # The stale process still holds only the old key: it seals nothing more under it.
    r = post(stale, "/api/applications", "terminal", application(*PEOPLE[1]), key="after")
    assert r.status_code == 503 and r.json()["error"] == "key_retired", r.text
    assert "applicant.key" in r.json()["detail"] and old in r.json()["detail"]
    r = post(stale, f"/api/applications/{number}/return", "staff", {"note": "请补充材料"})
    assert r.status_code == 503 and r.json()["error"] == "key_retired", r.text
    # Nothing was written: the application is as it was, and the other process files as before.
    assert get(srv, f"/api/applications/{number}", "staff").json()["status"] == "submitted"
    assert post(srv, "/api/applications", "terminal", application(*PEOPLE[1]), key="fine").status_code == 201
    assert get(srv, "/api/applications", "staff").json()["count"] == 2

    stale.stop()
    done = start_fails(stale)
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert done.returncode == 1 and len(error) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "applicant.key" in error[0] and "retired" in error[0] and new not in error[0]
    shutil.copy2(srv.data_dir / "applicant.key", stale.data_dir / "applicant.key")  # what the sentence says
    stale.start()
    assert get(stale, f"/api/applications/{number}/personal", "admin").json()["applicant"]["name"] == PEOPLE[0][1]
