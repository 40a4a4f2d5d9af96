"""Remembering request ids for the length of their deadline, so a message delivered twice is
sent to the model once: the second delivery gets the first one's outcome (awaiting it if the
first call is still running)."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Clock = Callable[[], float]


class DedupeCache(Generic[T]):
    """request id → the (possibly still running) outcome of its first delivery, until expiry."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, asyncio.Future[T]]] = {}
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        self._evict()
        return len(self._entries)

    def _evict(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            at, key = heapq.heappop(self._expiries)
            entry = self._entries.get(key)
            if entry is not None and entry[0] == at:
                del self._entries[key]

    def get(self, key: str) -> asyncio.Future[T] | None:
        """The outcome of an earlier delivery of `key`, if still remembered."""
        self._evict()
        entry = self._entries.get(key)
        return entry[1] if entry else None

    async def once(
        self, key: str, ttl_s: float, make: Callable[[], Awaitable[T]]
    ) -> tuple[T, bool]:
        """Run `make` for the first delivery of `key`; later ones within `ttl_s` share its result.
        Returns (result, True when this delivery was a duplicate). A failed first run is forgotten
        so that a redelivery may try again."""
        earlier = self.get(key)
        if earlier is not None:
            return await asyncio.shield(earlier), True
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        expires = self._clock() + max(ttl_s, 0.0)
        self._entries[key] = (expires, future)
        heapq.heappush(self._expiries, (expires, key))
        try:
            result = await make()
        except BaseException as exc:
            self._entries.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        future.set_result(result)
        return result, False
