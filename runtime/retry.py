"""Capped exponential backoff with full jitter, bounded in attempts."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetriableError(Exception):
    """Base of every transient failure: worth trying again (timeouts, 5xx, refused connection)."""


class ServerAway(RetriableError):
    """A server that every message needs (the store) is away: nothing is wrong with this
    message, so it is not failed for it. Retried without a limit on attempts (capped backoff),
    until the server is back: the message waits, its offset uncommitted, and a worker stopped
    meanwhile leaves it to be redelivered. Failing it instead would dead-letter every message in
    flight whenever an outage outlasts the retry bound."""


class PermanentError(Exception):
    """Base of every failure that retrying cannot fix (bad input, unknown id, 4xx)."""

    code = "permanent_error"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 6
    base_s: float = 0.2
    cap_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Full-jitter delay before retry number `attempt` (1-based)."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    async def run(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """Run `op`, retrying RetriableError; the last one is re-raised when attempts run out.
        ServerAway does not use up attempts (see its docstring)."""
        attempt, away = 1, 0
        while True:
            try:
                return await op()
            except ServerAway as exc:
                away += 1
                pause = self.delay(min(away, 16))
                log.warning("%s waits for a server (%s); try %d in %.2fs", what, exc, away, pause)
            except RetriableError as exc:
                if attempt >= self.attempts:
                    raise
                pause = self.delay(attempt)
                log.warning("%s failed (%s); retry %d in %.2fs", what, exc, attempt, pause)
                attempt += 1
            await asyncio.sleep(pause)
