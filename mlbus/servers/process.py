"""A child process with a log file, a readiness wait and a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections there."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ServerError(RuntimeError):
    """A server could not be built or started; the message says why and where its log is."""


class Child:
    """One child process, its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ):
        """`user`: run it as that user (needs root; PostgreSQL refuses to run as root)."""
        self.name, self.argv, self.log, self.user = name, list(argv), log, user
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; output goes to the log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - argv is built by this package
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
                user=self.user,
            )

    def alive(self) -> bool:
        """True while it runs."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Poll `ready` until true; ServerError if it dies or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(f"{self.name} exited; see {self.log}:\n{self.tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise ServerError(f"{self.name} not ready after {timeout_s:.0f}s; see {self.log}")

    def stop(self, timeout_s: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        """Ask it to stop (SIGTERM), then kill it if it does not within `timeout_s`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """Stop it at once (SIGKILL): a crash, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        """Freeze it and its children (SIGSTOP to its process group): a hung server, for fault
        tests. Its sockets stay open; clients wait instead of being refused."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def tail(self, lines: int = 15) -> str:
        """The end of its log."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def run_script(script: Path) -> str:
    """Run a deploy script that prints one path on stdout (progress goes to stderr)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed scripts of this repo
            ["/bin/bash", str(script)], check=True, stdout=subprocess.PIPE, cwd=REPO
        )
    except subprocess.CalledProcessError as exc:
        raise ServerError(f"{script.name} failed with exit code {exc.returncode}") from exc
    return done.stdout.decode().strip().splitlines()[-1]
