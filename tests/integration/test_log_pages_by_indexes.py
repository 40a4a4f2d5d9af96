"""The two ways of reading log pages list the same logs in the same order, on the real FerretDB.

On MongoDB a page is a find on the view documents by their indexes (`LogReader(indexed=True)`,
`LogFilter.view_query`); on FerretDB/SQLite, which serves no index but `_id`, it is a walk of the
hand-made log index (`indexed=False`). FerretDB answers both (the find by a scan), so the same
logs, folded once by the logger's own code, are read both ways here under every kind of filter
and page size, and the whole walks compared row by row: the find is what MongoDB runs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.collections import VIEW_INDEXES
from services.ingest.logquery import LogFilter, Position
from services.ingest.logviews import LogReader
from services.logger.fold import Fact, Writes, effects
from services.logger.store import ViewStore

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
USERS = ("alice", "bob", "carol")
TARGETS = ("m1/predict", "m1/explain", "m2/predict")
TASKS = ("t1", "t2")


def _facts(rng: random.Random, count: int) -> list[Fact]:
    facts = []
    for i in range(count):
        # on the half hour: many share one millisecond, and their order falls to the request id
        accepted = AT + timedelta(minutes=rng.randrange(0, 3 * 24 * 60) // 30 * 30)
        user = rng.choice(USERS)
        if i % 2:
            status = rng.choice(("ok", "model_error", "expired"))
            facts.append(
                Fact(
                    "ondemand",
                    f"o{i:04d}",
                    status,
                    accepted,
                    counted=True,
                    user=user,
                    target=rng.choice(TARGETS),
                    accepted_at=accepted,
                )
            )
        else:
            rid = f"e{i:04d}"
            task = rng.choice(TASKS)
            facts.append(
                Fact(
                    "enqueue",
                    rid,
                    "queued",
                    accepted,
                    counted=True,
                    user=user,
                    target=task,
                    accepted_at=accepted,
                )
            )
            if rng.random() < 0.5:  # it moves on: its earlier status leaves that status's pages
                later = rng.choice(("running", "completed", "failed"))
                facts.append(
                    Fact(
                        "enqueue",
                        rid,
                        later,
                        accepted + timedelta(seconds=5),
                        user=user,
                        target=task,
                        accepted_at=accepted,
                    )
                )
    return facts


async def _walk(reader: LogReader, flt: LogFilter, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: Position | None = flt.start()
    for _ in range(1000):
        assert after is not None
        page, after = await reader.page(flt, after, limit)
        rows.extend(page)
        if after is None:
            return rows
    raise AssertionError("the walk did not end")


FILTERS = [
    LogFilter(("enqueue", "ondemand")),
    LogFilter(("ondemand",)),
    LogFilter(("enqueue",), user="bob"),
    LogFilter(("enqueue", "ondemand"), status="queued"),
    LogFilter(("enqueue",), status="completed", user="alice"),
    LogFilter(("ondemand",), target="m1/predict"),
    LogFilter(("ondemand",), machine="m1"),
    LogFilter(("enqueue", "ondemand"), since=AT + timedelta(days=1), until=AT + timedelta(days=2)),
    LogFilter(("enqueue", "ondemand"), user="carol", since=AT + timedelta(hours=30)),
    LogFilter(("ondemand",), user="nobody"),
]


async def test_pages_by_indexes_list_what_the_hand_made_index_lists(mongo_db: Any) -> None:
    store = ViewStore(mongo_db)
    facts = _facts(random.Random(11), 240)
    for start in range(0, len(facts), 40):  # in batches, as the logger folds them
        writes = Writes()
        for fact in facts[start : start + 40]:
            effects(fact, None, writes)
        await store.apply(writes)
    await store.create_view_indexes()
    buckets, indexed = LogReader(mongo_db, indexed=False), LogReader(mongo_db, indexed=True)
    compared = 0
    for limit in (7, 50):
        for flt in FILTERS:
            by_buckets = await _walk(buckets, flt, limit)
            by_indexes = await _walk(indexed, flt, limit)
            assert [r["_id"] for r in by_indexes] == [r["_id"] for r in by_buckets], (flt, limit)
            assert by_indexes == by_buckets, (flt, limit)
            compared += len(by_buckets)
    assert compared > 1000  # the filters above found logs to compare, not empty walks


async def test_a_reader_asks_the_server_which_way_to_read(mongo_db: Any) -> None:
    reader = LogReader(mongo_db)  # FerretDB here: the hand-made index
    await reader.page(LogFilter(("ondemand",)), LogFilter(("ondemand",)).start(), 5)
    assert reader._indexed is False


def test_every_page_filter_has_an_index_that_starts_with_its_equalities() -> None:
    """What `view_query` filters on by equality (user, status, both, target, none) leads an
    index that then sorts as a page does, so MongoDB reads a page without sorting in memory."""
    leads = {tuple(f for f, _ in keys[:-2]) for keys in VIEW_INDEXES}
    assert leads == {(), ("user",), ("status",), ("user", "status"), ("target",)}
    assert all(keys[-2:] == (("at_ms", -1), ("_id", -1)) for keys in VIEW_INDEXES)
