"""Faults of the servers below mlbus, on demand, for the fault tests and `bench/faults.py`.

Two kinds of outage of one local server (Kafka, FerretDB, Keycloak):

- a **pause** (SIGSTOP, then SIGCONT): the process is frozen; its port still accepts
  connections, so clients wait for answers that do not come (a hung broker, a stalled disk);
- a **stop** (SIGTERM, or SIGKILL for a crash), then a start on the *same* port and data
  directory: clients are refused, then find the server again where it was, with its data.

Every call blocks (a start waits until the server serves again); async callers run them in a
thread (`asyncio.to_thread`), so that what they test keeps running meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

from mlbus.servers.process import Child, ServerError

Kind = Literal["pause", "stop", "kill"]


class LocalServer(Protocol):
    """What KafkaServer, FerretDBServer and KeycloakServer have in common."""

    child: Child | None

    def start(self) -> None:
        """Start (again) on its port and data directory, and wait until it serves."""
        ...

    def stop(self) -> None:
        """Stop it (SIGTERM, then kill if it hangs)."""
        ...


@dataclass
class Outage:
    """One outage of one server: `begin()` takes it away, `end()` brings it back. The times
    (monotonic seconds) say when it was away and when it served again."""

    server: LocalServer
    kind: Kind = "stop"
    began_at: float = 0.0
    ended_at: float = 0.0
    serving_at: float = 0.0

    def begin(self) -> None:
        """Take the server away (returns once it is away: paused, or its process gone)."""
        child = self._child()
        if self.kind == "pause":
            child.pause()
        elif self.kind == "kill":
            child.kill()
        else:
            self.server.stop()
        self.began_at = time.monotonic()

    def end(self) -> None:
        """Bring it back: resume it, or start it again on the same port and data directory;
        returns once it serves."""
        self.ended_at = time.monotonic()
        if self.kind == "pause":
            self._child().resume()
        else:
            self.server.start()
        self.serving_at = time.monotonic()

    @property
    def away_s(self) -> float:
        """How long it was away (from `begin` until it served again)."""
        return self.serving_at - self.began_at

    def _child(self) -> Child:
        child = self.server.child
        if child is None or not child.alive():
            raise ServerError("the server is not running: nothing to take away")
        return child
