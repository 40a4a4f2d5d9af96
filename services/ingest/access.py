"""Who may reach the bridge from where: allowed networks, globally and per role.

The client's address is the TCP peer's, unless the peer is a configured proxy: then the
`X-Forwarded-For` chain is read from the right, skipping trusted proxies, and the first address
that is not one is the client (the left part of the chain is whatever the client claimed, and a
client can claim anything). A header from an untrusted peer is ignored.

The global check runs before anything else on every API path (probes and metrics excepted); the
per-role check runs once the caller is known. A refusal is 403 `address_not_allowed`; an address
refused again and again raises one notification for admins per window.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.http import ApiError, error_body

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Paths that anyone may reach (orchestrators' probes, Prometheus).
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs (a bare address is a /32 or /128); ValueError names the bad one."""
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network: {cidr!r}") from exc
    return tuple(parsed)


def _inside(address: Address, nets: Iterable[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in nets)


def _parse(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


@dataclass
class NetworkPolicy:
    """The allowed networks and the proxies whose `X-Forwarded-For` is believed."""

    allowed: tuple[Network, ...]
    by_role: dict[str, tuple[Network, ...]]
    proxies: tuple[Network, ...]

    def client(self, peer: str | None, forwarded_for: str | None) -> Address | None:
        """The client's address, or None when it cannot be known (no peer, garbage)."""
        address = _parse(peer) if peer else None
        if address is None or not forwarded_for or not _inside(address, self.proxies):
            return address
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _parse(hop)
            if hop_address is None:
                return None  # a garbled chain from a trusted proxy: the client is unknown
            address = hop_address
            if not _inside(address, self.proxies):
                return address
        return address

    def allows(self, address: Address | None) -> bool:
        """Inside the global allowed networks."""
        return address is not None and _inside(address, self.allowed)

    def allows_roles(self, address: Address | None, roles: Iterable[str]) -> bool:
        """Inside every per-role list that one of `roles` has (roles without a list pass)."""
        lists = [self.by_role[r] for r in roles if r in self.by_role]
        return address is not None and all(_inside(address, nets) for nets in lists)


@dataclass
class RefusalCounter:
    """Counts refusals per address; says when an address crosses the threshold in a window."""

    threshold: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, list[float]] = field(default_factory=dict)
    _alerted: dict[str, float] = field(default_factory=dict)

    def refused(self, address: str) -> bool:
        """Record one refusal; True once per window when the address reaches the threshold."""
        now = self.clock()
        recent = [t for t in self._seen.get(address, []) if now - t < self.window_s]
        recent.append(now)
        self._seen[address] = recent[-self.threshold :]
        if len(self._seen) > 10_000:  # bounded: forget the quietest half
            for key in sorted(self._seen, key=lambda k: self._seen[k][-1])[:5_000]:
                del self._seen[key]
        if len(self._alerted) > 10_000:  # bounded too: alerts older than a window are spent
            for key in [k for k, t in self._alerted.items() if now - t >= self.window_s]:
                del self._alerted[key]
        if len(recent) < self.threshold:
            return False
        if now - self._alerted.get(address, float("-inf")) < self.window_s:
            return False
        self._alerted[address] = now
        return True


def refusal(address: Address | None) -> ApiError:
    """The 403 for an address outside the allowed networks."""
    shown = str(address) if address is not None else "unknown"
    return ApiError(
        403,
        "address_not_allowed",
        f"Requests from {shown} are not allowed here. Ask an admin to add your network.",
    )


class NetworkGate:
    """ASGI middleware: the global allowed-networks check, before routing and authentication."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Callable[[], NetworkPolicy | None],
        on_refused: Callable[[Address | None, str], Awaitable[None]],
    ) -> None:
        self.app, self._policy, self._on_refused = app, policy, on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self._policy()
        if scope["type"] != "http" or policy is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        address = client_address(policy, scope)
        if policy.allows(address):
            await self.app(scope, receive, send)
            return
        await self._on_refused(address, scope["path"])
        # Inside EdgeMiddleware, which assigned the request id and echoes it in the response.
        rid = str(scope.get("state", {}).get("request_id", ""))
        exc = refusal(address)
        await _send_json(send, exc.status, error_body(rid, exc.code, exc.message))


def client_address(policy: NetworkPolicy, scope: Scope) -> Address | None:
    """The client's address for one request."""
    peer = scope.get("client")
    # Several header lines are one list, in order (RFC 9110 §5.3); a proxy may add its own line.
    lines = [v.decode("latin-1") for n, v in scope.get("headers", []) if n == b"x-forwarded-for"]
    return policy.client(peer[0] if peer else None, ",".join(lines) or None)


async def _send_json(send: Send, status: int, body: object) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
