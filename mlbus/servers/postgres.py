"""A throw-away PostgreSQL 15 cluster on 127.0.0.1, for FerretDB's PostgreSQL backend.

Its files live in `home` (made with `initdb` on the first start); the superuser `postgres` signs
in without a password, over TCP on 127.0.0.1 only (no Unix socket, so nothing is written
outside `home`). PostgreSQL refuses to run as root: when we are root, the cluster's programs run
as the system user `postgres` (Debian's package makes it), and `home` must be reachable by it.
The programs come from `deploy/postgres/find.sh`, which installs Debian's postgresql-15 when
they are missing. Nothing but `bench/backends.py` needs this today.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from mlbus.servers.process import REPO, Child, ServerError, free_port, port_open, run_script

#: The database FerretDB keeps its collections in (one PostgreSQL schema per MongoDB database).
DATABASE = "ferretdb"
#: Commits are not flushed one by one, as FerretDB's SQLite files are not (synchronous=NORMAL):
#: a crash of the machine can lose the last commits, never corrupt the cluster.
SETTINGS = ("listen_addresses=127.0.0.1", "unix_socket_directories=", "synchronous_commit=off")


class PostgresServer:
    """Start and stop one local PostgreSQL cluster; its files live in `home`."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.child: Child | None = None
        self.bin: Path | None = None
        # PostgreSQL will not run as root: as root, its programs run as `postgres`.
        self.owner = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """libpq URL of the database FerretDB uses."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Find (or install) PostgreSQL 15, make the cluster on the first start, start it, wait
        until it accepts connections, create the database if needed."""
        if port_open(self.port):
            raise ServerError(f"port {self.port} is taken; is another PostgreSQL running?")
        self.bin = Path(run_script(REPO / "deploy" / "postgres" / "find.sh"))
        data = self.home / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(self.bin, data)
        argv = [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port)]
        for setting in SETTINGS:
            argv += ["-c", setting]
        self.child = Child("postgres", argv, self.home / "postgres.log", user=self.owner)
        self.child.start()
        self.child.wait_ready(self._answers, timeout_s)
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"  # noqa: S608 - a constant
        if self.sql(exists, "postgres") != "1":
            self.sql(f"CREATE DATABASE {DATABASE}", "postgres")

    def _initdb(self, programs: Path, data: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.owner is not None:
            _reachable(self.home, self.owner)
            shutil.chown(self.home, self.owner, self.owner)
        argv = [str(programs / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        log = self.home / "initdb.log"
        with log.open("wb") as out:
            done = subprocess.run(  # noqa: S603 - argv is built here
                argv, stdout=out, stderr=subprocess.STDOUT, user=self.owner, check=False
            )
        if done.returncode != 0:
            raise ServerError(f"initdb failed ({done.returncode}); see {log}")

    def _answers(self) -> bool:
        assert self.bin is not None
        if not port_open(self.port):
            return False
        ready = [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(ready, check=False).returncode == 0  # noqa: S603

    def sql(self, query: str, database: str = DATABASE) -> str:
        """Run one SQL statement with psql; its rows, unaligned (`|` between fields)."""
        if self.bin is None:
            raise ServerError("PostgreSQL is not started")
        argv = [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        done = subprocess.run(  # noqa: S603 - argv is built here
            [*argv, "-c", query], capture_output=True, text=True, check=False, timeout=600
        )
        if done.returncode != 0:
            raise ServerError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then kill if it hangs."""
        if self.child is not None:
            self.child.stop(timeout_s=20, sig=signal.SIGINT)


def _reachable(home: Path, owner: str) -> None:
    """ServerError unless every folder above `home` lets others through (as `owner` will be)."""
    for folder in home.resolve().parents:
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            raise ServerError(
                f"{folder} is closed to other users, so PostgreSQL (run as {owner}) cannot "
                f"reach {home}; put its data elsewhere (under var/, for example)"
            )
