"""Replica choice and the circuit breaker, on a hand-driven clock."""

from __future__ import annotations

from services.inference_router.replicas import BreakerState, CircuitBreaker, Replica, ReplicaPool

URLS = ["http://a/serve", "http://b/serve", "http://c/serve"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(clock: Clock, changes: list[tuple[str, int, bool]] | None = None) -> ReplicaPool:
    def listen(machine: str, replica: Replica, opened: bool) -> None:
        if changes is not None:
            changes.append((machine, replica.index, opened))

    return ReplicaPool("m1", URLS, failures=3, cooldown_s=10, on_change=listen, clock=clock)


def test_least_outstanding_first_and_round_robin_among_equals() -> None:
    p = pool(Clock())
    a, b, c = p.replicas
    with p.calling(a), p.calling(a), p.calling(b):
        assert p.choose() is c
        assert p.choose() is c  # still the fewest in flight
    picks = [p.choose() for _ in range(3)]
    assert {r.url for r in picks if r} == set(URLS)  # equals take turns


def test_excluded_and_unhealthy_replicas_are_skipped() -> None:
    p = pool(Clock())
    a, b, c = p.replicas
    b.probe_ok = False
    assert p.choose(frozenset({a.url})) is c
    c.probe_ok = False
    assert p.choose(frozenset({a.url})) is None


def test_breaker_opens_after_failures_in_a_row_and_tells_once() -> None:
    clock, changes = Clock(), []
    p = pool(clock, changes)
    a = p.replicas[0]
    p.record(a, ok=False)
    p.record(a, ok=False)
    p.record(a, ok=True)  # a success resets the count
    for _ in range(3):
        p.record(a, ok=False)
    assert a.breaker.state is BreakerState.OPEN
    assert changes == [("m1", 0, True)]
    assert all(p.choose() is not a for _ in range(6))


def test_half_open_after_cool_down_lets_one_trial_through() -> None:
    clock, changes = Clock(), []
    p = pool(clock, changes)
    a = p.replicas[0]
    for _ in range(3):
        p.record(a, ok=False)
    clock.now += 10
    assert a.breaker.state is BreakerState.HALF_OPEN
    with p.calling(a):
        assert not a.breaker.allows()  # one trial at a time
        p.record(a, ok=True)
    assert a.breaker.state is BreakerState.CLOSED
    assert changes == [("m1", 0, True), ("m1", 0, False)]


def test_failed_trial_reopens_for_a_full_cool_down_without_a_new_notice() -> None:
    clock, changes = Clock(), []
    p = pool(clock, changes)
    a = p.replicas[0]
    for _ in range(3):
        p.record(a, ok=False)
    clock.now += 10
    with p.calling(a):
        p.record(a, ok=False)
    assert a.breaker.state is BreakerState.OPEN
    clock.now += 9
    assert a.breaker.state is BreakerState.OPEN
    clock.now += 1
    assert a.breaker.state is BreakerState.HALF_OPEN
    assert changes == [("m1", 0, True)]


def test_resize_keeps_the_state_of_replicas_that_stay() -> None:
    p = pool(Clock())
    b = p.replicas[1]
    for _ in range(3):
        p.record(b, ok=False)
    p.resize([URLS[1], "http://d/serve"])
    assert p.replicas[0] is b
    assert b.index == 0
    assert b.breaker.state is BreakerState.OPEN
    assert p.choose() is p.replicas[1]


def test_breaker_alone() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    assert breaker.allows()
    assert breaker.failed() is True
    assert not breaker.allows()
    clock.now += 5
    assert breaker.allows()
    assert breaker.succeeded() is True
    assert breaker.succeeded() is False
