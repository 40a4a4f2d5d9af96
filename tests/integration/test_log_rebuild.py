"""`mlbus logs rebuild` against real Kafka and FerretDB: read models the logger folded, then
damaged, come back identical from the raw logs, and a message the rebuild folded is a
redelivery to the logger afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.base import Model, utcnow
from schemas.logs import RequestLogged
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import LOGS, TASK_EVENTS, TopicSpec
from services.ingest.logquery import LogFilter
from services.ingest.logviews import LogReader
from services.logger.app import run as run_logger
from services.logger.rebuild import rebuild
from services.logger.settings import LoggerSettings
from services.logger.store import ViewStore
from tests.conftest import Bus
from tests.fixtures import running_worker
from tests.integration.test_logger import folds, publish
from tests.support import eventually

TASK, MACHINE = "a" * 32, "b" * 32
USERS = ("alice", "bob|x")  # a `|` in a user name must not confuse the index keys
BOTH = ("enqueue", "ondemand")
#: Read whole: the view documents and the counters.
WHOLE = (
    "view_enqueue_logs",
    "view_ondemand_logs",
    "view_requests_hourly",
    "view_requests_daily",
    "view_usage_by_user",
)


def filters() -> dict[str, LogFilter]:
    day_ago = utcnow() - timedelta(hours=20)  # the logs are 2.5 hours apart: no row near it
    return {
        "all": LogFilter(paths=BOTH),
        "user": LogFilter(paths=BOTH, user="alice"),
        "user + status": LogFilter(paths=BOTH, user="alice", status="failed"),
        "user + status, since": LogFilter(paths=BOTH, user="alice", status="failed", since=day_ago),
        "odd user + status": LogFilter(paths=("ondemand",), user="bob|x", status="ok"),
        "odd user + stopped": LogFilter(paths=("enqueue",), user="bob|x", status="stopped"),
        "status": LogFilter(paths=("enqueue",), status="running"),
        "target": LogFilter(paths=("ondemand",), target=f"{MACHINE}/parking"),
    }


def settings_of(bus: Bus) -> LoggerSettings:
    return LoggerSettings(
        **bus.settings(),
        instance="logger-rebuild-test",
        group=f"mlbus-logger-{bus.mongo_db}",
        retry_attempts=3,
        retry_cap_s=0.2,
    )


def _history(accepted: Any, *statuses: str) -> list[dict[str, Any]]:
    return [{"status": s, "at": accepted + timedelta(seconds=i)} for i, s in enumerate(statuses)]


async def _write_raw_logs(db: Any) -> list[tuple[TopicSpec, Model]]:
    """Raw logs over two days, and the messages the logger is sent for them."""
    now = utcnow()
    messages: list[tuple[TopicSpec, Model]] = []
    enqueue, calls = [], []
    for i in range(18):
        user, accepted = USERS[i % 2], now - timedelta(hours=2.5 * i, minutes=i)
        rid = f"{i:032x}"
        end = ("completed", "running", "failed", "queued", "enqueue_failed", "stopped")[i % 6]
        steps = {
            "enqueue_failed": ["accepted", "failed"],
            "queued": ["accepted", "cloned", "queued"],
            "running": ["accepted", "cloned", "queued", "running"],
        }.get(end, ["accepted", "cloned", "queued", "running", end])
        enqueue.append(
            {
                "_id": rid,
                "user": user,
                "task_id": TASK,
                "queue": "gpu-a100",
                "status": steps[-1],
                "accepted_at": accepted,
                "latency_ms": {} if end == "enqueue_failed" else {"total": 30.0 + i},
                "history": _history(accepted, *steps),
            }
        )
        first = "failed" if end == "enqueue_failed" else "queued"
        messages.append(
            (
                LOGS,
                RequestLogged(
                    request_id=rid,
                    path="enqueue",
                    status=first,
                    user=user,
                    target=TASK,
                    latency_ms=1000.0,  # the failure's latency: its history's second step
                    accepted_at=accepted,
                ),
            )
        )
        kinds = {
            "running": TaskEventKind.STARTED,
            "completed": TaskEventKind.COMPLETED,
            "failed": TaskEventKind.FAILED,
            "stopped": TaskEventKind.STOPPED,
        }
        for status in steps[3:]:
            event = TaskEvent(kind=kinds[status], request_id=rid, user=user, task_id=TASK)
            messages.append((TASK_EVENTS, event))
        call = f"{100 + i:032x}"
        status = ("ok", "ok", "failed", "timeout")[i % 4]
        endpoint = "parking" if i % 3 else "traffic"
        calls.append(
            {
                "_id": call,
                "user": user,
                "machine_id": MACHINE,
                "endpoint": endpoint,
                "status": status,
                "http_status": 200 if status == "ok" else 502,
                "created_at": accepted,
                "finished_at": accepted + timedelta(milliseconds=20),
                "latency_ms": {"total": 20.0},
            }
        )
        logged = RequestLogged(
            request_id=call,
            path="ondemand",
            status=status,
            user=user,
            target=f"{MACHINE}/{endpoint}",
            latency_ms=20.0,
            accepted_at=accepted,
        )
        messages.append((LOGS, logged))
    await db["enqueue_logs"].insert_many(enqueue)
    await db["ondemand_logs"].insert_many(calls)
    return messages


async def _pages(db: Any) -> dict[str, Any]:
    """Every filter's rows, page by page (3 rows a page, followed to the end), the view
    documents and the counters."""
    reader, out = LogReader(db), {}
    for name, flt in filters().items():
        pages, position = [], flt.start()
        while True:
            docs, following = await reader.page(flt, position, 3)
            pages.append([d["_id"] for d in docs])
            out[f"{name}: rows"] = [*out.get(f"{name}: rows", []), *docs]
            if following is None:
                break
            position = following
        out[f"{name}: pages"] = pages
    for name in WHOLE:
        out[name] = await db[name].find().sort("_id").to_list()
    return out


async def test_a_rebuild_brings_back_identical_pages_from_the_raw_logs(
    bus: Bus, mongo_db: Any
) -> None:
    settings = settings_of(bus)
    messages = await _write_raw_logs(mongo_db)
    producer = AIOKafkaProducer(bootstrap_servers=bus.kafka_bootstrap)
    await producer.start()
    try:
        async with running_worker(run_logger, settings):
            for spec, payload in messages:
                await publish(producer, bus, spec, payload)

            async def all_folded() -> bool:
                folded = await mongo_db["logger_folds"].count_documents({"done": True})
                return bool(folded == 57)  # 18 decided, 12 running, 9 ended; 18 calls

            await eventually(all_folded, what="every fact folded")
        before = await _pages(mongo_db)
        # alice: 6 enqueue requests failed (3 runs, 3 enqueues), 4 calls; bob|x: 5 calls ok
        assert len(before["user + status: rows"]) == 10
        assert {r["status"] for r in before["user + status: rows"]} == {"failed"}
        assert len(before["user + status, since: rows"]) == 4  # i = 2, 4 (enqueue), 2, 6
        assert len(before["odd user + status: rows"]) == 5
        assert len(before["odd user + stopped: rows"]) == 3

        await mongo_db["view_log_index"].drop()
        await mongo_db["view_requests_daily"].delete_many({})
        await mongo_db["view_enqueue_logs"].update_many({}, {"$set": {"status": "garbage"}})
        damaged = await _pages(mongo_db)
        assert damaged["all: rows"] == []  # no index: no page

        progress: list[tuple[int, int]] = []
        done = await rebuild(
            ViewStore(mongo_db), batch=5, progress=lambda n, t: progress.append((n, t))
        )
        assert done.logs == {"enqueue": 18, "ondemand": 18}
        assert (done.facts, done.without_facts) == (57, 0)
        assert progress[-1] == (36, 36)
        assert len(progress) == 8  # four batches of at most 5 per path
        assert await _pages(mongo_db) == before

        # The claims came back: a message the rebuild folded is a redelivery; a new one folds.
        duplicates = folds("duplicate")
        async with running_worker(run_logger, settings):
            await publish(producer, bus, *messages[0])
            new = RequestLogged(
                request_id="f" * 32,
                path="ondemand",
                status="ok",
                user="carol",
                target=f"{MACHINE}/parking",
                latency_ms=5.0,
                accepted_at=utcnow(),
            )
            await mongo_db["ondemand_logs"].insert_one(
                {"_id": "f" * 32, "user": "carol", "status": "ok", "created_at": new.accepted_at}
            )
            await publish(producer, bus, LOGS, new)
            await eventually(
                lambda: mongo_db["view_ondemand_logs"].find_one({"_id": "f" * 32}),
                what="the new call folded",
            )

            async def redelivery_seen() -> bool:
                return folds("duplicate") > duplicates

            await eventually(redelivery_seen, what="the old message seen as a redelivery")
        after = await _pages(mongo_db)
        assert after["user: rows"] == before["user: rows"]
        enqueue = [d for d in after["view_requests_daily"] if d["path"] == "enqueue"]
        assert enqueue == [d for d in before["view_requests_daily"] if d["path"] == "enqueue"]
        calls = [d["count"] for d in after["view_requests_daily"] if d["path"] == "ondemand"]
        assert sum(calls) == 19  # the redelivered message counted once, the new one once
    finally:
        await producer.stop()
