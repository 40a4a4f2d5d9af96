"""The worker layer (runtime/worker.py) on the in-memory broker (runtime/membroker.py): the
real consumer loops, the codec both ways, keys from the topics' key functions, order by key,
failure hook and dead letter; and mypy refusing a handler of another topic's payload."""

from __future__ import annotations

import asyncio
import random
import textwrap
import time
from pathlib import Path

import pytest
from mypy import api as mypy_api

from runtime.consumer import ConsumerHalted, LoopConfig
from runtime.membroker import MemBroker
from runtime.retry import PermanentError, RetryPolicy
from runtime.settings import BusSettings
from runtime.worker import NotStarted, Worker
from schemas.base import Envelope
from schemas.notifications import AlertStatus, Notification, Severity
from schemas.tasks import TaskEvent, TaskEventKind
from schemas.topics import NOTIFICATIONS, TASK_EVENTS

ROOT = Path(__file__).resolve().parents[2]
NO_RETRY = LoopConfig(retry=RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0))


def event(rid: str, kind: TaskEventKind = TaskEventKind.STARTED, message: str = "") -> TaskEvent:
    return TaskEvent(
        kind=kind, request_id=rid, task_id="ab" * 16, queue_name="gpu", message=message or None
    )


def settings() -> BusSettings:
    return BusSettings(topic_prefix="", metrics_port=0)


async def test_messages_of_one_key_are_handled_in_order_and_keys_run_concurrently() -> None:
    seen: dict[str, list[str]] = {}
    at_once = [0, 0]  # now, most

    async def handler(env: Envelope[TaskEvent]) -> None:
        at_once[0] += 1
        at_once[1] = max(at_once)
        await asyncio.sleep(random.uniform(0, 0.005))
        seen.setdefault(env.payload.request_id, []).append(env.payload.message or "")
        at_once[0] -= 1

    worker = Worker("test", settings())
    worker.subscribe(TASK_EVENTS, handler, group="g")
    broker = MemBroker()
    async with broker.running(worker):
        for n in range(10):
            for rid in ("request-a", "request-b", "request-c", "request-d"):
                await broker.publish(TASK_EVENTS, event(rid, message=str(n)), id=rid)
        await broker.settled()
    assert seen == {
        rid: [str(n) for n in range(10)]
        for rid in ("request-a", "request-b", "request-c", "request-d")
    }
    assert at_once[1] > 1


async def test_a_message_that_does_not_decode_or_fails_reaches_the_hook_and_the_dead_letters() -> (
    None
):
    failed: list[tuple[str, str]] = []
    handled: list[str] = []

    async def handler(env: Envelope[TaskEvent]) -> None:
        if env.payload.message == "poison":
            raise PermanentError("no such task")
        handled.append(env.id)

    async def on_failure(env: Envelope[TaskEvent], exc: Exception) -> None:
        failed.append((env.id, type(exc).__name__))

    worker = Worker("test", settings())
    worker.subscribe(TASK_EVENTS, handler, group="g", on_failure=on_failure, config=NO_RETRY)
    broker = MemBroker()
    async with broker.running(worker):
        await broker.publish_raw(TASK_EVENTS, b'{"id": "request-bad", "payload"', b"request-bad")
        await broker.publish(TASK_EVENTS, event("request-1", message="poison"), id="request-1")
        await broker.publish(TASK_EVENTS, event("request-2"), id="request-2")
        await broker.settled()
    assert handled == ["request-2"]  # the loop went on past both
    assert sorted(failed) == [("request-1", "PermanentError"), ("request-bad", "SchemaError")]
    letters = broker.dead_letters()
    assert sorted((d.key, d.error_class) for d in letters) == [
        ("request-1", "PermanentError"),
        ("request-bad", "SchemaError"),
    ]
    assert all(d.consumer_group == "g" for d in letters)


async def test_publishers_key_by_the_topics_key_function_and_a_worker_reads_its_own_output() -> (
    None
):
    worker = Worker("test", settings())
    notices = worker.publisher(NOTIFICATIONS)
    stored: list[str] = []

    async def on_event(env: Envelope[TaskEvent]) -> None:
        note = Notification(
            kind="task_started",
            severity=Severity.INFO,
            status=AlertStatus.FIRING,
            subject=f"task/{env.payload.request_id}",
            fingerprint=f"task_started:{env.payload.request_id}",
            message="started",
        )
        await notices.send(note, id=f"note-{env.id}")

    async def store(env: Envelope[Notification]) -> None:
        stored.append(env.id)

    worker.subscribe(TASK_EVENTS, on_event, group="rules")
    worker.subscribe(NOTIFICATIONS, store, group="store")
    broker = MemBroker()
    with pytest.raises(NotStarted):
        await notices.send(Notification.model_validate(_note_fields()))
    async with broker.running(worker):
        await broker.publish(TASK_EVENTS, event("request-1"), id="request-1")
        await broker.settled()
    [record] = broker.records(NOTIFICATIONS)
    assert record.key == b"task/request-1"  # NOTIFICATIONS.key_of: the subject
    assert [r.key for r in broker.records(TASK_EVENTS)] == [b"request-1"]
    assert stored == ["note-request-1"]


def _note_fields() -> dict[str, str]:
    return {
        "kind": "k",
        "severity": "info",
        "status": "firing",
        "subject": "s",
        "fingerprint": "f",
        "message": "m",
    }


def test_mypy_refuses_a_handler_of_another_topics_payload(tmp_path: Path) -> None:
    """The check a worker's wiring gets from mypy strict: TASK_EVENTS carries TaskEvent, so a
    handler of Notification is an error, as is publishing a Notification on TASK_EVENTS; the
    right ones pass. (Make `subscribe` take `Callable[[Envelope[Any]], ...]` and it fails.)"""
    source = textwrap.dedent(
        """
        from runtime.settings import BusSettings
        from runtime.worker import Worker
        from schemas.base import Envelope
        from schemas.notifications import Notification
        from schemas.tasks import TaskEvent
        from schemas.topics import TASK_EVENTS

        async def on_event(env: Envelope[TaskEvent]) -> None: ...
        async def on_note(env: Envelope[Notification]) -> None: ...

        async def wire(note: Notification) -> None:
            worker = Worker("w", BusSettings())
            worker.subscribe(TASK_EVENTS, on_event, group="g")
            worker.subscribe(TASK_EVENTS, on_note, group="g")  # line 15
            await worker.publisher(TASK_EVENTS).send(note)  # line 16
        """
    )
    path = tmp_path / "wiring.py"
    path.write_text(source)
    out, _, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(path),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out
    assert [e.split(":")[1] for e in errors] == ["15", "16"], out
    assert all("incompatible type" in e for e in errors), out


async def test_too_many_dead_letters_stop_the_worker_loudly_and_the_test_sees_why() -> None:
    async def handler(env: Envelope[TaskEvent]) -> None:
        raise AssertionError("never reached: nothing decodes")

    worker = Worker("test", settings())
    worker.subscribe(
        TASK_EVENTS,
        handler,
        group="g",
        config=LoopConfig(max_consecutive_dead=2, retry=NO_RETRY.retry),
    )
    broker = MemBroker()

    async def feed() -> None:
        async with broker.running(worker):
            for _ in range(3):
                await broker.publish_raw(TASK_EVENTS, b"junk", b"one-key")
            await broker.settled(timeout_s=20)  # raises at once: the worker stopped

    started = time.monotonic()
    with pytest.raises(ConsumerHalted, match="2 dead letters in a row"):
        await feed()
    assert time.monotonic() - started < 10  # not the settling deadline
    assert len(broker.dead_letters()) == 2  # the third was never taken off the partition
