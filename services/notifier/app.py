"""Wiring of the notifier: its state read back from the state topic, one consumer loop per input
topic, the timer, the store and one consumer loop per webhook.

Why this shape: the rules (heartbeats, queue state, task events and the timer), the MongoDB
writer and each webhook consume in consumer groups of their own, so a slow or dead webhook holds
up only its own offsets, never the store or the rules; each still commits only after its effect
is durable, and dead-letters what fails for good.

Why a state topic of our own and not faust-streaming's tables: measured and explained in
`statelog.py`.

Many copies: one is active, the others stand by (runtime/leader.py: whoever holds partition 0
of `mlbus.notifier.leader`). A standby follows the state topic (`StateTail`); taking over, it
reads the rest of it, reads back the notifications published in the last
`takeover_lookback_s` (not told again: the copy before may have published and died before its
outbox record or its offsets said so), and only then consumes, from the offsets committed. Its
inputs are assigned whole (no group membership to wait for), so a takeover waits for no
session of the dead copy but the election's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from runtime.consumer import LoopConfig
from runtime.leader import Leadership
from runtime.lifecycle import run_together
from runtime.mongo import database, mongo_on
from runtime.retry import RetryPolicy
from runtime.worker import Worker, prepare
from schemas.base import utcnow
from schemas.topics import (
    HEARTBEATS,
    NOTIFICATIONS,
    NOTIFIER_STATE,
    QUEUE_STATE,
    TASK_EVENTS,
)
from services.notifier.alerts import Grouping
from services.notifier.bus import NotificationPublisher, told_since
from services.notifier.engine import Engine
from services.notifier.handlers import (
    HeartbeatHandler,
    QueueStateHandler,
    StoreHandler,
    TaskEventHandler,
    WebhookHandler,
)
from services.notifier.machines import MachineLimits
from services.notifier.queues import QueueLimits
from services.notifier.settings import NotifierSettings, Webhook
from services.notifier.state import Memory
from services.notifier.statelog import Record, StateLog, StateTail, read_all
from services.notifier.store import NotificationStore
from services.notifier.webhooks import WebhookClient, open_client

SERVICE = "notifier"
log = logging.getLogger(__name__)


def memory_for(settings: NotifierSettings) -> Memory:
    """An empty memory with the settings' thresholds and windows."""
    s = settings
    return Memory(
        Grouping(s.group_wait_s, s.group_max_wait_s, s.group_max_size, s.repeat_interval_s),
        MachineLimits(
            s.missed_heartbeats,
            s.heartbeat_max_age_s,
            s.gpu_busy_pct,
            s.gpu_busy_for_s,
            s.gpu_memory_pct,
            s.gpu_temperature_c,
        ),
        QueueLimits(s.queue_max_length, s.queue_max_wait_s),
        utcnow(),
    )


async def run(settings: NotifierSettings, stop: asyncio.Event) -> None:
    """Watch the cluster and deliver notifications until `stop` is set: as the active copy or a
    standby when `elect` is on (the default), else alone."""
    await prepare(settings)
    if not settings.elect:
        await active(settings, stop)
        return
    tail = StateTail(settings)

    async def take_over(term: asyncio.Event) -> None:
        started = time.perf_counter()
        records = await tail.to_end()
        told = await told_since(settings, settings.takeover_lookback_s)
        log.info(
            "taking over: state and %d recent notifications read in %.2f s",
            len(told),
            time.perf_counter() - started,
        )
        await active(settings, term, records=records, told=told)

    leadership = Leadership(settings, SERVICE, take_over)
    await run_together({"leadership": leadership.run(stop), "state-tail": tail.run(stop)}, stop)


def worker(settings: NotifierSettings) -> Worker:
    """The notifier's publishers (notifications, its state records), declared first: the engine
    they serve is restored, and may publish, before any input is read (`subscribe`)."""
    worker = Worker(SERVICE, settings)
    worker.publisher(NOTIFICATIONS)
    worker.publisher(NOTIFIER_STATE)
    return worker


def subscribe(
    worker: Worker,
    settings: NotifierSettings,
    *,
    engine: Engine,
    publish: NotificationPublisher,
    store: NotificationStore,
    webhooks: Sequence[tuple[Webhook, WebhookClient]],
) -> None:
    """The notifier's inputs: the rules' three, the store, and one per webhook (each its own
    consumer group, so a slow webhook holds up only its own offsets)."""
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Elected: the one active copy reads every partition, committing for the group.
    assign_all = settings.elect
    config = LoopConfig(retry=retry)
    group = settings.group
    # one call each, so that mypy checks each handler against its topic's payload
    worker.subscribe(
        HEARTBEATS,
        HeartbeatHandler(engine),
        group=f"{group}-heartbeats",
        name="heartbeats",
        config=config,
        assign_all=assign_all,
    )
    worker.subscribe(
        QUEUE_STATE,
        QueueStateHandler(engine),
        group=f"{group}-queues",
        name="queues",
        config=config,
        assign_all=assign_all,
    )
    worker.subscribe(
        TASK_EVENTS,
        TaskEventHandler(publish),
        group=f"{group}-tasks",
        name="tasks",
        config=config,
        assign_all=assign_all,
    )
    worker.subscribe(
        NOTIFICATIONS,
        StoreHandler(store),
        group=f"{group}-store",
        name="store",
        config=config,
        assign_all=assign_all,
    )
    for webhook, client in webhooks:
        name = f"webhook-{webhook.label}"
        taken = {s.name for s in worker.subscriptions} | {"timer"}
        worker.subscribe(
            NOTIFICATIONS,
            WebhookHandler(webhook, client, settings.webhook_max_age_s),
            group=f"{group}-{name}",
            name=name if name not in taken else f"{name}-{len(taken)}",
            config=LoopConfig(
                concurrency=settings.webhook_concurrency,
                retry=RetryPolicy(
                    attempts=settings.webhook_attempts, cap_s=settings.webhook_retry_cap_s
                ),
            ),
            # a webhook that dead-letters everything stops its own loop loudly, not the
            # notifier: the rules, the store and the other webhooks go on
            isolated=True,
            assign_all=assign_all,
        )


async def active(
    settings: NotifierSettings,
    stop: asyncio.Event,
    *,
    records: list[Record] | None = None,
    told: set[str] | None = None,
) -> None:
    """The active notifier, until `stop` is set: `records` is the state topic when already read
    (a takeover), `told` the notifications not to publish again."""
    retry = RetryPolicy(attempts=settings.retry_attempts, cap_s=settings.retry_cap_s)
    # Close order is the reverse of opening: every loop and the timer have returned (their last
    # batch committed, the last tick's records written) before the consumers leave their
    # groups, the producer flushes and the clients close.
    async with contextlib.AsyncExitStack() as stack:
        mongo = mongo_on(stack, settings)
        notifier = worker(settings)
        await notifier.start(stack)
        store = NotificationStore(database(mongo, settings))
        await retry.run(store.ensure_indexes, "index on notifications")
        publish = NotificationPublisher(notifier.publisher(NOTIFICATIONS), told)
        state_log = StateLog(notifier.publisher(NOTIFIER_STATE))
        engine = await _restored(settings, state_log, publish, retry, records)
        webhooks = [(w, WebhookClient(w, open_client(stack, settings))) for w in settings.webhooks]
        subscribe(
            notifier, settings, engine=engine, publish=publish, store=store, webhooks=webhooks
        )
        log.info("notifier running: %d webhooks", len(settings.webhooks))
        await notifier.run(stop, also={"timer": engine.run(stop, settings.tick_s)})


async def _restored(
    settings: NotifierSettings,
    state_log: StateLog,
    publish: NotificationPublisher,
    retry: RetryPolicy,
    records: list[Record] | None = None,
) -> Engine:
    """The engine with the state topic read back (or `records`, read already), and the outbox
    it left published."""
    started = time.perf_counter()
    engine = Engine(memory_for(settings), state_log.write, publish)
    count = engine.restore(records if records is not None else await read_all(settings))
    leftover = len(engine.memory.outbox)
    await retry.run(engine.send_outbox, "notifications left in the outbox")
    log.info(
        "state read back in %.2f s: %d records, %d machines, %d alerts, %d left to publish",
        time.perf_counter() - started,
        count,
        len(engine.memory.machines.machines),
        len(engine.memory.book.alerts),
        leftover,
    )
    return engine
