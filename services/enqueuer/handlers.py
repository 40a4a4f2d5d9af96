"""Handling one EnqueueTask: clone, set parameters, enqueue; exactly one clone per request id.

The request is first claimed in MongoDB (atomically, telling whether an earlier delivery got
there). Only a redelivery looks for an earlier clone: recorded in MongoDB, else found in ClearML
by its tag; the handler resumes from the step it had reached. A message delivered twice, or a
worker killed between steps, therefore never makes a second clone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from typing import Any

from aiokafka.errors import KafkaError

from runtime.clearml import ClearMLRejected, ClearMLUnauthorized
from runtime.logbus import LogBus
from runtime.retry import PermanentError
from runtime.worker import Publisher
from schemas.base import Envelope, JSONValue, utcnow
from schemas.codec import SchemaError
from schemas.enqueue import EnqueueTask
from schemas.logs import RequestLogged
from schemas.notifications import AlertStatus, Notification, Severity
from schemas.status import SETTLED
from schemas.tasks import TaskEvent, TaskEventKind
from services.enqueuer.clearml import ClearML
from services.enqueuer.errors import PublishFailed
from services.enqueuer.params import to_hyperparams
from services.enqueuer.store import EnqueueLogStore

log = logging.getLogger(__name__)
REQUEST_TAG = "mlbus-request:"
INVALID_TASK_STATUS = 110  # ClearML's 400/110: the task is not in a status this call accepts
#: ClearML's 400/121: the conditional status update lost to a concurrent change (two deliveries
#: enqueuing the same `created` clone at once: `bll/task/utils.py::ChangeStatusRequest`).
FAILED_CHANGING_STATUS = 121
#: How often, at most, one enqueuer tells operators that ClearML refuses its credentials.
ALERT_EVERY_S = 3600.0
INVALID_QUEUE_ID = 701  # ClearML's 400/701: no queue has this id
#: Refusals after which the clone's status must be read again: another delivery may have moved it.
STATUS_RACES = frozenset({INVALID_TASK_STATUS, FAILED_CHANGING_STATUS})


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class EnqueueHandler:
    """The enqueuer's one handler, and its failure hook."""

    def __init__(
        self,
        clearml: ClearML,
        store: EnqueueLogStore,
        *,
        events: Publisher[TaskEvent],
        notifications: Publisher[Notification],
        logs: Publisher[RequestLogged],
    ) -> None:
        self._clearml, self._store = clearml, store
        self._events, self._notifications = events, notifications
        self._alerted_until = 0.0
        self._logbus = LogBus(logs, "enqueuer")

    async def __call__(self, env: Envelope[EnqueueTask]) -> None:
        try:
            await self._handle(env)
        except ClearMLUnauthorized as exc:
            await self._cluster_refused(exc)
            raise  # retriable: the message is held within the retry bound, then fails

    async def _cluster_refused(self, exc: ClearMLUnauthorized) -> None:
        """One operator notification (`clearml_unavailable`) per process and hour while ClearML
        refuses mlbus's credentials; its id is the hour's, so instances share one."""
        now = time.monotonic()
        if now < self._alerted_until:
            return
        self._alerted_until = now + ALERT_EVERY_S
        hour = int(utcnow().timestamp() // 3600) * 3600
        digest = hashlib.sha256(f"clearml_unavailable\n{hour}".encode()).hexdigest()
        notification = Notification(
            id=f"{hour * 1000:012x}{digest[:20]}",
            kind="clearml_unavailable",
            severity=Severity.CRITICAL,
            status=AlertStatus.FIRING,
            subject="clearml",
            fingerprint="clearml_unavailable:clearml",
            message=(
                f"ClearML refuses mlbus's credentials ({exc.reason}): enqueue requests are held"
                " and retried, then fail. Renew the enqueuer's ClearML access and secret keys."
            ),
        )
        log.error("ClearML refuses mlbus's credentials: %s", exc)
        try:
            await self._notifications.send(notification, id=notification.id)
        except KafkaError as send_exc:
            log.warning("clearml_unavailable notification not published: %r", send_exc)
            self._alerted_until = 0.0

    async def _handle(self, env: Envelope[EnqueueTask]) -> None:
        prior = await self._store.claim(env)
        if prior is not None and prior["status"] == "queued":
            # Recorded, but the event may not have gone out (a crash or a broker refusal between
            # the two): publish it again. Its consumers key on the request id, so a second copy
            # is harmless; a missing one would leave the request unfollowed.
            log.info("request already queued; publishing its TaskEnqueued again")
            await self._enqueued(env, str(prior.get("clone_id") or ""), prior.get("queue_watched"))
            return
        if prior is not None and prior["status"] in SETTLED:
            if any(h.get("status") == "queued" for h in prior.get("history") or []):
                # Queued, and moved on since (the monitor saw it run) before this delivery: its
                # "queued" log may never have gone out (a crash between the record and the
                # publish), and the logger counts the request by it (a second is one fact).
                await self._logged(env, "queued", {"queue": env.payload.queue_name})
            log.info("request already %s; nothing to do", prior["status"])
            return
        latency: dict[str, float] = {}
        clone_id, status, cloned_at = await self._clone(env, prior, latency)
        watched = None  # already enqueued before a crash: only the record is missing
        if status == "created":
            try:
                started = time.perf_counter()
                await self._clearml.set_hyperparams(clone_id, to_hyperparams(env.payload.input))
                latency["parameters"] = _ms(started)
                started = time.perf_counter()
                watched = await self._enqueue(env, clone_id)
                latency["enqueue"] = _ms(started)
            except ClearMLRejected as exc:
                if not await self._moved_on(exc, clone_id):
                    raise
        await self._store.record_queued(env, clone_id, cloned_at, watched, latency)
        await self._logged(env, "queued", {"queue": env.payload.queue_name})
        await self._enqueued(env, clone_id, watched)

    async def _enqueued(self, env: Envelope[EnqueueTask], clone_id: str, watched: Any) -> None:
        """TaskEnqueued, after the record: it follows from what MongoDB holds (PublishFailed
        makes the consumer loop run the handler again, which finds `queued` and sends it)."""
        watched = watched if isinstance(watched, bool) else None
        await self._event(
            env, TaskEventKind.ENQUEUED, clone_id=clone_id or None, queue_watched=watched
        )

    async def _clone(
        self, env: Envelope[EnqueueTask], prior: dict[str, Any] | None, latency: dict[str, float]
    ) -> tuple[str, str, datetime | None]:
        """The request's clone, its ClearML status and when it was made now (None: earlier).

        A first delivery (nothing claimed before) clones at once. A redelivery first looks for
        the clone an earlier delivery may have made: recorded in MongoDB, else tagged in ClearML.
        """
        found: dict[str, Any] | None = None
        if prior is not None and prior.get("clone_id"):
            rows = await self._clearml.statuses([prior["clone_id"]])
            found = rows[0] if rows else None
        elif prior is not None:
            found = await self._clearml.find_by_tag(REQUEST_TAG + env.id)
        if found is not None:
            return str(found["id"]), str(found.get("status", "created")), None
        started = time.perf_counter()
        template = env.payload.template_task_id
        name = f"{await self._clearml.template_name(template)} · {env.id[:8]}"
        tags = ["mlbus", REQUEST_TAG + env.id] + ([f"mlbus-user:{env.user}"] if env.user else [])
        clone_id = await self._clearml.clone(template, name, tags)
        latency["clone"] = _ms(started)
        return clone_id, "created", utcnow()

    async def _moved_on(self, exc: ClearMLRejected, clone_id: str) -> bool:
        """True when the clone left `created` because another delivery of the same request
        enqueued it meanwhile (a rebalance can hand a partition over while a call is in flight):
        the request is then queued, and this delivery only records it. The loser sees 110 when
        the other call had finished, 121 when both were inside the server at once."""
        if exc.subcode not in STATUS_RACES:
            return False
        rows = await self._clearml.statuses([clone_id])
        now = str(rows[0].get("status")) if rows else None
        if now is None or now == "created":
            return False
        log.info("clone %s is %s already: another delivery enqueued it", clone_id, now)
        return True

    async def _enqueue(self, env: Envelope[EnqueueTask], clone_id: str) -> bool | None:
        name = env.payload.queue_name
        queue_id = await self._clearml.queue_id(name)
        try:
            return await self._enqueue_on(env, clone_id, queue_id)
        except ClearMLRejected as exc:
            if exc.subcode != INVALID_QUEUE_ID:
                raise
        # The cached id names a queue that is gone (deleted, maybe re-created under the same
        # name): look the name up again, once. A queue really gone is then 701 from the lookup.
        log.info("queue %r: cached id %s is stale; looking it up again", name, queue_id)
        self._clearml.forget_queue(name)
        return await self._enqueue_on(env, clone_id, await self._clearml.queue_id(name))

    async def _enqueue_on(
        self, env: Envelope[EnqueueTask], clone_id: str, queue_id: str
    ) -> bool | None:
        try:
            return await self._clearml.enqueue(clone_id, queue_id, env.id)
        except ClearMLRejected as exc:
            if exc.subcode == 706:  # already queued by an earlier delivery
                return None
            raise

    async def on_failure(self, env: Envelope[EnqueueTask], exc: Exception) -> None:
        """Record a request that failed for good where its author sees it, and tell the bus."""
        if isinstance(exc, ClearMLRejected):
            message = exc.user_message
        elif isinstance(exc, ClearMLUnauthorized):
            message = (
                "The cluster did not accept mlbus's credentials in time (an operator must renew"
                " them); the request was not enqueued."
            )
        elif isinstance(exc, SchemaError):  # `env` is what could be salvaged of it
            message = f"The request could not be read by the enqueuer ({exc}); it was not run."
        elif isinstance(exc, PermanentError):
            message = str(exc)
        else:
            message = "The cluster could not be reached in time; the request was not enqueued."
        if not await self._store.record_failed(env, message):
            log.info("request already settled; its failure (%s) is not recorded", exc)
            return
        await self._logged(env, "failed", {"message": message})
        await self._event(env, TaskEventKind.ENQUEUE_FAILED, message=message)

    async def _logged(
        self, env: Envelope[EnqueueTask], status: str, details: dict[str, JSONValue]
    ) -> None:
        """The request's outcome for the logger (after the log write; never fails)."""
        now = utcnow()
        await self._logbus.logged(
            RequestLogged(
                request_id=env.id,
                path="enqueue",
                status=status,
                user=env.user,
                target=env.payload.task_id or "",
                latency_ms=round((now - env.created_at).total_seconds() * 1000, 2),
                details=details,
                at=now,
                accepted_at=env.created_at,
            )
        )

    async def _event(self, env: Envelope[EnqueueTask], kind: TaskEventKind, **fields: Any) -> None:
        p = env.payload
        event = TaskEvent(
            kind=kind,
            request_id=env.id,
            user=env.user,
            task_id=p.task_id or "",  # empty only for a message salvaged from a schema error
            queue_name=p.queue_name,
            **fields,
        )
        try:
            await self._events.send(event, id=env.id, user=env.user)
        except KafkaError as exc:
            raise PublishFailed(f"{self._events.topic}: {exc!r}") from exc
