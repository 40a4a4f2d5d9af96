"""A server that every message needs being away is waited for, not counted against the message:
a store outage longer than the retry bound fails nothing (runtime/retry.py)."""

from __future__ import annotations

import pytest

from runtime.retry import RetriableError, RetryPolicy, ServerAway


class Flaky:
    """Fails `times` times with `error`, then answers."""

    def __init__(self, times: int, error: type[Exception]) -> None:
        self.times, self.error, self.calls = times, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error("away")
        return "done"


async def test_a_server_away_longer_than_the_bound_is_waited_for() -> None:
    op = Flaky(20, ServerAway)
    assert await RetryPolicy(attempts=3, base_s=0.0, cap_s=0.0).run(op, "op") == "done"
    assert op.calls == 21


async def test_any_other_transient_fault_still_fails_at_the_bound() -> None:
    op = Flaky(20, RetriableError)
    with pytest.raises(RetriableError):
        await RetryPolicy(attempts=3, base_s=0.0, cap_s=0.0).run(op, "op")
    assert op.calls == 3


async def test_waiting_for_a_server_leaves_the_message_its_own_attempts() -> None:
    calls = 0

    async def op() -> str:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ServerAway("store away")
        if calls <= 7:
            raise RetriableError("cluster busy")
        return "done"

    assert await RetryPolicy(attempts=3, base_s=0.0, cap_s=0.0).run(op, "op") == "done"
