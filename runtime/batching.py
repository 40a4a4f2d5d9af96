"""Group commit: concurrent callers' writes go to the store together, each caller still awaiting
its own durable result.

By default no timer, no added latency: the first write starts a flush at once; writes that arrive
while it runs wait for it and go together in the next one. Under load, batches grow by themselves.
Writes off a caller's path (a log written after the reply went out) may set `linger_s`: the first
write then waits that long for company, trading a little delay for far fewer store round trips
(each one costs the writer, and the store, far more CPU than a document in a batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Writes a batch; returns one result (or the exception for that item) per item, in order.
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """Batches `submit` calls into `flush` calls of at most `max_batch` items."""

    def __init__(self, flush: Flush[T, R], max_batch: int = 500, linger_s: float = 0.0) -> None:
        self._flush, self._max, self._linger = flush, max_batch, linger_s
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._draining = False

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its own result or exception comes back."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            if self._linger > 0:
                await asyncio.sleep(self._linger)
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._flush([item for item, _ in batch])
                except BaseException as exc:  # the whole flush failed: every caller hears it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False
