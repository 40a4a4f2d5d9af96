"""Who reads and who writes each topic of the registry: the other half of `schemas.topics`.

Kubernetes deployments give each service a Kafka user whose ACLs allow exactly these topics
(`python -m mlbus.k8s` writes them as Strimzi `KafkaUser`s). A service that starts reading or
writing a topic says so here, or the broker refuses it in a cluster with ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.topics import (
    DEAD_LETTERS,
    ENQUEUE_REQUESTS,
    HEARTBEATS,
    INFERENCE_REQUESTS,
    LOGS,
    NOTIFICATIONS,
    NOTIFIER_STATE,
    QUEUE_STATE,
    REPLIES_PREFIX,
    RESOURCE_STATE,
    TASK_EVENTS,
    TopicSpec,
)


@dataclass(frozen=True)
class ServiceAccess:
    """One service's use of the bus."""

    reads: tuple[TopicSpec, ...] = ()
    writes: tuple[TopicSpec, ...] = ()
    #: Consumer groups it joins, by prefix (`mlbus-logger` covers `mlbus-logger-logs`, ...).
    group_prefix: str | None = None
    #: Reply topics (`mlbus.replies.<instance>`): ingest creates and reads its own, the router
    #: writes to the one a request names.
    replies: str = ""  # "", "own" (create, read) or "write"


ACCESS: dict[str, ServiceAccess] = {
    "ingest": ServiceAccess(
        reads=(NOTIFICATIONS,),
        writes=(ENQUEUE_REQUESTS, INFERENCE_REQUESTS, NOTIFICATIONS),
        replies="own",
    ),
    "enqueuer": ServiceAccess(
        reads=(ENQUEUE_REQUESTS,),
        writes=(TASK_EVENTS, LOGS, DEAD_LETTERS),
        group_prefix="mlbus-enqueuer",
    ),
    "inference-router": ServiceAccess(
        reads=(INFERENCE_REQUESTS,),
        writes=(NOTIFICATIONS, LOGS, DEAD_LETTERS),
        group_prefix="mlbus-inference-router",
        replies="write",
    ),
    "monitor": ServiceAccess(
        reads=(HEARTBEATS, TASK_EVENTS),
        writes=(TASK_EVENTS, RESOURCE_STATE, QUEUE_STATE, DEAD_LETTERS),
        group_prefix="mlbus-monitor",
    ),
    "notifier": ServiceAccess(
        reads=(HEARTBEATS, QUEUE_STATE, TASK_EVENTS, NOTIFICATIONS, NOTIFIER_STATE),
        writes=(NOTIFICATIONS, NOTIFIER_STATE, DEAD_LETTERS),
        group_prefix="mlbus-notifier",
    ),
    "logger": ServiceAccess(
        reads=(LOGS, TASK_EVENTS),
        writes=(DEAD_LETTERS,),
        group_prefix="mlbus-logger",
    ),
    "agent": ServiceAccess(writes=(HEARTBEATS,)),
}

__all__ = ["ACCESS", "REPLIES_PREFIX", "ServiceAccess"]
