"""Allowed networks, X-Forwarded-For trust, refusal alerts, and quota arithmetic."""

from __future__ import annotations

import ipaddress

import pytest

from services.ingest.access import NetworkPolicy, RefusalCounter, networks
from services.ingest.quotas import ActiveTasks, SlidingWindow, exceeded, limit_for


def policy(
    allowed: list[str], proxies: tuple[str, ...] = (), **by_role: list[str]
) -> NetworkPolicy:
    return NetworkPolicy(
        allowed=networks(allowed),
        by_role={role: networks(nets) for role, nets in by_role.items()},
        proxies=networks(proxies),
    )


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_the_peer_counts_when_it_is_not_a_trusted_proxy() -> None:
    p = policy(["10.0.0.0/8"])
    assert p.client("203.0.113.9", "10.1.2.3") == ip("203.0.113.9")  # spoofed header ignored
    assert not p.allows(p.client("203.0.113.9", "10.1.2.3"))


def test_forwarded_for_is_read_from_the_right_skipping_trusted_proxies() -> None:
    p = policy(["10.0.0.0/8"], proxies=("192.168.1.0/24",))
    # client claims 10.9.9.9 (its own header), real client 203.0.113.5, then two of our proxies
    chain = "10.9.9.9, 203.0.113.5, 192.168.1.7"
    assert p.client("192.168.1.8", chain) == ip("203.0.113.5")
    assert p.client("192.168.1.8", "10.2.3.4") == ip("10.2.3.4")
    assert p.client("192.168.1.8", "garbage") is None  # unknown client: refused, not the proxy
    assert p.client(None, None) is None


def test_ipv4_mapped_ipv6_peers_match_ipv4_networks() -> None:
    p = policy(["127.0.0.0/8"])
    assert p.allows(ip("::ffff:127.0.0.1"))
    assert not p.allows(ip("::1"))
    assert not p.allows(None)


def test_per_role_networks_apply_only_to_holders_of_the_role() -> None:
    p = policy(["0.0.0.0/0"], admin=["10.1.0.0/16"])
    assert p.allows_roles(ip("203.0.113.1"), {"user"})
    assert not p.allows_roles(ip("203.0.113.1"), {"user", "admin"})
    assert p.allows_roles(ip("10.1.2.3"), {"user", "admin"})


def test_a_bad_cidr_is_named() -> None:
    with pytest.raises(ValueError, match=r"not a network: '10\.0\.0\.0/33'"):
        networks(["10.0.0.0/33"])


def test_refusals_alert_once_per_window_at_the_threshold() -> None:
    now = [0.0]
    counter = RefusalCounter(threshold=3, window_s=60, clock=lambda: now[0])
    assert [counter.refused("a") for _ in range(5)] == [False, False, True, False, False]
    assert not counter.refused("b")
    now[0] = 61.0
    assert [counter.refused("a") for _ in range(3)] == [False, False, True]


def test_sliding_window_allows_n_per_window_and_says_when_the_next_fits() -> None:
    now = [0.0]
    window = SlidingWindow(60, clock=lambda: now[0])
    assert [window.take(("alice", "enqueue"), 2) for _ in range(2)] == [None, None]
    now[0] = 10.0
    assert window.take(("alice", "enqueue"), 2) == pytest.approx(50.0)
    assert window.take(("bob", "enqueue"), 2) is None
    now[0] = 60.0
    assert window.take(("alice", "enqueue"), 2) is None


def test_the_most_generous_role_limit_wins() -> None:
    limits = {"user": 10, "admin": 100}
    assert limit_for(limits, {"user", "admin"}) == 100
    assert limit_for(limits, {"operator"}) is None


def test_429_carries_retry_after_in_whole_seconds() -> None:
    err = exceeded("Quota reached.", 0.2)
    assert err.status == 429
    assert err.code == "quota_exceeded"
    assert err.headers == {"Retry-After": "1"}


async def test_active_tasks_are_looked_up_only_at_the_limit_and_ended_ones_free_slots() -> None:
    statuses = {"r1": "queued", "r2": "completed"}
    asked: list[str] = []

    async def lookup(rid: str) -> str | None:
        asked.append(rid)
        return statuses.get(rid)

    tasks = ActiveTasks(lookup)
    tasks.add("alice", "r1")
    assert await tasks.room("alice", 2)
    assert asked == []
    tasks.add("alice", "r2")
    assert await tasks.room("alice", 2)  # r2 completed: its slot is free again
    assert sorted(asked) == ["r1", "r2"]
    assert tasks.count("alice") == 1
    tasks.add("alice", "r3")  # unknown status: still counted
    assert not await tasks.room("alice", 2)
    tasks.discard("alice", "r3")
    assert await tasks.room("alice", 2)


def test_several_forwarded_for_lines_are_one_list() -> None:
    """A proxy that adds its own header line (HAProxy's forwardfor) must not turn the client
    into the proxy: found in review, where the second line was read as bytes' repr."""
    from services.ingest.access import client_address

    p = policy(["10.0.0.0/8"], proxies=("10.0.0.5/32",))
    scope = {
        "client": ("10.0.0.5", 1234),
        "headers": [(b"x-forwarded-for", b"10.9.9.9"), (b"x-forwarded-for", b"198.51.100.7")],
    }
    assert client_address(p, scope) == ip("198.51.100.7")
    assert not p.allows(client_address(p, scope))


async def test_a_slot_ends_after_its_maximum_age_even_if_the_task_never_ends() -> None:
    """Found in review: a task deleted or reset in ClearML never reaches an ended status."""
    now = [0.0]

    async def never_ends(rid: str) -> str | None:
        return "queued"

    tasks = ActiveTasks(never_ends, max_age_s=100.0, clock=lambda: now[0])
    tasks.add("alice", "r1")
    assert not await tasks.room("alice", 1)
    now[0] = 100.0
    assert await tasks.room("alice", 1)
