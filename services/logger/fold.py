"""What one fact about a request changes in the read models (pure: no I/O).

A fact is "request R reached status S" (from RequestLogged or a task event); its idempotency key
is `R/S` for an enqueue request, which goes through many statuses, and `R/outcome` for an
on-demand call, which ends once: two outcomes of one call (a late "ok" and the "expired" of its
redelivery after its router died) are one fact, the first folded (the one `ondemand_logs` keeps,
see `raw_log`). Its effects:

- the view document of R, projected from the raw log (the source of truth) and replaced whole;
- R's entry in the log index (its index keys and its whole view document, so that a page needs
  no lookup per row), under the slot of its acceptance, for every dimension (all, user, target,
  status, user_status), the day and slot in the directories, and the removal of R from the
  status and user_status buckets of its earlier statuses;
- counters: per hour, path and target (`view_requests_hourly`), per day and path with per-hour,
  per-user and per-target breakdowns (`view_requests_daily`), per user, path and day
  (`view_usage_by_user`). All are keyed by the hour R was accepted, so a bucket reads "of the
  requests accepted in this hour, ...". `count`, `errors` and latency move once per request
  (the fact that decides it: queued or enqueue failed; an on-demand call's outcome); `statuses`
  moves once per status.

Effects of many facts merge into one write per document (`Writes`), which is what keeps the
logger fast on FerretDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from schemas.base import JSONValue
from schemas.collections import LOG_INDEX, VIEW_DAILY, VIEW_HOURLY, VIEW_USAGE
from schemas.status import ALL
from schemas.views import (
    ALL_TARGETS,
    VIEW_OF,
    bucket_id,
    daily_id,
    day_key,
    directory_id,
    epoch_ms,
    field_name,
    hour_key,
    hour_start,
    hourly_id,
    latency_bucket,
    slot_key,
    usage_id,
    user_status_value,
)

_ENQUEUE_FIELDS = (
    "user",
    "task_id",
    "queue",
    "status",
    "error",
    "queue_watched",
    "queue_choice",
    "accepted_at",
    "updated_at",
    "latency_ms",
    "history",
    "template_task_id",
    "clone_id",
)
_ONDEMAND_FIELDS = (
    "user",
    "machine_id",
    "endpoint",
    "version",
    "status",
    "http_status",
    "error_code",
    "error",
    "latency_ms",
    "finished_at",
    "serving_task_id",
)
UNKNOWN = "-"
#: The status part of an on-demand fact's key: a call is folded once, whatever its outcome.
ONCE = "outcome"


@dataclass(frozen=True)
class Fact:
    """Request `request_id` on `path` reached `status`."""

    path: str
    request_id: str
    status: str
    at: datetime
    counted: bool = False
    error: bool = False
    accepted_at: datetime | None = None
    user: str | None = None
    target: str | None = None
    latency_ms: float | None = None
    details: dict[str, JSONValue] = field(default_factory=dict)
    #: The raw log document the fact brings (an on-demand call's), for the logger to store.
    raw: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The idempotency key: request id and status; an on-demand call's outcome, once."""
        return f"{self.request_id}/{ONCE if self.path == 'ondemand' else self.status}"


@dataclass
class Update:
    """One document's `$set`, `$inc` and `$unset`, merged over facts."""

    sets: dict[str, Any] = field(default_factory=dict)
    incs: dict[str, float] = field(default_factory=dict)
    unsets: set[str] = field(default_factory=set)

    def spec(self) -> dict[str, Any]:
        """The update document."""
        spec: dict[str, Any] = {}
        if self.sets:
            spec["$set"] = self.sets
        if self.incs:
            spec["$inc"] = self.incs
        unsets = self.unsets - set(self.sets)
        if unsets:
            spec["$unset"] = dict.fromkeys(sorted(unsets), "")
        return spec

    @property
    def upsert(self) -> bool:
        """Only an update that adds something may create its document."""
        return bool(self.sets or self.incs)

    def created(self, key: str) -> dict[str, Any]:
        """The document this update creates where there is none (what its upsert makes)."""
        doc: dict[str, Any] = {"_id": key}
        for path, value in [*self.sets.items(), *self.incs.items()]:
            node = doc
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = node.get(leaf, 0) + value if path in self.incs else value
        return doc


@dataclass
class Writes:
    """Every write a batch of facts makes: whole documents, and updates by `_id`."""

    replaces: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    updates: dict[tuple[str, str], Update] = field(default_factory=dict)

    def update(self, collection: str, key: str) -> Update:
        """The update of one document (created empty on first use)."""
        return self.updates.setdefault((collection, key), Update())

    def inc(self, collection: str, key: str, counts: dict[str, float], **sets: Any) -> None:
        """Add `counts`; set `sets` (static fields, so the document reads alone)."""
        u = self.update(collection, key)
        u.sets.update(sets)
        for name, n in counts.items():
            u.incs[name] = u.incs.get(name, 0) + n

    def __len__(self) -> int:
        return len(self.replaces) + len(self.updates)


def safe_url(url: str | None) -> str | None:
    """A replica URL without credentials, query or fragment."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def project(path: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The view document of a raw log document (see the README for the fields)."""
    rid = str(raw["_id"])
    if path == "enqueue":
        view = {k: raw.get(k) for k in _ENQUEUE_FIELDS}
        view["target"] = raw.get("task_id")
    else:
        view = {k: raw.get(k) for k in _ONDEMAND_FIELDS}
        view["accepted_at"] = raw.get("created_at")
        view["target"] = f"{raw.get('machine_id')}/{raw.get('endpoint')}"
        view["replica"] = safe_url(raw.get("replica_url"))
    return {"_id": rid, "request_id": rid, "path": path, **view}


def from_fact(fact: Fact) -> dict[str, Any]:
    """A view document from the fact alone (when the raw log cannot be read)."""
    d = fact.details
    view: dict[str, Any] = {
        "_id": fact.request_id,
        "request_id": fact.request_id,
        "path": fact.path,
        "user": fact.user,
        "target": fact.target,
        "status": fact.status,
        "accepted_at": fact.accepted_at,
        "latency_ms": {"total": fact.latency_ms} if fact.latency_ms is not None else {},
        "error": d.get("message"),
    }
    if fact.path == "enqueue":
        view.update(task_id=fact.target, queue=d.get("queue"))
    else:
        machine, _, endpoint = (fact.target or "").partition("/")
        view.update(
            machine_id=machine,
            endpoint=endpoint,
            http_status=d.get("http_status"),
            error_code=d.get("error_code"),
        )
    return view


def _latency(fact: Fact, raw: dict[str, Any] | None) -> float | None:
    stored = (raw or {}).get("latency_ms") or {}
    total = stored.get("total") if isinstance(stored, dict) else None
    return float(total) if isinstance(total, int | float) else fact.latency_ms


def _earlier_statuses(path: str, raw: dict[str, Any] | None, status: str) -> set[str]:
    if path != "enqueue":
        return set()
    if raw is None:  # unknown history: every other status
        return set(ALL) - {status}
    return {str(h.get("status")) for h in raw.get("history") or []} - {status}


def effects(fact: Fact, raw: dict[str, Any] | None, into: Writes, *, buckets: bool = True) -> None:
    """Add the writes of one fact to `into`. `buckets`: write the hand-made log index too (on
    FerretDB/SQLite; where the server has real indexes, the pages read the view documents)."""
    view = project(fact.path, raw) if raw is not None else from_fact(fact)
    accepted = view.get("accepted_at") or fact.accepted_at or fact.at
    view["accepted_at"], view["hour"] = accepted, hour_key(accepted)
    # the fields a page filters and sorts on, as the log index keys them
    view["user"] = user = str(view.get("user") or fact.user or UNKNOWN)
    view["target"] = target = str(view.get("target") or fact.target or UNKNOWN)
    view["status"] = status = str(view.get("status") or fact.status)
    view["at_ms"] = epoch_ms(accepted)
    into.replaces[(VIEW_OF[fact.path], fact.request_id)] = view
    if buckets:
        earlier = _earlier_statuses(fact.path, raw, status)
        row = {k: v for k, v in view.items() if k != "_id"}
        keys = (user, target, status)
        _index(into, fact, row, accepted=accepted, keys=keys, earlier=earlier)
    _counters(into, fact, accepted=accepted, user=user, target=target, latency=_latency(fact, raw))


def _index(
    into: Writes,
    fact: Fact,
    row: dict[str, Any],
    *,
    accepted: datetime,
    keys: tuple[str, str, str],
    earlier: set[str],
) -> None:
    path, day, rid = fact.path, day_key(accepted), fact.request_id
    user, target, status = keys
    entry = [epoch_ms(accepted), user, target, status, row]
    for dim, value in (
        ("all", ALL_TARGETS),
        ("user", user),
        ("target", target),
        ("status", status),
        ("user_status", user_status_value(user, status)),
    ):
        slot = slot_key(dim, accepted)
        bucket = into.update(LOG_INDEX, bucket_id(path, dim, value, slot))
        bucket.sets.update({f"entries.{rid}": entry, "path": path, "dim": dim, "value": value})
        bucket.sets["slot"] = slot
        days = into.update(LOG_INDEX, directory_id(path, dim, value))
        days.sets.update({f"d.{day}": 1, "path": path, "dim": dim, "value": value})
        slots = into.update(LOG_INDEX, directory_id(path, dim, value, day))
        slots.sets.update({f"s.{slot}": 1, "path": path, "dim": dim, "value": value, "day": day})
    for old in earlier:  # the buckets of its earlier statuses no longer list it
        for dim, value in (("status", old), ("user_status", user_status_value(user, old))):
            old_bucket = into.update(
                LOG_INDEX, bucket_id(path, dim, value, slot_key(dim, accepted))
            )
            # the later fact wins: an entry set there by an earlier fact of this batch goes too
            old_bucket.sets.pop(f"entries.{rid}", None)
            old_bucket.unsets.add(f"entries.{rid}")


def _counters(
    into: Writes,
    fact: Fact,
    *,
    accepted: datetime,
    user: str,
    target: str,
    latency: float | None,
) -> None:
    path, hour, day = fact.path, hour_key(accepted), day_key(accepted)
    counts: dict[str, float] = {f"statuses.{field_name(fact.status)}": 1}
    if fact.counted:
        counts["count"] = 1
        if fact.error:
            counts["errors"] = 1
        if latency is not None:
            counts.update({f"lat.{latency_bucket(latency)}": 1, "latency_sum_ms": latency})
            counts["latency_n"] = 1
    into.inc(
        VIEW_HOURLY,
        hourly_id(path, hour, target),
        counts,
        path=path,
        hour=hour_start(hour),
        target=target,
    )
    daily = {**counts, **{f"hours.{hour[-2:]}.{k}": n for k, n in counts.items()}}
    if fact.counted:
        daily[f"users.{field_name(user)}"] = 1
        daily[f"targets.{field_name(target)}"] = 1
        usage = {k: n for k, n in counts.items() if not k.startswith(("lat.", "statuses."))}
        into.inc(VIEW_USAGE, usage_id(user, path, day), usage, user=user, path=path, day=day)
    into.inc(VIEW_DAILY, daily_id(path, day), daily, path=path, day=day)
