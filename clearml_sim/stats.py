"""Time-bucketed statistics: ``workers.get_stats``, ``get_activity_report``, queue metrics (§6.2).

Buckets follow Elasticsearch ``date_histogram`` with ``fixed_interval`` and ``extended_bounds``:
keys are epoch multiples of the interval, empty buckets hold 0.0, and the last, incomplete bucket is
dropped. Dates are epoch **ms** (raw ES bucket keys) everywhere; the queue metrics keep only
buckets that hold samples (``min_doc_count: 1``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from clearml_sim import errors, queues
from clearml_sim.query import as_list
from clearml_sim.state import Doc, SimState

MIN_INTERVAL_S = 40


def _avg(values: list[float]) -> float:
    return sum(values) / len(values)


_AGGS: dict[str, Callable[[list[float]], float]] = {"avg": _avg, "min": min, "max": max}


def _range(body: Doc) -> tuple[float, float, int]:
    try:
        start, end = float(body["from_date"]), float(body["to_date"])
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.missing_fields("from_date", "to_date") from exc
    if start >= end:
        raise errors.fields_value_error("from_date must be less than to_date")
    return start, end, max(int(body.get("interval") or MIN_INTERVAL_S), MIN_INTERVAL_S)


def bucket_keys(start: float, end: float, interval: int) -> list[int]:
    """Bucket start times (seconds) from ``start`` to ``end``, without the incomplete last one."""
    first = int(start // interval) * interval
    cutoff = end - 0.9 * interval
    return [k for k in range(first, int(end) + 1, interval) if k < cutoff]


def _bucketed(
    samples: Iterable[tuple[float, Any]], keys: Sequence[int], interval: int
) -> list[list[Any]]:
    out: list[list[Any]] = [[] for _ in keys]
    if not keys:
        return out
    first = keys[0]
    for ts, value in samples:
        idx = int((ts - first) // interval)
        if 0 <= idx < len(keys):
            out[idx].append(value)
    return out


def _series(buckets: list[list[float]], aggs: Sequence[str]) -> list[Doc]:
    return [
        {"aggregation": agg, "values": [_AGGS[agg](b) if b else 0.0 for b in buckets]}
        for agg in aggs
    ]


def _metric(
    samples: list[tuple[float, Doc]],
    key: str,
    aggs: Sequence[str],
    keys: list[int],
    interval: int,
    *,
    split: bool,
) -> list[Doc]:
    points = [(ts, stats[key]) for ts, stats in samples if stats.get(key) is not None]
    if not points:
        return []
    dates = [k * 1000 for k in keys]
    width = max((len(v) for _, v in points if isinstance(v, list)), default=0)
    if split and key.startswith("gpu_") and width > 1:
        return [
            {
                "metric": key,
                "variant": str(i),
                "dates": dates,
                "stats": _series(
                    _bucketed(((t, v[i]) for t, v in points if len(v) > i), keys, interval), aggs
                ),
            }
            for i in range(width)
        ]
    flat = ((t, x) for t, v in points for x in (v if isinstance(v, list) else [v]))
    buckets = _bucketed(flat, keys, interval)
    return [{"metric": key, "dates": dates, "stats": _series(buckets, aggs)}]


def worker_stats(state: SimState, body: Doc) -> list[Doc]:
    """``workers.get_stats``: honours ``aggregation`` (default avg) and ignores ``category``."""
    start, end, interval = _range(body)
    keys = bucket_keys(start, end, interval)
    aggs_by_key: dict[str, list[str]] = defaultdict(list)
    for item in as_list(body.get("items")):
        agg = (item.get("aggregation") or "avg") if isinstance(item, dict) else "avg"
        if isinstance(item, dict) and item.get("key") and agg in _AGGS:
            aggs_by_key[item["key"]].append(agg)
    wanted = set(as_list(body.get("worker_ids")))
    split = bool(body.get("split_by_variant"))
    result = []
    for rec in state.workers.values():
        if wanted and rec.id not in wanted:
            continue
        samples = [(ts, st) for ts, st, _ in rec.samples if start <= ts <= end]
        metrics = [
            m
            for key, aggs in aggs_by_key.items()
            for m in _metric(samples, key, list(dict.fromkeys(aggs)), keys, interval, split=split)
        ]
        if metrics:
            result.append({"worker": rec.id, "metrics": metrics})
    return result


def activity_report(state: SimState, body: Doc) -> Doc:
    """``workers.get_activity_report``: distinct reporting workers per bucket, and busy ones."""
    start, end, interval = _range(body)
    keys = bucket_keys(start, end, interval)
    total: list[set[str]] = [set() for _ in keys]
    active: list[set[str]] = [set() for _ in keys]
    for rec in state.workers.values():
        samples = ((ts, busy) for ts, _, busy in rec.samples if start <= ts <= end)
        for idx, flags in enumerate(_bucketed(samples, keys, interval)):
            if flags:
                total[idx].add(rec.id)
                if any(flags):
                    active[idx].add(rec.id)
    dates = [k * 1000 for k in keys]
    return {
        "total": {"dates": dates, "counts": [len(s) for s in total]},
        "active": {"dates": dates, "counts": [len(s) for s in active]},
    }


def queue_metrics(state: SimState, body: Doc) -> list[Doc]:
    """``queues.get_queue_metrics`` (``bll/queue/queue_metrics.py``): an ES ``date_histogram``
    with ``min_doc_count: 1``, so dates are bucket keys in epoch **ms** and only buckets that
    hold samples appear. Hidden queues (system tag ``k8s-glue``) are left out unless
    ``search_hidden``; without ``queue_ids`` one series averaged over all queues."""
    start, end, interval = _range(body)
    keys = bucket_keys(start, end, interval)
    hidden_ok = bool(body.get("search_hidden"))
    shown = [q for q in state.queues if queues.visible(state, q, hidden_ok)]
    wanted = as_list(body.get("queue_ids"))
    groups = [(q, [q]) for q in wanted if q in shown] if wanted else [("all", shown)]
    result = []
    for name, members in groups:
        samples = [
            (ts, (n, w))
            for q in members
            for ts, n, w in state.queue_samples.get(q, ())
            if start <= ts <= end
        ]
        filled = [
            (k, b) for k, b in zip(keys, _bucketed(samples, keys, interval), strict=True) if b
        ]
        result.append(
            {
                "queue": name,
                "dates": [k * 1000 for k, _ in filled],
                "avg_waiting_times": [sum(w for _, w in b) / len(b) for _, b in filled],
                "queue_lengths": [sum(n for n, _ in b) / len(b) for _, b in filled],
            }
        )
    return result
