"""The topic registry: every topic declared once, with its key, partitions and payload model.

Topics are created from this registry at start-up (`runtime.kafka.ensure_topics`). A deployment
may prefix every name (`MLBUS_TOPIC_PREFIX`), which is also how each test gets its own topics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from schemas.base import Model
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


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, what keys it, how many partitions, what it carries, and which of
    mlbus's services write it and read it (checked against their code by
    tests/unit/test_dataflow.py; the README's "Data flow" table is written from them)."""

    name: str
    key: str
    partitions: int
    payload: type[Model]
    message_type: str
    version: int = 1
    compacted: bool = False
    retention_ms: int | None = None
    dlq: str = DLQ
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()

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
)
RESOURCE_STATE = TopicSpec(
    "mlbus.state.resources",
    "machine id",
    3,
    ResourceState,
    "ResourceState",
    compacted=True,
    producers=("monitor",),  # for readers outside mlbus: ingest reads the monitor's read model
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
)
NOTIFICATIONS = TopicSpec(
    "mlbus.notifications",
    "subject",
    3,
    Notification,
    "Notification",
    producers=("notifier", "enqueuer", "inference_router", "ingest"),
    consumers=("notifier", "ingest"),  # the notifier stores and sends; ingest streams (SSE)
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
)
LOGS = TopicSpec(
    "mlbus.logs",
    "request id",
    3,
    RequestLogged,
    "RequestLogged",
    producers=("enqueuer", "inference_router"),
    consumers=("logger",),
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

REGISTRY: tuple[TopicSpec, ...] = (
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

BY_TYPE: dict[str, TopicSpec] = {t.message_type: t for t in (*REGISTRY, REPLY_TEMPLATE)}


def reply_topic(instance: str) -> TopicSpec:
    """The reply topic of one ingest instance."""
    return dataclasses.replace(REPLY_TEMPLATE, name=REPLIES_PREFIX + instance)
