"""Shared fixtures: a hall, a clock the test moves, and a store on a real SQLite file and
on a real PostgreSQL database."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from kiosq.queue.config import load_hall
from kiosq.queue.store import Store
from kiosq.queue.store.database import DatabaseChoice


class FakeClock:
    """An injected clock: time moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def hall():
    return load_hall()


@pytest.fixture
def clock():
    # 10:00 in Shanghai on a Monday: well inside the business day.
    return FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path, hall, clock, database):
    """A store on SQLite in tmp_path, and again on PostgreSQL (see `database` below)."""
    s = Store.in_dir(tmp_path, hall, clock=clock, database=database)
    yield s
    s.close()


def pytest_report_header() -> list[str]:
    """Both clocks at the start, so a date mix-up in a failure can be read off the log."""
    import os

    hall = load_hall()
    hall_now = datetime.now(hall.tz)
    machine_now = datetime.now().astimezone()
    return [f"machine TZ={os.environ.get('TZ', '(unset)')}: {machine_now:%Y-%m-%d %H:%M %z}; "
            f"hall {hall.info.timezone}: {hall_now:%Y-%m-%d %H:%M %z}"]


# -- the two databases ---------------------------------------------------------------
#
# A test that takes `database` (or `store`, which takes it) runs twice: on SQLite in its
# tmp_path and on PostgreSQL, in a database of its own in a throwaway cluster started once
# per session (tests/pg_cluster.py). `@pytest.mark.sqlite_only("why")` keeps a test on
# SQLite (PRAGMAs, the file itself); `postgresql_only` is for what only PostgreSQL has
# (several server processes on one database). Without PostgreSQL installed the PostgreSQL half is
# skipped, saying how to install it; under `make test` (KIOSQ_TEST_POSTGRES=required) it fails.

DATABASES = ("sqlite", "postgresql")
TEMPLATE = "kiosq_template"
_database_names = itertools.count(1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name in ("database", "empty_database", "module_database"):
        if name in metafunc.fixturenames:
            if metafunc.definition.get_closest_marker("sqlite_only") is not None:
                kinds: tuple[str, ...] = ("sqlite",)
            elif metafunc.definition.get_closest_marker("postgresql_only") is not None:
                kinds = ("postgresql",)
            else:
                kinds = DATABASES
            metafunc.parametrize(name, kinds, indirect=True, scope="module" if name == "module_database" else None)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """A PostgreSQL cluster for the session: fsync off (a test database needs no durability).
    Its folder is made with mkdtemp: pytest's are the owner's only, and as root the cluster
    runs as the `postgres` user."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from tests.pg_cluster import Cluster, NoPostgres, bin_dir

    try:
        bin_dir()
    except NoPostgres as exc:
        if os.environ.get("KIOSQ_TEST_POSTGRES") == "required":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    folder = Path(tempfile.mkdtemp(prefix="kiosq-pg-"))
    os.chmod(folder, 0o755)
    cluster = Cluster.start(folder, {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    os.environ["PGPASSFILE"] = str(cluster.passfile)  # for the stores of this process and the servers it starts
    try:
        # Every test's database is a copy of one the store has migrated: a copy takes ~10 ms,
        # migrating ~100 ms. Migrations from an empty database are tested on their own.
        Store(folder / "unused.db", load_hall(), database=DatabaseChoice(cluster.new_database(TEMPLATE))).close()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def new_database(request: pytest.FixtureRequest, empty: bool = False) -> DatabaseChoice:
    """SQLite (the data folder's file) or a PostgreSQL database of the test's own, migrated
    (or `empty`), dropped after it."""
    if request.param == "sqlite":
        return DatabaseChoice()
    cluster = request.getfixturevalue("pg_cluster")
    name = f"t{next(_database_names)}"
    url = cluster.new_database(name, template=None if empty else TEMPLATE)
    request.addfinalizer(lambda: cluster.drop_database(name))
    return DatabaseChoice(url, source="tests")


@pytest.fixture
def database(request):
    return new_database(request)


@pytest.fixture
def empty_database(request):
    """As `database`, but PostgreSQL's is empty: no migration applied yet."""
    return new_database(request, empty=True)


@pytest.fixture(scope="module")
def module_database(request):
    return new_database(request)


@pytest.fixture
def reopen():
    """Another Store on the same database as `s` (a second process, or a restart)."""
    opened: list[Store] = []

    def again(s: Store, hall_=None, clock_=None) -> Store:
        other = Store(s.path, hall_ or s.hall, clock=clock_ or s.clock, database=s.database)
        opened.append(other)
        return other

    yield again
    for s in opened:
        s.close()
