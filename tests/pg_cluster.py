"""A throwaway PostgreSQL cluster in a temporary folder, for the tests and the bench.

Debian's `postgresql` package puts initdb and pg_ctl in /usr/lib/postgresql/<version>/bin;
PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres`
user the package creates, and its commands run through `runuser`. The cluster listens on
127.0.0.1 at a free port and on a socket in its folder; local (socket) connections are
trusted (the superuser sets things up), TCP connections need a password (scram-sha-256),
which the tests and the bench give through a PGPASSFILE, as a hall would.

    cluster = Cluster.start(Path("/tmp/x"))
    url = cluster.new_database("t1")     # postgresql://kiosq@127.0.0.1:PORT/t1
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

USER = "kiosq"
PASSWORD = "kiosq-test-only"  # a throwaway cluster's; never a hall's


class NoPostgres(Exception):
    """PostgreSQL's server programs are not installed; the message says how to get them."""


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise NoPostgres("PostgreSQL's server is not installed: run `sudo apt-get install -y postgresql` "
                     "(make test installs it when run as root)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    port: int
    passfile: Path
    owner: str | None  # the user the server runs as when we are root
    _admin: psycopg.Connection | None = None

    @classmethod
    def start(cls, folder: Path, settings: dict[str, str] | None = None) -> Cluster:
        """initdb and start a cluster in `folder` (created; must not hold one yet).
        `settings` go into postgresql.conf (the tests turn fsync off, the bench does not)."""
        programs = bin_dir()
        owner = None
        if os.geteuid() == 0:
            owner = "postgres"
            try:
                pwd.getpwnam(owner)
            except KeyError:
                raise NoPostgres("running as root, PostgreSQL needs the `postgres` user that Debian's "
                                 "postgresql package creates; install the package") from None
        folder.mkdir(parents=True, exist_ok=True)
        data, run = folder / "data", folder / "run"
        for path in (folder, run):
            path.mkdir(exist_ok=True)
            if owner:
                shutil.chown(path, owner, owner)
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if owner:
            shutil.chown(pwfile, owner, owner)
        port = _free_port()
        cluster = cls(folder, port, folder / "pgpass", owner)
        cluster._run(programs / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--pwfile", pwfile)
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(port), "unix_socket_directories": f"'{run}'",
                "max_connections": "200", **(settings or {})}
        with open(data / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        cluster._run(programs / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "start")
        cluster.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}' CREATEDB")
        cluster.passfile.write_text(f"127.0.0.1:{port}:*:{USER}:{PASSWORD}\n")
        os.chmod(cluster.passfile, 0o600)  # libpq ignores a password file others can read
        return cluster

    def _run(self, *cmd: object) -> str:
        args = [str(c) for c in cmd]
        if self.owner:
            args = ["runuser", "-u", self.owner, "--", *args]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")
        return done.stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's socket."""
        return self._run(bin_dir() / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.folder / "run",
                         "-p", self.port, "-U", "postgres", "-d", database, "-At", "-c", sql)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        """The superuser's connection over the socket (kept: creating a database this way
        takes a few milliseconds, psql's start alone ten times that)."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(host=str(self.folder / "run"), port=self.port, user="postgres",
                                          dbname="postgres", autocommit=True)
        return self._admin

    def new_database(self, name: str, template: str | None = None) -> str:
        """A database owned by the kiosq role, empty or a copy of `template`; its URL (the
        password is in the passfile)."""
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        self.admin().execute(f'CREATE DATABASE "{name}" OWNER {USER}{copy}'.encode())
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.admin().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def env(self) -> dict[str, str]:
        """What a client process needs besides the URL."""
        return {"PGPASSFILE": str(self.passfile)}

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        with contextlib.suppress(RuntimeError):  # already gone
            self._run(bin_dir() / "pg_ctl", "-D", self.folder / "data", "-m", "immediate", "-w", "stop")
