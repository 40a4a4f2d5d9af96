"""Many copies of mlbus's services as real processes (mlbus.stack.Fleet) on one test's topics and
database: what the tests of `--replicas` and of crashes (SIGKILL) start."""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from clearml_sim.testing import SimServer
from mlbus.servers.process import free_port
from mlbus.stack import Fleet, Proc
from tests.conftest import Bus
from tests.support import Issuer


def fleet_env(
    bus: Bus, sim: SimServer | None = None, issuer: Issuer | None = None
) -> dict[str, str]:
    """The environment of every copy: the test's bus, the simulator (ClearML), the issuer."""
    env = {**bus.env(), "PYTHONUNBUFFERED": "1", "MLBUS_LOG_LEVEL": "INFO"}
    if sim is not None:
        env |= {
            "MLBUS_CLEARML_API_HOST": sim.url,
            "MLBUS_CLEARML_ACCESS_KEY": sim.access_key,
            "MLBUS_CLEARML_SECRET_KEY": sim.secret_key,
        }
    if issuer is not None:
        env |= {"MLBUS_INGEST_JWKS_URL": issuer.jwks_url, "MLBUS_INGEST_ISSUER": issuer.issuer}
    return env


@contextlib.asynccontextmanager
async def running_fleet(env: dict[str, str]) -> AsyncIterator[Fleet]:
    """A fleet on free ports, its logs in a temporary folder; every copy stopped at the end."""
    logs = Path(tempfile.mkdtemp(prefix="mlbus-fleet-"))
    fleet = Fleet(env, logs, port=lambda _service, _index: free_port())
    try:
        yield fleet
    finally:
        await asyncio.to_thread(fleet.stop)


async def start(
    fleet: Fleet, service: str, copies: int, args: tuple[str, ...] = (), timeout_s: float = 90
) -> None:
    """Start copies of a service off the event loop (the test's servers run in it)."""
    await asyncio.to_thread(fleet.start, service, copies, args, timeout_s)


#: A copy's election terms in its log (runtime/leader.py). The first copy up may be elected alone
#: and hand over when the second joins: a copy's last term is what counts.
ELECTION_TERM = re.compile(r"this copy (is now active|stands by)")


def log_of(proc: Proc) -> str:
    """What the copy has logged so far."""
    assert proc.child is not None
    return Path(proc.child.log).read_text(errors="replace")


def terms_in(text: str) -> list[re.Match[str]]:
    """The election terms in a copy's log, oldest first ([1] is "is now active"/"stands by")."""
    return list(ELECTION_TERM.finditer(text))
