"""A consumer loop for request/reply traffic, where one slow message must not hold up others.

The batch loop (runtime.consumer.ConsumerLoop) finishes a whole batch before it fetches again:
right for workers whose effects are cheap and ordered by key, wrong for inference, where a model
that hangs for its whole timeout would stall every request fetched with it. Here every message
runs as its own task (at most `concurrency` at once; keys are not ordered), fetching goes on
meanwhile, and offsets are committed every `commit_interval_s` up to the lowest unfinished
offset of each partition, so at-least-once delivery still holds. Dead letters, retries and the
halt after too many dead letters in a row are the batch loop's own. So is the drain on a
rebalance: the messages in flight finish and their offsets commit before the partitions move.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from aiokafka import ConsumerRecord, TopicPartition

from runtime import metrics
from runtime.consumer import ConsumerHalted, ConsumerLoop


class PipelinedConsumerLoop(ConsumerLoop):
    """Every message its own task; periodic commits of what is finished in order."""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; messages in flight finish and are committed first."""
        gate = asyncio.Semaphore(self._config.concurrency)
        self._done: dict[TopicPartition, dict[int, bool]] = defaultdict(dict)
        self._halted: ConsumerHalted | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        tasks = self._tasks
        last_commit = time.monotonic()
        # Commits run beside the fetching: a commit is a broker round trip, and a request that
        # arrived meanwhile would wait for it (the router's request leg at 200/s: p99 8-13 ms
        # with commits in the loop, 5.5 ms beside it).
        self._committing: asyncio.Task[None] | None = None
        metrics.ready(self._service, True)
        if self._revoke is not None:
            self._revoke.drain = self._drain_revoked
        try:
            while not stop.is_set() and self._halted is None:
                batch = await self._consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_batch
                )
                self._idle.clear()  # a revocation waits until the batch is handed out
                try:
                    for tp, records in batch.items():
                        for record in records:
                            await gate.acquire()
                            self._done[tp][record.offset] = False
                            task = asyncio.create_task(self._one(tp, record, gate))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                finally:
                    self._idle.set()
                if batch:
                    self._record_lag(batch)
                committing: asyncio.Task[None] | None = self._committing
                if committing is not None and committing.done():
                    self._committing = None
                    committing.result()  # a commit that failed beyond a rebalance stops the loop
                due = time.monotonic() - last_commit >= self._config.commit_interval_s
                if due and self._committing is None:
                    self._committing = asyncio.create_task(self._commit_finished())
                    last_commit = time.monotonic()
        finally:
            # Drain before unwinding: the messages in flight finish and their offsets commit.
            await self._finish_in_flight()
            if self._revoke is not None:
                self._revoke.drain = None
            metrics.ready(self._service, False)
        if self._halted is not None:
            raise self._halted

    async def _finish_in_flight(self) -> None:
        """Wait for every message handed out (and any being handed out), then commit them."""
        while True:
            await self._idle.wait()
            if not self._tasks:
                break
            await asyncio.gather(*self._tasks, return_exceptions=True)
        committing, self._committing = self._committing, None
        if committing is not None:
            await asyncio.gather(committing, return_exceptions=True)
        await self._commit_finished()

    async def _drain_revoked(self, revoked: set[TopicPartition]) -> None:
        """On revocation: what is in flight finishes and commits; the revoked partitions'
        bookkeeping goes (a partition assigned again restarts from its committed offset)."""
        await self._finish_in_flight()
        for tp in revoked:
            self._done.pop(tp, None)

    async def _one(
        self, tp: TopicPartition, record: ConsumerRecord, gate: asyncio.Semaphore
    ) -> None:
        try:
            await self._handle_record(record)
        except ConsumerHalted as exc:
            self._halted = exc
        finally:
            self._done[tp][record.offset] = True
            gate.release()

    async def _commit_finished(self) -> None:
        offsets: dict[TopicPartition, int] = {}
        for tp, flags in self._done.items():
            finished = _finished_prefix(flags)
            if finished:
                offsets[tp] = finished[-1] + 1
                for offset in finished:
                    del flags[offset]
        if offsets:
            await self._commit_offsets(offsets)


def _finished_prefix(flags: dict[int, bool]) -> list[int]:
    """The leading run of finished offsets (the dict is in offset order: fetch order)."""
    out: list[int] = []
    for offset, done in flags.items():
        if not done:
            break
        out.append(offset)
    return out
