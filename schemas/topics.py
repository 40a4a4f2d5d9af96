"""The topic registry: every topic declared once, with its key, partitions and payload model.

Topics are created from this registry at start-up (`runtime.kafka.ensure_topics`). A deployment
may prefix every name (`MLBUS_TOPIC_PREFIX`), which is also how each test gets its own topics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from schemas.base import Envelope, Model
from schemas.dlq import DeadLetter
from schemas.enqueue import EnqueueTask
from schemas.heartbeat import AgentHeartbeat
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.logs import RequestLogged
from schemas.notifications import Notification
from schemas.notifier_state import NotifierState
from schemas.resources import QueueState, ResourceState
from schemas.tasks import TaskEvent

DLQ = "mlbus.dlq"

#: A topic's payload model. Covariant: a `TopicSpec[EnqueueTask]` is a `TopicSpec[Model]` (the
#: registry holds them all), while a handler's `Envelope[P]` pins P exactly (runtime.worker).
P_co = TypeVar("P_co", bound=Model, covariant=True, default=Model)


def by_request_id(envelope: Envelope[Any]) -> str:
    """The key of a request topic: the envelope's id (the request id lives on the envelope,
    not in the payload, so key functions read the envelope)."""
    return envelope.id


@dataclass(frozen=True)
class TopicSpec(Generic[P_co]):
    """One topic: its name, what keys it, how many partitions, what it carries, and which of
    mlbus's services write it and read it (checked against their code by
    tests/unit/test_dataflow.py; the README's "Data flow" table is written from them).

    `key` says in words what keys it (for the docs); `key_of` computes it from an envelope, and
    the publishers of `runtime.worker` key every message with it. None: the key is not in the
    message (a compacted state topic's records name theirs, tombstones carry none)."""

    name: str
    key: str
    partitions: int
    payload: type[P_co]
    message_type: str
    version: int = 1
    compacted: bool = False
    retention_ms: int | None = None
    dlq: str = DLQ
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    key_of: Callable[[Envelope[P_co]], str | None] | None = by_request_id

    def named(self, prefix: str) -> str:
        """The topic's name under a deployment prefix."""
        return f"{prefix}{self.name}"


ENQUEUE_REQUESTS = TopicSpec(
    "mlbus.requests.enqueue",
    "request id",
    6,
    EnqueueTask,
    "EnqueueTask",
    producers=("ingest",),
    consumers=("enqueuer",),
)
INFERENCE_REQUESTS = TopicSpec(
    "mlbus.requests.inference",
    "request id",
    6,
    InferenceRequested,
    "InferenceRequested",
    producers=("ingest",),
    consumers=("inference_router",),
)
TASK_EVENTS = TopicSpec(
    "mlbus.events.task",
    "request id",
    3,
    TaskEvent,
    "TaskEvent",
    producers=("enqueuer", "monitor"),
    consumers=("monitor", "logger", "notifier"),  # the monitor's partitions share its requests
    key_of=lambda e: e.payload.request_id,
)
HEARTBEATS = TopicSpec(
    "mlbus.heartbeats",
    "machine id",
    6,
    AgentHeartbeat,
    "AgentHeartbeat",
    retention_ms=3_600_000,
    producers=("agent",),
    consumers=("monitor", "notifier"),
    key_of=lambda e: e.payload.machine_id,
)
RESOURCE_STATE = TopicSpec(
    "mlbus.state.resources",
    "machine id",
    3,
    ResourceState,
    "ResourceState",
    compacted=True,
    producers=("monitor",),  # for readers outside mlbus: ingest reads the monitor's read model
    key_of=lambda e: e.payload.machine_id,
)
QUEUE_STATE = TopicSpec(
    "mlbus.state.queues",
    "queue id",
    3,
    QueueState,
    "QueueState",
    compacted=True,
    producers=("monitor",),
    consumers=("notifier",),
    key_of=lambda e: e.payload.queue_id,
)
NOTIFICATIONS = TopicSpec(
    "mlbus.notifications",
    "subject",
    3,
    Notification,
    "Notification",
    producers=("notifier", "enqueuer", "inference_router", "ingest"),
    consumers=("notifier", "ingest"),  # the notifier stores and sends; ingest streams (SSE)
    key_of=lambda e: e.payload.subject,
)
NOTIFIER_STATE = TopicSpec(
    "mlbus.state.notifier",
    "state key",
    1,
    NotifierState,
    "NotifierState",
    compacted=True,
    producers=("notifier",),
    consumers=("notifier",),
    key_of=None,  # each record names its state key; a tombstone has no envelope
)
LOGS = TopicSpec(
    "mlbus.logs",
    "request id",
    3,
    RequestLogged,
    "RequestLogged",
    producers=("enqueuer", "inference_router"),
    consumers=("logger",),
    key_of=lambda e: e.payload.request_id,
)
DEAD_LETTERS = TopicSpec(
    DLQ,
    "original key",
    1,
    DeadLetter,
    "DeadLetter",
    dlq="",
    producers=("enqueuer", "monitor", "inference_router", "notifier", "logger"),
    consumers=("mlbus dlq",),  # a person: show, replay
    key_of=lambda e: e.payload.key,
)

#: Reply topics are per ingest instance: `mlbus.replies.<instance>` (one partition each).
REPLIES_PREFIX = "mlbus.replies."
REPLY_TEMPLATE = TopicSpec(
    REPLIES_PREFIX + "{instance}",
    "request id",
    1,
    InferenceReplied,
    "InferenceReplied",
    retention_ms=600_000,
    producers=("inference_router",),
    consumers=("ingest",),
)

REGISTRY: tuple[TopicSpec[Model], ...] = (
    ENQUEUE_REQUESTS,
    INFERENCE_REQUESTS,
    TASK_EVENTS,
    HEARTBEATS,
    RESOURCE_STATE,
    QUEUE_STATE,
    NOTIFICATIONS,
    NOTIFIER_STATE,
    LOGS,
    DEAD_LETTERS,
)

BY_TYPE: dict[str, TopicSpec[Model]] = {t.message_type: t for t in (*REGISTRY, REPLY_TEMPLATE)}


def reply_topic(instance: str) -> TopicSpec[InferenceReplied]:
    """The reply topic of one ingest instance."""
    return dataclasses.replace(REPLY_TEMPLATE, name=REPLIES_PREFIX + instance)
