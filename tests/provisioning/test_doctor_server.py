"""`kiosq doctor --server` against a real `kiosq server` process on 127.0.0.1 and its real
database, on SQLite and on PostgreSQL (the `database` fixture runs each test on both)."""

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosq.provisioning.cli import main
from kiosq.provisioning.doctor import OK, WARN
from kiosq.provisioning.server_doctor import LATENCY_WARN, classify_database
from tests.conftest import TEMPLATE
from tests.pg_cluster import PASSWORD
from tests.queue.conftest import KIOSQ, ServerProcess, free_port

NAMES = ["hall", "database", "keys", "server", "disk"]


def doctor(data_dir: Path, url: str, *args: str) -> tuple[int, dict[str, str], str]:
    """Run the real command: (exit code, {check name: its line}, everything it printed)."""
    cmd = [*KIOSQ, "doctor", "--server", "--data-dir", str(data_dir), "--url", url, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = {line.split()[1]: line for line in done.stdout.splitlines()}
    return done.returncode, lines, done.stdout + done.stderr


def database_args(server: ServerProcess) -> list[str]:
    return ["--database", server.database] if server.database else []


@pytest.fixture
def server(tmp_path, database):
    """A hall server on the test's database, not started yet."""
    srv = ServerProcess(tmp_path / "data", tmp_path, database=database.url)
    yield srv
    srv.stop()


def test_every_check_is_ok_with_the_server_running(server):
    server.start()
    code, lines, out = doctor(server.data_dir, server.url, *database_args(server))
    assert code == 0, out
    assert list(lines) == NAMES
    assert all(line.startswith("OK ") for line in lines.values()), out
    assert PASSWORD not in out
    if server.database:
        port = server.database.split("@")[1].split("/")[0]  # 127.0.0.1:PORT
        assert f"database     PostgreSQL kiosq@{port}/" in lines["database"]
        assert "every server process of this hall needs this same file" in lines["keys"]
        assert f"its database: PostgreSQL kiosq@{port}/" in lines["server"]
    else:
        assert f"database     SQLite {server.data_dir / 'kiosq.db'}, schema " in lines["database"]
        assert "every server process" not in lines["keys"]
        assert "its database: SQLite" in lines["server"]
    assert " ms" in lines["database"] and "(mode 600)" in lines["keys"]
    code, _, out = doctor(server.data_dir, server.url, *database_args(server), "--json")
    assert code == 0 and [c["name"] for c in json.loads(out)] == NAMES


def test_no_server_running_warns_and_the_rest_is_ok(server):
    server.start()
    server.stop()
    code, lines, out = doctor(server.data_dir, server.url, *database_args(server))
    assert code == 0, out
    assert lines["server"].startswith("WARN  server") and f"no server answers at {server.url}" in lines["server"]
    assert "systemctl status kiosq-server" in lines["server"]
    assert all(line.startswith("OK ") for name, line in lines.items() if name != "server"), out


def test_a_database_nothing_listens_on_fails_in_one_line(server):
    server.token("admin", "ADM")  # the data folder, its database, and on PostgreSQL the note of it
    port = free_port()
    code, lines, out = doctor(server.data_dir, server.url, "--database", f"postgresql://kiosq@127.0.0.1:{port}/kiosq")
    assert code == 1
    assert lines["database"].startswith("FAIL  database")
    assert f"cannot connect to the PostgreSQL database 'kiosq' on 127.0.0.1:{port}" in lines["database"]
    assert "Traceback" not in out and "\t" not in out
    assert [line.split()[1] for line in out.splitlines()] == NAMES  # each check one line, nothing else


def test_an_applicant_key_others_may_read_fails(server):
    server.start()
    server.stop()
    key = server.data_dir / "applicant.key"
    key.chmod(0o644)
    code, lines, out = doctor(server.data_dir, server.url, *database_args(server))
    assert code == 1
    assert lines["keys"].startswith("FAIL  keys") and "mode 644" in lines["keys"]
    assert f"chmod 600 {key}" in lines["keys"]
    assert lines["database"].startswith("OK "), out


@pytest.mark.postgresql_only
def test_a_server_on_postgresql_and_a_data_folder_that_opens_sqlite_fail(server, tmp_path):
    server.start()
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    code, lines, out = doctor(elsewhere, server.url)
    assert code == 1
    assert lines["server"].startswith("FAIL  server"), out
    assert "runs on PostgreSQL kiosq@127.0.0.1:" in lines["server"]
    assert f"give SQLite {elsewhere / 'kiosq.db'}" in lines["server"]
    assert "pass the server's --database" in lines["server"] and "[database] url" in lines["server"]
    assert lines["database"].startswith("WARN  database") and "no database at" in lines["database"]
    assert not (elsewhere / "kiosq.db").exists()  # the doctor makes no database


@pytest.mark.postgresql_only
def test_another_database_given_to_the_doctor_fails_and_the_folder_keeps_its_own(server, pg_cluster):
    server.start()
    note = server.data_dir / "database.url"
    assert note.read_text().strip() == server.database
    other = pg_cluster.new_database("doctor_other", template=TEMPLATE)
    try:
        code, lines, out = doctor(server.data_dir, server.url, "--database", other)
    finally:
        pg_cluster.drop_database("doctor_other")
    assert code == 1
    assert lines["database"].startswith("OK ") and "/doctor_other, schema" in lines["database"], out
    assert lines["server"].startswith("FAIL  server") and "/doctor_other" in lines["server"]
    assert note.read_text().strip() == server.database


@pytest.mark.sqlite_only("two SQLite files in two folders; PostgreSQL's side is the two tests above")
def test_a_server_on_another_folders_sqlite_fails(server, tmp_path):
    server.start()
    elsewhere = tmp_path / "other"
    ServerProcess(elsewhere, tmp_path).token("admin", "ADM")
    code, lines, out = doctor(elsewhere, server.url)
    assert code == 1 and lines["database"].startswith("OK "), out
    assert f"runs on SQLite {server.data_dir / 'kiosq.db'}" in lines["server"]


def test_a_broken_hall_file_fails_and_opens_no_database(tmp_path):
    hall = tmp_path / "hall.toml"
    hall.write_text("[hall\n", "utf-8")
    code, lines, out = doctor(tmp_path / "data", f"http://127.0.0.1:{free_port()}", "--hall", str(hall))
    assert code == 1
    assert lines["hall"].startswith(f"FAIL  hall         {hall}: not valid TOML"), out
    assert list(lines) == ["hall", "keys", "server", "disk"]
    assert not (tmp_path / "data").exists()


def test_a_slow_database_warns():
    health = {"kind": "postgresql", "host": "db", "port": 5432, "database": "kiosq", "user": "kiosq", "ok": True}
    assert classify_database({**health, "latency_ms": LATENCY_WARN + 5}, 7).status == WARN
    fast = classify_database({**health, "latency_ms": 0.4}, 7)
    assert fast.status == OK and fast.detail == "PostgreSQL kiosq@db:5432/kiosq, schema 7, 0.4 ms"


def test_the_terminals_options_and_the_servers_do_not_mix():
    result = CliRunner().invoke(main, ["doctor", "--data-dir", "x"])
    assert result.exit_code == 2 and "go with --server" in result.output
    result = CliRunner().invoke(main, ["doctor", "--server", "--config", "t.toml"])
    assert result.exit_code == 2 and "--config is a terminal's" in result.output
