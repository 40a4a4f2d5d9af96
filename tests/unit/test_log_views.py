"""Latency buckets and percentiles, log cursors and filters, CSV rows, and what one fact
writes into the read models."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import logcsv
from schemas.admin import LogEntry
from schemas.views import (
    PATHS,
    RATIO,
    bucket_upper_ms,
    day_key,
    field_name,
    latency_bucket,
    percentile,
    slot_key,
    slot_start_ms,
    unfield,
    user_status_value,
)
from services.ingest import logviews
from services.ingest.logquery import (
    START,
    CursorError,
    LogFilter,
    cursor_key,
    decode_cursor,
    encode_cursor,
)
from services.ingest.logviews import LogReader
from services.logger.fold import Fact, Writes, effects, safe_url

AT = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("ms", [0.004, 0.01, 0.3, 1.0, 7.5, 41.5, 999.9, 30_000.0])
def test_a_latency_lands_in_a_bucket_whose_bounds_hold_it(ms: float) -> None:
    bucket = latency_bucket(ms)
    assert ms <= bucket_upper_ms(bucket) * (1 + 1e-9)
    if ms > 0.01:
        assert ms > bucket_upper_ms(bucket - 1)


def test_percentiles_from_buckets_are_within_one_bucket_of_the_truth() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(10_000)]
    buckets: dict[str, int] = {}
    for v in values:
        key = str(latency_bucket(v))
        buckets[key] = buckets.get(key, 0) + 1
    ordered = sorted(values)
    for q in (50, 95, 99):
        true = ordered[int(q / 100 * len(ordered)) - 1]
        estimate = percentile(buckets, q)
        assert estimate is not None
        assert true <= estimate * 1.001 <= true * RATIO * 1.01, (q, true, estimate)


def test_percentile_of_nothing_is_none_and_of_one_value_is_its_bucket() -> None:
    assert percentile({}, 50) is None
    assert percentile({str(latency_bucket(12.0)): 1}, 99) == round(
        bucket_upper_ms(latency_bucket(12.0)), 2
    )


def test_field_names_escape_dots_and_dollars_reversibly() -> None:
    for name in ("john.doe", "$weird", "50%", "plain"):
        escaped = field_name(name)
        assert "." not in escaped
        assert not escaped.startswith("$")
        assert unfield(escaped) == name


KEY = cursor_key("test-secret")


def test_a_cursor_round_trips_and_is_bound_to_its_filters_and_key() -> None:
    flt = LogFilter(paths=("enqueue",), user="alice", status="failed")
    cursor = encode_cursor((1_764_158_400_000, "ab" * 16), flt, KEY)
    assert decode_cursor(cursor, flt, KEY) == (1_764_158_400_000, "ab" * 16)
    with pytest.raises(CursorError, match="these filters"):
        decode_cursor(cursor, LogFilter(paths=("enqueue",), user="bob"), KEY)
    with pytest.raises(CursorError):
        decode_cursor(cursor, flt, cursor_key("another install"))
    for garbage in ("x", "!!!", ".", encode_cursor((1, "r"), flt, KEY)[:-3], "\udcff.\x00"):
        with pytest.raises(CursorError):
            decode_cursor(garbage, flt, KEY)


def test_a_tampered_cursor_is_refused_before_any_field_is_read() -> None:
    """Any change of the position (here `1e999`, which once reached int() as infinity and
    answered 500) breaks the signature."""
    flt = LogFilter(paths=("enqueue",))
    signature = encode_cursor((1, "r"), flt, KEY).partition(".")[2]
    for position in (b'[1e999, "r"]', b'[2, "r"]', b'{"a": 1e999}', b"[NaN, 1]"):
        forged = base64.urlsafe_b64encode(position).decode().rstrip("=")
        with pytest.raises(CursorError, match="not valid"):
            decode_cursor(f"{forged}.{signature}", flt, KEY)


def test_filters_pick_the_smallest_dimension_and_match_entries() -> None:
    assert LogFilter(paths=("enqueue",)).dimension() == ("all", "*")
    assert LogFilter(paths=("enqueue",), status="failed").dimension() == ("status", "failed")
    assert LogFilter(paths=("ondemand",), target="m/e", status="ok").dimension() == (
        "target",
        "m/e",
    )
    assert LogFilter(paths=("ondemand",), user="a", target="m/e").dimension() == ("user", "a")
    assert LogFilter(paths=PATHS, user="a", status="failed").dimension() == (
        "user_status",
        user_status_value("a", "failed"),
    )
    assert LogFilter(paths=("ondemand",), user="a", status="ok", target="m/e").dimension() == (
        "user_status",
        user_status_value("a", "ok"),
    )
    at = int(AT.timestamp() * 1000)
    flt = LogFilter(paths=("ondemand",), machine="m1", since=AT - timedelta(minutes=1), until=AT)
    assert flt.accepts([at, "alice", "m1/parking", "ok"])
    assert not flt.accepts([at, "alice", "m10/parking", "ok"])
    assert not flt.accepts([at + 1, "alice", "m1/parking", "ok"])
    assert flt.start() == (at + 1, "")
    assert LogFilter(paths=("enqueue",)).start() == START


def test_csv_rows_quote_what_needs_quoting_and_keep_the_column_order() -> None:
    entry = LogEntry(
        request_id="r1",
        path="ondemand",
        user="alice",
        target="m1/parking",
        status="model_error",
        accepted_at=AT,
        error='bad "hour", expected 0-23',
        latency_ms={"total": 12.5, "model": 3.0},
        http_status=422,
        error_code="model_rejected",
    )
    text = logcsv.lines([entry], header=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(logcsv.COLUMNS)
    assert dict(zip(rows[0], rows[1], strict=True)) == {
        "path": "ondemand",
        "request_id": "r1",
        "accepted_at": "2026-11-26T12:30:00+00:00",
        "user": "alice",
        "target": "m1/parking",
        "status": "model_error",
        "error": 'bad "hour", expected 0-23',
        "latency_ms": "12.5",
        "queue": "",
        "http_status": "422",
        "error_code": "model_rejected",
    }
    assert text.endswith("\r\n")


def test_replica_urls_lose_credentials_and_queries() -> None:
    assert safe_url("http://u:pw@10.0.0.5:8080/serve?key=1#x") == "http://10.0.0.5:8080/serve"
    assert safe_url(None) is None


def test_one_fact_writes_view_index_and_counters_keyed_by_acceptance_hour() -> None:
    raw = {
        "_id": "r1",
        "user": "john.doe",
        "task_id": "t1",
        "template_task_id": "real-template",
        "clone_id": "real-clone",
        "queue": "gpu-a100",
        "status": "running",
        "accepted_at": AT,
        "latency_ms": {"total": 40.0},
        "history": [{"status": s, "at": AT} for s in ("accepted", "cloned", "queued", "running")],
    }
    writes = Writes()
    effects(Fact("enqueue", "r1", "queued", AT, counted=True), raw, writes)
    view = writes.replaces[("view_enqueue_logs", "r1")]
    assert view["status"] == "running"
    assert view["hour"] == "2026-11-26T12"
    assert view["clone_id"] == "real-clone"  # admin-facing view; users' API hides it
    bucket = writes.updates[("view_log_index", "enqueue|status|running|2026-11-26T12:30")]
    *keys, row = bucket.sets["entries.r1"]
    assert keys == [int(AT.timestamp() * 1000), "john.doe", "t1", "running"]
    assert row == {k: v for k, v in view.items() if k != "_id"}  # a page needs no other read
    by_user = writes.updates[("view_log_index", "enqueue|user|john.doe|2026-11-26T12")]
    assert by_user.sets["entries.r1"][4]["status"] == "running"
    days = writes.updates[("view_log_index", "dir|enqueue|user|john.doe")]
    assert days.sets["d.2026-11-26"] == 1
    slots = writes.updates[("view_log_index", "dir|enqueue|all|*|2026-11-26")]
    assert slots.sets["s.2026-11-26T12:30"] == 1
    stale = writes.updates[("view_log_index", "enqueue|status|queued|2026-11-26T12:30")]
    assert "entries.r1" in stale.unsets
    assert not stale.upsert
    hourly = writes.updates[("view_requests_hourly", "enqueue|2026-11-26T12|t1")].incs
    assert hourly["count"] == 1
    assert hourly["statuses.queued"] == 1
    assert hourly[f"lat.{latency_bucket(40.0)}"] == 1
    daily = writes.updates[("view_requests_daily", "enqueue|2026-11-26")].incs
    assert daily["users.john%2Edoe"] == 1
    assert daily["hours.12.count"] == 1
    usage = writes.updates[("view_usage_by_user", "john.doe|enqueue|2026-11-26")].incs
    assert usage == {"count": 1, "latency_sum_ms": 40.0, "latency_n": 1}


def test_user_status_values_never_collide_and_have_six_hour_slots() -> None:
    pairs = [("a|b", "c"), ("a", "b|c"), ("a%7Cb", "c"), ("a", "b"), ("a|", "b"), ("a", "|b")]
    assert len({user_status_value(u, s) for u, s in pairs}) == len(pairs)
    assert user_status_value("john.doe", "failed") == "john.doe|failed"
    assert slot_key("user_status", AT) == "2026-11-26T12"
    assert slot_key("user_status", AT.replace(hour=5, minute=59)) == "2026-11-26T00"
    assert slot_key("user_status", AT.replace(hour=23)) == "2026-11-26T18"
    assert slot_start_ms(slot_key("user_status", AT)) == int(
        AT.replace(minute=0).timestamp() * 1000
    )


def test_an_entry_moves_between_user_status_buckets_as_its_status_changes() -> None:
    """The fold lists a request under (user, its current status) only: a page of alice's
    queued requests must not show one that runs now."""
    raw: dict[str, Any] = {
        "_id": "r1",
        "user": "alice",
        "task_id": "t1",
        "status": "queued",
        "accepted_at": AT,
        "latency_ms": {"total": 40.0},
        "history": [{"status": s, "at": AT} for s in ("accepted", "cloned", "queued")],
    }
    store: dict[str, _Collection] = {}

    def bucket(status: str) -> dict[str, Any]:
        key = f"enqueue|user_status|{user_status_value('alice', status)}|2026-11-26T12"
        return store["view_log_index"].docs.get(key, {}).get("entries", {})

    writes = Writes()
    effects(Fact("enqueue", "r1", "queued", AT, counted=True), raw, writes)
    _apply(store, writes)
    assert list(bucket("queued")) == ["r1"]
    raw.update(status="running", history=[*raw["history"], {"status": "running", "at": AT}])
    writes = Writes()
    effects(Fact("enqueue", "r1", "running", AT), raw, writes)
    _apply(store, writes)
    assert bucket("queued") == {}
    assert list(bucket("running")) == ["r1"]
    assert bucket("running")["r1"][3] == "running"
    assert bucket("running")["r1"][4]["status"] == "running"
    directory = store["view_log_index"].docs[
        f"dir|enqueue|user_status|{user_status_value('alice', 'running')}|2026-11-26"
    ]
    assert directory["s"] == {"2026-11-26T12": 1}


async def test_a_page_of_one_users_status_reads_only_that_pairs_buckets() -> None:
    store: dict[str, _Collection] = {}
    writes = Writes()
    for i in range(40):
        user, status = ("alice", "failed") if i % 10 == 0 else (f"u{i % 3}", "ok")
        at = AT - timedelta(minutes=37 * i)
        fact = Fact("ondemand", f"r{i:02d}", status, at, user=user, target="m1/e", accepted_at=at)
        effects(fact, None, writes)
    _apply(store, writes)
    reads: list[str] = []
    index = store["view_log_index"]
    find_one = index.find_one

    async def counted(query: dict[str, str]) -> dict[str, Any] | None:
        reads.append(query["_id"])
        return await find_one(query)

    index.find_one = counted
    reader = LogReader(store, indexed=False)  # type: ignore[arg-type]
    flt = LogFilter(paths=("ondemand",), user="alice", status="failed")
    docs, following = await reader.page(flt, flt.start(), 50)
    assert [d["_id"] for d in docs] == ["r00", "r10", "r20", "r30"]
    assert following is None
    assert all("ondemand|user_status|alice|failed" in r for r in reads), reads
    assert len(reads) == 1 + 2 + 4  # the directory of days, two days', four 6-hour buckets


def test_a_lifecycle_fact_moves_statuses_but_not_the_request_count() -> None:
    writes = Writes()
    fact = Fact("enqueue", "r2", "completed", AT, user="bob", target="t1", accepted_at=AT)
    effects(fact, None, writes)
    hourly = writes.updates[("view_requests_hourly", "enqueue|2026-11-26T12|t1")].incs
    assert hourly == {"statuses.completed": 1}
    assert ("view_usage_by_user", "bob|enqueue|2026-11-26") not in writes.updates


def test_hour_keys_of_early_years_parse_back() -> None:
    """Found by the OpenAPI fuzz: strftime does not zero-pad years before 1000."""
    from datetime import UTC, datetime

    from schemas.views import day_key, epoch_ms, hour_key, hour_start, slot_key, slot_start_ms

    early = datetime(745, 8, 30, 17, 48, tzinfo=UTC)
    assert hour_key(early) == "0745-08-30T17"
    assert day_key(early) == "0745-08-30"
    assert hour_start(hour_key(early)) == early.replace(minute=0)
    assert slot_key("all", early) == "0745-08-30T17:45"
    assert slot_key("status", early) == "0745-08-30T17:40"
    assert slot_start_ms(slot_key("all", early)) == epoch_ms(early.replace(minute=45))
    assert slot_start_ms(slot_key("user", early)) == epoch_ms(early.replace(minute=0))
    assert slot_start_ms(day_key(early)) == epoch_ms(early.replace(hour=0, minute=0))


class _Collection:
    """Just enough of an async collection for LogReader: `find_one` by `_id`."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def find_one(self, query: dict[str, str]) -> dict[str, Any] | None:
        return self.docs.get(query["_id"])


def _apply(store: dict[str, _Collection], writes: Writes) -> None:
    for (coll, key), doc in writes.replaces.items():
        store.setdefault(coll, _Collection()).docs[key] = doc
    for (coll, key), update in writes.updates.items():
        doc = store.setdefault(coll, _Collection()).docs.setdefault(key, {"_id": key})
        for dotted, value in update.sets.items():
            *parents, leaf = dotted.split(".")
            node = doc
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        for dotted in update.unsets - set(update.sets):
            parent, _, leaf = dotted.rpartition(".")
            doc.get(parent, {}).pop(leaf, None)


async def test_pages_walk_the_slots_newest_first_and_every_log_appears_once() -> None:
    store: dict[str, _Collection] = {}
    writes = Writes()
    rng = random.Random(3)
    for i in range(300):  # two days, ten-minute and hour slots, some empty
        at = AT - timedelta(minutes=rng.randrange(2 * 24 * 60))
        user, status = rng.choice(["alice", "bob"]), rng.choice(["ok", "failed"])
        fact = Fact("ondemand", f"r{i:03d}", status, at, user=user, target="m1/e", accepted_at=at)
        effects(fact, None, writes)
    _apply(store, writes)
    reader = LogReader(store, max_buckets=5, indexed=False)  # type: ignore[arg-type]
    for flt in (
        LogFilter(paths=PATHS),
        LogFilter(paths=("ondemand",), user="alice", status="failed"),
        LogFilter(paths=("ondemand",), status="ok", since=AT - timedelta(hours=20)),
    ):
        expected = sorted(
            (
                (int(d["accepted_at"].timestamp() * 1000), d["request_id"])
                for d in store["view_ondemand_logs"].docs.values()
                if flt.accepts(
                    [int(d["accepted_at"].timestamp() * 1000), d["user"], "m1/e", d["status"]]
                )
            ),
            reverse=True,
        )
        got, position = [], flt.start()
        while True:
            docs, following = await reader.page(flt, position, 7)
            assert len(docs) <= 7
            got += [(int(d["accepted_at"].timestamp() * 1000), d["_id"]) for d in docs]
            if following is None:
                break
            position = following
        assert got == expected, flt


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_csv_cell_that_starts_like_a_formula_is_neutralised_in_every_column(start: str) -> None:
    """OWASP's rule for CSV injection: ClearML error text (user-controlled) included."""
    evil = f'{start}HYPERLINK("http://x")'
    entry = LogEntry.model_validate(
        {
            "request_id": evil,
            "path": "enqueue",
            "status": evil,
            "user": evil,
            "target": evil,
            "error": evil,
            "latency_ms": {},
        }
    )
    cells = next(csv.reader(io.StringIO(logcsv.lines([entry], header=False))))
    marked = [c for c in cells if c.endswith('HYPERLINK("http://x")')]
    assert len(marked) == 5
    assert all(c.startswith("'") for c in marked)
    assert logcsv.neutralised("plain text") == "plain text"


async def test_the_dashboard_reads_a_day_once_per_ttl_waits_only_past_its_bound() -> None:
    store: dict[str, _Collection] = {}
    writes = Writes()
    for days_ago in range(5):
        at = AT - timedelta(days=days_ago)
        effects(Fact("enqueue", f"r{days_ago}", "queued", at, counted=True), None, writes)
    _apply(store, writes)
    daily = store["view_requests_daily"]
    reads: list[str] = []
    find_one = daily.find_one
    gate = asyncio.Event()
    gate.set()

    async def counted(query: dict[str, str]) -> dict[str, Any] | None:
        reads.append(query["_id"])
        await gate.wait()
        return await find_one(query)

    daily.find_one = counted
    clock = [1000.0]
    reader = LogReader(store, clock=lambda: clock[0])  # type: ignore[arg-type]
    days = [f"2026-11-{d}" for d in range(20, 27)]  # 7 days, 5 with requests

    async def load() -> dict[str, Any]:
        async with asyncio.timeout(5):  # a load that waited for the (shut) store would hang
            return await reader.daily("enqueue", days, closed_before="2026-11-25")

    first = await load()
    assert sorted(first) == days[2:]
    assert len(reads) == 7  # the first load reads every day
    reads.clear()
    gate.clear()  # from here on, a read never ends until the gate opens
    clock[0] += logviews.LIVE_TTLS[0] - 0.5
    assert await load() == first
    assert reads == []  # within every TTL: memory only
    # Past the live TTL: today and yesterday are served as kept while one background read
    # renews them, a day at a time; two loads start one renewal, not two.
    clock[0] += 1
    assert await load() == first
    assert await load() == first
    await asyncio.sleep(0.01)
    assert reads == days_ids(days[5:6])  # the first day's read, waiting
    gate.set()
    await asyncio.sleep(0.01)
    assert reads == days_ids(days[5:])
    reads.clear()
    # Past the live bound and the closed TTL: today and yesterday are read now (a number is
    # never older than its bound), the closed days in the background.
    clock[0] += logviews.CLOSED_TTLS[0]
    assert await load() == first
    await asyncio.sleep(0.01)
    assert sorted(reads) == days_ids(days)
    reads.clear()
    assert await load() == first
    assert reads == []  # renewed: fresh again
    clock[0] += logviews.CLOSED_TTLS[1]  # past every bound: every day read now
    assert await load() == first
    assert len(reads) == 7


def count_reads(store: dict[str, _Collection]) -> list[str]:
    """The `_id`s the dashboard's daily documents are read by, in order, from now on."""
    reads: list[str] = []
    daily = store["view_requests_daily"]
    find_one = daily.find_one

    async def counted(query: dict[str, str]) -> dict[str, Any] | None:
        reads.append(query["_id"])
        return await find_one(query)

    daily.find_one = counted
    return reads


async def test_days_someone_watches_are_renewed_before_a_load_needs_them() -> None:
    store: dict[str, _Collection] = {}
    writes = Writes()
    effects(Fact("enqueue", "r1", "queued", AT, counted=True), None, writes)
    _apply(store, writes)
    reads = count_reads(store)
    clock = [1000.0]
    reader = LogReader(store, clock=lambda: clock[0])  # type: ignore[arg-type]
    days = [f"2026-11-{d}" for d in range(20, 27)]
    await reader.daily("enqueue", days, closed_before="2026-11-25")
    reads.clear()
    clock[0] += logviews.LIVE_TTLS[0]
    reader.renew()  # no load: today and yesterday are read again in the background
    await asyncio.sleep(0.01)
    assert sorted(reads) == days_ids(days[5:])
    reads.clear()
    clock[0] += 1  # three seconds after the last load: fresh, as renewed a second ago
    assert await reader.daily("enqueue", days, closed_before="2026-11-25")
    assert reads == []
    clock[0] += logviews.WATCHED_S  # nobody looked for that long: no more renewals
    reads.clear()
    reader.renew()
    await asyncio.sleep(0.01)
    assert reads == []


def days_ids(days: list[str]) -> list[str]:
    return [f"enqueue|{d}" for d in days]


async def test_warm_reads_every_closed_day_the_dashboard_can_show() -> None:
    store: dict[str, _Collection] = {}
    writes = Writes()
    effects(Fact("ondemand", "r1", "ok", AT - timedelta(days=9), counted=True), None, writes)
    _apply(store, writes)
    reader = LogReader(store, clock=lambda: 0.0)  # type: ignore[arg-type]
    await reader.warm(AT)
    reads = count_reads(store)
    days = [day_key(AT - timedelta(days=i)) for i in range(logviews.DASHBOARD_DAYS)]
    found = await reader.daily("ondemand", days, closed_before=day_key(AT - timedelta(days=1)))
    assert list(found) == [day_key(AT - timedelta(days=9))]
    assert reads == []  # every day the dashboard can show was read at the start


def test_a_status_left_later_in_the_same_batch_is_not_listed_under_it() -> None:
    """Two facts of one request folded in one batch (its raw log unreadable): the later status
    removes the entry the earlier one set in its status's bucket (the set was kept before, and
    the request listed under a status it had left; found comparing the two ways of reading)."""
    writes = Writes()
    effects(Fact("enqueue", "r1", "queued", AT, counted=True, user="u"), None, writes)
    effects(Fact("enqueue", "r1", "running", AT, user="u"), None, writes)
    queued = writes.updates[("view_log_index", f"enqueue|status|queued|{slot_key('status', AT)}")]
    assert "entries.r1" not in queued.sets
    assert queued.spec()["$unset"] == {"entries.r1": ""}


def test_without_buckets_a_fact_writes_its_view_with_the_keys_pages_sort_and_filter_on() -> None:
    writes = Writes()
    effects(Fact("ondemand", "r1", "ok", AT, counted=True), None, writes, buckets=False)
    assert not [key for key in writes.updates if key[0] == "view_log_index"]
    view = writes.replaces[("view_ondemand_logs", "r1")]
    assert view["at_ms"] == int(AT.timestamp() * 1000)
    assert (view["user"], view["target"], view["status"]) == ("-", "-", "ok")


def test_the_view_query_says_what_an_index_entry_match_says() -> None:
    since, until = AT - timedelta(hours=1), AT
    flt = LogFilter(("ondemand",), user="u", machine="m.1", since=since, until=until)
    at = int(AT.timestamp() * 1000)
    assert flt.view_query((at, "r9")) == {
        "$and": [
            {"user": "u"},
            {"target": {"$regex": "^m\\.1/"}},
            {"at_ms": {"$gte": at - 3_600_000}},
            {"at_ms": {"$lte": at}},
            {"$or": [{"at_ms": {"$lt": at}}, {"at_ms": at, "_id": {"$lt": "r9"}}]},
        ]
    }
    assert LogFilter(("enqueue",)).view_query(START) == {"at_ms": {"$lt": START[0]}}
