"""Group commit: concurrent writes share flushes, each caller gets its own result or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from runtime.batching import GroupCommit


async def test_concurrent_submits_share_flushes_and_get_their_own_results() -> None:
    flushes: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        flushes.append(list(items))
        await asyncio.sleep(0.01)
        return [i * 10 if i != 3 else ValueError("three") for i in items]

    group: GroupCommit[int, int] = GroupCommit(flush, max_batch=4)
    results = await asyncio.gather(*(group.submit(i) for i in range(10)), return_exceptions=True)
    assert results[:3] == [0, 10, 20]
    assert isinstance(results[3], ValueError)
    assert results[4:] == [40, 50, 60, 70, 80, 90]
    assert flushes[0] == [0, 1, 2, 3]  # same loop tick: together, no timer involved
    assert all(len(batch) <= 4 for batch in flushes)
    assert sorted(i for batch in flushes for i in batch) == list(range(10))
    assert len(flushes) < 10


async def test_a_failed_flush_fails_its_callers_and_the_next_flush_still_runs() -> None:
    calls = 0

    async def flush(items: Sequence[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store away")
        return [s.upper() for s in items]

    group: GroupCommit[str, str] = GroupCommit(flush)
    with pytest.raises(ConnectionError):
        await group.submit("a")
    assert await group.submit("b") == "B"


async def test_a_linger_gathers_writes_that_arrive_apart_into_one_flush() -> None:
    flushes: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        flushes.append(list(items))
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(flush, linger_s=0.2)

    async def later(i: int) -> int:
        await asyncio.sleep(0.02 * i)
        return await group.submit(i)

    assert await asyncio.gather(*(later(i) for i in range(4))) == [0, 1, 2, 3]
    assert flushes == [[0, 1, 2, 3]]  # 60 ms apart at most, all inside the 200 ms linger
    eager: GroupCommit[int, int] = GroupCommit(flush)
    flushes.clear()
    await asyncio.gather(*(_submit_later(eager, i) for i in range(3)))
    assert len(flushes) == 3  # without a linger, each write that comes alone goes alone


async def _submit_later(group: GroupCommit[int, int], i: int) -> int:
    await asyncio.sleep(0.05 * i)
    return await group.submit(i)
