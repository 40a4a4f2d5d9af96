"""FerretDB 1.24 (MongoDB wire protocol) on 127.0.0.1, with its SQLite backend (the default), or
with its PostgreSQL backend on a PostgreSQL server given by URL (mlbus/servers/postgres.py)."""

from __future__ import annotations

from pathlib import Path

from mlbus.servers.process import REPO, Child, ServerError, free_port, port_open, run_script


class FerretDBServer:
    """Start and stop one local FerretDB; its SQLite files (or, on PostgreSQL, its state) live
    in `home`. `postgresql_url`: use the PostgreSQL backend, on that database."""

    def __init__(
        self, home: Path, port: int | None = None, postgresql_url: str | None = None
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.postgresql_url = postgresql_url
        self.child: Child | None = None

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return "sqlite" if self.postgresql_url is None else "postgresql"

    @property
    def uri(self) -> str:
        """MongoDB URI for clients."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout_s: float = 60.0) -> None:
        """Build FerretDB if needed, start it, wait until it answers ping."""
        if port_open(self.port):
            raise ServerError(f"port {self.port} is taken; is another MongoDB running?")
        binary = run_script(REPO / "deploy" / "ferretdb" / "build.sh")
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self.postgresql_url is None:
            handler = [
                "--handler=sqlite",
                # WAL with synchronous=NORMAL: a crash of any process loses no committed write;
                # only a power cut can lose the last commits. Per-commit fsync (FULL) cost a third
                # of the store's throughput here. Production runs MongoDB, with its write concern.
                f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
            ]
        else:
            handler = ["--handler=postgresql", f"--postgresql-url={self.postgresql_url}"]
        self.child = Child(
            "ferretdb",
            [
                binary,
                *handler,
                f"--state-dir={self.home}",
                f"--listen-addr=127.0.0.1:{self.port}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=WARN",
            ],
            self.home / "ferretdb.log",
        )
        self.child.start()
        self.child.wait_ready(self._answers, timeout_s)

    def _answers(self) -> bool:
        if not port_open(self.port):
            return False
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=1000
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def stop(self) -> None:
        """SIGTERM, then kill if it hangs."""
        if self.child is not None:
            self.child.stop(timeout_s=10)
