"""Rebuilding the read models from the raw logs (`mlbus logs rebuild`), for a change of their
layout (a new index dimension) or after damage.

The raw logs (`enqueue_logs`, `ondemand_logs`) are the source of truth; all the logger writes is
derived from them: the view documents, the log index and its directories, the counters, and the
fold keys (`logger_folds`). A rebuild drops these (`READ_MODELS`) and folds every raw log again
through the logger's own `effects`, a batch of logs at a time, then records each fact's key as
folded: a message still in Kafka for a fact the rebuild folded is then a redelivery to the
logger, and one for a later fact is folded as usual.

A raw log's facts are those the logger is sent for it: an enqueue request's statuses from its
history (`queued`, or `failed` without `queued`, decides it; `running`, `completed`, `failed`
and `stopped` follow; `accepted` and `cloned` are no facts); an on-demand call's outcome.

The logger must be stopped meanwhile: a fact it folded during the rebuild could be lost with
the collections dropped under it, or counted twice. The rest of the stack may keep running:
what it logs meanwhile waits in Kafka, and the logger folds it when it starts again (a fact the
rebuild read from a raw log already is then a redelivery). A rebuild that stops half-way leaves
the read models half-built: run it again (it starts by dropping them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import utcnow
from schemas.collections import LOG_INDEX
from schemas.status import SETTLED
from schemas.views import PATHS
from services.logger.fold import Fact, Writes, effects
from services.logger.store import ViewStore


def _time(*candidates: object) -> datetime:
    """The first of `candidates` that is a time; now when none is (a damaged raw log: the live
    logger falls back on the time of the message likewise)."""
    return next((c for c in candidates if isinstance(c, datetime)), None) or utcnow()


def enqueue_facts(raw: dict[str, Any]) -> list[Fact]:
    """The facts of an enqueue request's raw log: one per status in its history (and its
    current one), first time reached; none while it is only accepted."""
    rid, accepted = str(raw["_id"]), raw.get("accepted_at")
    reached: dict[str, datetime] = {}
    for step in raw.get("history") or []:
        status = str(step.get("status"))
        if status in SETTLED and status not in reached:
            reached[status] = _time(step.get("at"), accepted)
    current = str(raw.get("status"))
    if current in SETTLED and current not in reached:
        reached[current] = _time(raw.get("updated_at"), accepted)
    rejected = "queued" not in reached  # `failed` without `queued`: the enqueue failed
    facts = []
    for status, at in reached.items():
        decides = status == "queued" or (status == "failed" and rejected)
        # The latency the logger was sent (time since accepted); effects() prefers the stored
        # total, which an enqueue failure has not.
        latency = None
        if decides and isinstance(accepted, datetime):
            latency = round((at - accepted).total_seconds() * 1000, 2)
        error = decides and rejected
        facts.append(
            Fact("enqueue", rid, status, at, counted=decides, error=error, latency_ms=latency)
        )
    return facts


def ondemand_facts(raw: dict[str, Any]) -> list[Fact]:
    """The one fact of an on-demand call's raw log: its outcome."""
    status, at = str(raw.get("status")), _time(raw.get("finished_at"), raw.get("created_at"))
    return [Fact("ondemand", str(raw["_id"]), status, at, counted=True, error=status != "ok")]


FACTS_OF: dict[str, Callable[[dict[str, Any]], list[Fact]]] = {
    "enqueue": enqueue_facts,
    "ondemand": ondemand_facts,
}


@dataclass
class Rebuilt:
    """What a rebuild did."""

    dropped: list[str]
    logs: dict[str, int]
    facts: int = 0
    without_facts: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        per_path = ", ".join(f"{n:,} {p}" for p, n in self.logs.items())
        return (
            f"rebuilt the read models from {sum(self.logs.values()):,} raw logs ({per_path}): "
            f"{self.facts:,} facts folded, {self.without_facts:,} logs with no fact yet "
            f"(accepted, not decided), in {self.seconds:.1f} s"
        )


@dataclass
class _Written:
    """What this rebuild has written so far: documents, and directory fields."""

    docs: set[tuple[str, str]] = field(default_factory=set)
    listed: set[tuple[str, str]] = field(default_factory=set)


def _cheaper(writes: Writes, written: _Written) -> None:
    """Turn a batch's writes into fewer and cheaper ones, as only a rebuild into emptied
    collections may: a document it has not written yet does not exist, so its update becomes
    a whole document (inserted in bulk); a request is listed under its current status only, so
    there is nothing to remove from its earlier statuses' buckets; and a directory field (`d.*`,
    `s.*`, always 1) written by an earlier batch is not written again."""
    for key, update in list(writes.updates.items()):
        coll, doc_id = key
        if coll == LOG_INDEX:
            update.unsets.clear()
            if doc_id.startswith("dir|"):
                listed = {(doc_id, f) for f in update.sets if f.startswith(("d.", "s."))}
                if listed <= written.listed:
                    update.sets.clear()
                written.listed |= listed
        if not update.upsert:
            del writes.updates[key]
        elif key not in written.docs:
            writes.replaces[key] = update.created(doc_id)
            del writes.updates[key]
            written.docs.add(key)


async def rebuild(
    store: ViewStore, *, batch: int = 5000, progress: Callable[[int, int], None] | None = None
) -> Rebuilt:
    """Drop the read models and fold every raw log again; `progress(done, total)` after each
    batch (the total is the collections' estimate)."""
    began = time.perf_counter()
    total = sum([await store.raw_count(p) for p in PATHS])
    done = Rebuilt(dropped=await store.drop_read_models(), logs=dict.fromkeys(PATHS, 0))
    written = _Written()
    for path in PATHS:
        async for raws in store.raw_batches(path, batch):
            writes, keys = Writes(), []
            for raw in raws:
                facts = FACTS_OF[path](raw)
                if not facts:
                    done.without_facts += 1
                for fact in facts:  # the logger's own fold, as if each fact were a message
                    effects(fact, raw, writes, buckets=store.buckets)
                    keys.append(fact.key)
            _cheaper(writes, written)
            await store.apply(writes, fresh=True)
            await store.mark_folded(keys)
            done.logs[path] += len(raws)
            done.facts += len(keys)
            if progress is not None:
                progress(sum(done.logs.values()), max(total, sum(done.logs.values())))
    done.seconds = time.perf_counter() - began
    return done
