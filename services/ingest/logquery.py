"""Log filters and cursors (pure: no I/O).

A page position is `(accepted ms, request id)`, exclusive: the next page holds what sorts before
it, newest first. Logs are ordered by immutable fields, so pages stay stable while new logs
arrive. The cursor is that position as base64url JSON, signed (HMAC-SHA256, under a key of the
install) together with the filters it was made for: a cursor is opaque, and anything but one of
ours for these filters is refused before a field of it is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.views import ALL_TARGETS, epoch_ms, user_status_value

Position = tuple[int, str]
#: Before every log.
START: Position = (2**62, "")


class CursorError(ValueError):
    """A cursor that is not one of ours, or was made for other filters."""


@dataclass(frozen=True)
class LogFilter:
    """What to list: paths, and optional user, status, target, machine and time range."""

    paths: tuple[str, ...]
    user: str | None = None
    status: str | None = None
    target: str | None = None
    machine: str | None = None  # on-demand target prefix, when no endpoint is given
    since: datetime | None = None
    until: datetime | None = None

    def dimension(self) -> tuple[str, str]:
        """The index dimension to walk: the likely smallest of the filters given (user and
        status together have their own; any other filter is applied to its entries)."""
        if self.user is not None and self.status is not None:
            return "user_status", user_status_value(self.user, self.status)
        if self.user is not None:
            return "user", self.user
        if self.target is not None:
            return "target", self.target
        if self.status is not None:
            return "status", self.status
        return "all", ALL_TARGETS

    def accepts(self, entry: list[Any]) -> bool:
        """Whether an index entry `[accepted ms, user, target, status]` matches."""
        at, user, target, status = entry[:4]
        return not (
            (self.user is not None and user != self.user)
            or (self.target is not None and target != self.target)
            or (self.status is not None and status != self.status)
            or (self.machine is not None and not str(target).startswith(self.machine + "/"))
            or (self.since is not None and at < epoch_ms(self.since))
            or (self.until is not None and at > epoch_ms(self.until))
        )

    def view_query(self, after: Position) -> dict[str, Any]:
        """The MongoDB filter of the view documents this filter lists, older than `after`: what
        `accepts` says of an index entry, said to a server with real indexes (collections.py's
        `VIEW_INDEXES`), sorted by (`at_ms`, `_id`) newest first."""
        clauses: list[dict[str, Any]] = [
            {name: value}
            for name, value in (
                ("user", self.user),
                ("status", self.status),
                ("target", self.target),
            )
            if value is not None
        ]
        if self.machine is not None:
            clauses.append({"target": {"$regex": f"^{re.escape(self.machine)}/"}})
        if self.since is not None:
            clauses.append({"at_ms": {"$gte": epoch_ms(self.since)}})
        if self.until is not None:
            clauses.append({"at_ms": {"$lte": epoch_ms(self.until)}})
        at, rid = after
        if rid:
            clauses.append({"$or": [{"at_ms": {"$lt": at}}, {"at_ms": at, "_id": {"$lt": rid}}]})
        else:
            clauses.append({"at_ms": {"$lt": at}})
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def start(self) -> Position:
        """Where the first page starts."""
        return (epoch_ms(self.until) + 1, "") if self.until is not None else START

    def fingerprint(self) -> str:
        """Short hash of the filters, so a cursor cannot be reused with other filters."""
        fields = [
            list(self.paths),
            self.user,
            self.status,
            self.target,
            self.machine,
            self.since.isoformat() if self.since else None,
            self.until.isoformat() if self.until else None,
        ]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:12]


def cursor_key(secret: str) -> bytes:
    """The key that signs cursors, derived from a secret of the install (so every ingest copy
    reads every other's cursors, and no other use of the secret meets this one)."""
    return hashlib.sha256(b"mlbus log cursor\0" + secret.encode()).digest()


def _signature(body: bytes, flt: LogFilter, key: bytes) -> str:
    mac = hmac.new(key, body + b"\0" + flt.fingerprint().encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def encode_cursor(position: Position, flt: LogFilter, key: bytes) -> str:
    """An opaque cursor for a position under these filters."""
    body = base64.urlsafe_b64encode(json.dumps([position[0], position[1]]).encode()).rstrip(b"=")
    return f"{body.decode()}.{_signature(body, flt, key)}"


def decode_cursor(cursor: str, flt: LogFilter, key: bytes) -> Position:
    """The position in a cursor; CursorError when it is not ours for these filters."""
    body, _, signature = cursor.encode(errors="replace").partition(b".")
    if not hmac.compare_digest(signature, _signature(body, flt, key).encode()):
        raise CursorError(
            "The cursor is not valid for these filters; use `next_cursor` of a previous page "
            "with the same filters."
        )
    try:
        at, rid = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
        if type(at) is not int or type(rid) is not str:
            raise TypeError(type(at))
    except (binascii.Error, ValueError, TypeError) as exc:  # signed by us: a bug, not an attack
        raise CursorError("The cursor is not valid; use `next_cursor` of a previous page.") from exc
    return at, rid
