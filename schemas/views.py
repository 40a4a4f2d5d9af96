"""The read models of the logs: MongoDB collections the logger writes and the admin API reads.

This module is the contract between the two (services never import each other; the collections'
names are in schemas/collections.py): how each document's `_id` is made, the latency buckets,
and the log index. Every read the admin API makes is an `_id` lookup, the only one FerretDB
answers from an index; see the README ("MongoDB views") for each collection's fields.

The log index (`view_log_index`) answers "newest first, filtered" without scanning the logs:

- a bucket document per (path, dimension, value, slot of acceptance), `_id` =
  `<path>|<dim>|<value>|<slot>`, holding `entries.<request id> = [accepted ms, user, target,
  status, row]`, where `row` is the request's whole view document (without `_id`), so that a
  page is read from its buckets alone, with no lookup per row; dimensions are `all`, `user`,
  `target`, `status` and `user_status` (user and status together, `user_status_value`). A slot
  (`YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH`, its start) is five minutes for `all` and ten for
  `status`, whose values are dense, an hour for `user` and `target`, and six hours for
  `user_status`, whose values are sparse, so that a bucket holds tens of rows, not hundreds,
  and a sparse filter does not read hundreds of near-empty buckets;
- a directory document per (path, dimension, value), `_id` = `dir|<path>|<dim>|<value>`,
  holding `d.<YYYY-MM-DD> = 1` for every day that has a bucket, and one per day, `_id` =
  `dir|<path>|<dim>|<value>|<YYYY-MM-DD>`, holding `s.<slot> = 1` for every slot of that day
  that has a bucket, so that a reader skips empty slots and no directory grows past a day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from schemas.collections import ENQUEUE_LOGS, ONDEMAND_LOGS, VIEW_ENQUEUE, VIEW_ONDEMAND

PATHS = ("enqueue", "ondemand")
RAW_OF = {"enqueue": ENQUEUE_LOGS, "ondemand": ONDEMAND_LOGS}
VIEW_OF = {"enqueue": VIEW_ENQUEUE, "ondemand": VIEW_ONDEMAND}
DIMENSIONS = ("all", "user", "target", "status", "user_status")
#: Minutes per bucket slot (the dimensions not named have hour slots): a bucket should hold tens
#: of rows, since a read parses all of it, and a sparse filter should not walk many empty ones.
#: Under an hour, a divisor of 60; from an hour, a whole number of hours dividing 24.
SLOT_MINUTES = {"all": 5, "status": 10, "user_status": 360}
#: `target` of the per-hour documents that total every target of the hour.
ALL_TARGETS = "*"

#: Latency buckets: bucket b holds values in (R^(b-1), R^b] ms, so a percentile read from the
#: buckets is at most ~19 % above the true value. Values under 0.01 ms share the lowest bucket.
RATIO = 2**0.25
_LOWEST = math.ceil(math.log(0.01, RATIO))


def hour_key(at: datetime) -> str:
    """`YYYY-MM-DDTHH` of a time, in UTC (zero-padded by hand: strftime's %Y is not, for years
    before 1000, and the key must parse back)."""
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}"


def day_key(at: datetime) -> str:
    """`YYYY-MM-DD` of a time, in UTC."""
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"


def hour_start(key: str) -> datetime:
    """The start of an hour key (inverse of `hour_key`)."""
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def epoch_ms(at: datetime) -> int:
    """Milliseconds since the epoch (the log index's sort key)."""
    return int(at.timestamp() * 1000)


def hourly_id(path: str, hour: str, target: str) -> str:
    """`_id` of a `view_requests_hourly` document."""
    return f"{path}|{hour}|{target}"


def daily_id(path: str, day: str) -> str:
    """`_id` of a `view_requests_daily` document."""
    return f"{path}|{day}"


def usage_id(user: str, path: str, day: str) -> str:
    """`_id` of a `view_usage_by_user` document."""
    return f"{user}|{path}|{day}"


def bucket_id(path: str, dim: str, value: str, slot: str) -> str:
    """`_id` of a log-index bucket."""
    return f"{path}|{dim}|{value}|{slot}"


def directory_id(path: str, dim: str, value: str, day: str | None = None) -> str:
    """`_id` of a log-index directory: of days, or (with `day`) of that day's slots."""
    top = f"dir|{path}|{dim}|{value}"
    return top if day is None else f"{top}|{day}"


def slot_key(dim: str, at: datetime) -> str:
    """The bucket slot of a time in a dimension (`SLOT_MINUTES`): `YYYY-MM-DDTHH:MM` (its first
    minute) for slots under an hour, `YYYY-MM-DDTHH` (its first hour) for the others. Keys sort
    in time order."""
    minutes = SLOT_MINUTES.get(dim, 60)
    if minutes >= 60:
        at, hours = at.astimezone(UTC), minutes // 60
        return f"{day_key(at)}T{at.hour // hours * hours:02d}"
    return f"{hour_key(at)}:{at.astimezone(UTC).minute // minutes * minutes:02d}"


def slot_start_ms(slot: str) -> int:
    """The first millisecond of a slot or day key (inverse of `slot_key` and `day_key`)."""
    formats = {10: "%Y-%m-%d", 13: "%Y-%m-%dT%H", 16: "%Y-%m-%dT%H:%M"}
    start = datetime.strptime(slot, formats[len(slot)]).replace(tzinfo=UTC)
    return epoch_ms(start)


def user_status_value(user: str, status: str) -> str:
    """The `user_status` dimension's value of a user and a status: each with `%` and `|`
    percent-escaped, joined by `|`, so that no two pairs share a value, and no bucket or
    directory `_id` of this dimension is another's."""
    return "|".join(t.replace("%", "%25").replace("|", "%7C") for t in (user, status))


def field_name(text: str) -> str:
    """A user name or target as a document field name: `.` and `$` would split or break the
    path of an update, so they (and `%`) are percent-escaped."""
    return text.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unfield(name: str) -> str:
    """Inverse of `field_name`."""
    return name.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def latency_bucket(ms: float) -> int:
    """The bucket of a latency in milliseconds."""
    if ms <= 0.01:
        return _LOWEST
    return max(_LOWEST, math.ceil(math.log(ms, RATIO) - 1e-9))


def bucket_upper_ms(bucket: int) -> float:
    """The largest latency a bucket holds."""
    return float(RATIO**bucket)


def percentile(buckets: Mapping[str, int | float], q: float) -> float | None:
    """The q-th percentile (0-100) from `{bucket: count}`, as its bucket's upper bound (ms,
    rounded to 0.01); None when there are no values."""
    counts = sorted((int(b), int(n)) for b, n in buckets.items() if n)
    total = sum(n for _, n in counts)
    if total == 0:
        return None
    rank, seen = max(1, math.ceil(q / 100 * total)), 0
    for bucket, n in counts:
        seen += n
        if seen >= rank:
            return round(bucket_upper_ms(bucket), 2)
    return round(bucket_upper_ms(counts[-1][0]), 2)  # pragma: no cover - rank <= total


def merge_counts(into: dict[str, int], more: Mapping[str, int | float]) -> dict[str, int]:
    """Add `{key: count}` maps (latency buckets, statuses, users)."""
    for key, n in more.items():
        into[key] = into.get(key, 0) + int(n)
    return into
