"""The topic registry: every topic declared once, with its key, partitions and payload model.

Topics are created from this registry at start-up (`runtime.kafka.ensure_topics`). A deployment
may prefix every name (`MLBUS_TOPIC_PREFIX`), which is also how each test gets its own topics.
"""

from __future__ import annotations

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
    """One topic: its name, what keys it, how many partitions, what it carries."""

    name: str
    key: str
    partitions: int
    payload: type[Model]
    message_type: str
    version: int = 1
    compacted: bool = False
    retention_ms: int | None = None
    dlq: str = DLQ

    def named(self, prefix: str) -> str:
        """The topic's name under a deployment prefix."""
        return f"{prefix}{self.name}"


ENQUEUE_REQUESTS = TopicSpec("mlbus.requests.enqueue", "request id", 6, EnqueueTask, "EnqueueTask")
INFERENCE_REQUESTS = TopicSpec(
    "mlbus.requests.inference", "request id", 6, InferenceRequested, "InferenceRequested"
)
TASK_EVENTS = TopicSpec("mlbus.events.task", "request id", 3, TaskEvent, "TaskEvent")
HEARTBEATS = TopicSpec(
    "mlbus.heartbeats",
    "machine id",
    6,
    AgentHeartbeat,
    "AgentHeartbeat",
    retention_ms=3_600_000,
)
RESOURCE_STATE = TopicSpec(
    "mlbus.state.resources", "machine id", 3, ResourceState, "ResourceState", compacted=True
)
QUEUE_STATE = TopicSpec(
    "mlbus.state.queues", "queue id", 3, QueueState, "QueueState", compacted=True
)
NOTIFICATIONS = TopicSpec("mlbus.notifications", "subject", 3, Notification, "Notification")
NOTIFIER_STATE = TopicSpec(
    "mlbus.state.notifier", "state key", 1, NotifierState, "NotifierState", compacted=True
)
LOGS = TopicSpec("mlbus.logs", "request id", 3, RequestLogged, "RequestLogged")
DEAD_LETTERS = TopicSpec(DLQ, "original key", 1, DeadLetter, "DeadLetter", dlq="")

#: Reply topics are per ingest instance: `mlbus.replies.<instance>` (one partition each).
REPLIES_PREFIX = "mlbus.replies."
REPLY_TEMPLATE = TopicSpec(
    REPLIES_PREFIX + "{instance}",
    "request id",
    1,
    InferenceReplied,
    "InferenceReplied",
    retention_ms=600_000,
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
    return TopicSpec(
        REPLIES_PREFIX + instance,
        REPLY_TEMPLATE.key,
        1,
        InferenceReplied,
        REPLY_TEMPLATE.message_type,
        retention_ms=REPLY_TEMPLATE.retention_ms,
    )
