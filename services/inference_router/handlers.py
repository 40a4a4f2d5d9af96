"""Handling one InferenceRequested: resolve, pick a replica, call the model, reply, log.

Every outcome, model and replica failures included, becomes a reply on the request's `reply_to`
topic; only the bus failing, or the store when a route is not cached, can fail the message (and
then the consumer loop retries it). The call's log goes on the bus with its reply: RequestLogged
on `mlbus.logs`, carrying the raw log that the logger writes to `ondemand_logs`. The reply is
produced first (the caller waits for nothing else, MongoDB least of all), the log right behind
it on the same producer, and the handler returns, so that the request's offset may be committed,
only once the broker has both: a router that dies before that leaves the request uncommitted,
and the copy that gets it next logs it (`expired`, once its deadline has passed). A delivery of
a request id already handled within its deadline is not sent to the model again: it gets the
first delivery's outcome, whose reply and log are published once more (identical reply
envelope; the logger keeps one log and one count per call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from aiokafka.errors import KafkaError

from runtime.kafka import Sender
from schemas.base import Envelope, utcnow
from schemas.codec import encode, envelope_for
from schemas.inference import InferenceReplied, InferenceRequested
from schemas.topics import LOGS, REPLY_TEMPLATE
from services.inference_router import outcomes
from services.inference_router.calllog import call_log
from services.inference_router.dedupe import DedupeCache
from services.inference_router.errors import (
    BusUnavailable,
    ModelFailed,
    ModelTimedOut,
    ReplicaRefused,
)
from services.inference_router.model import ModelClient
from services.inference_router.outcomes import Outcome
from services.inference_router.routes import Route, RouteTable
from services.inference_router.store import OnDemandLogs

log = logging.getLogger(__name__)

#: A refused connection (nothing sent) may be tried on one more replica.
MAX_ATTEMPTS = 2


def seconds_left(deadline: datetime, now: datetime) -> float:
    """Time left to a deadline, negative once it has passed."""
    return (deadline - now).total_seconds()


class InferenceHandler:
    """The router's one handler."""

    def __init__(
        self,
        routes: RouteTable,
        model: ModelClient,
        logs: OnDemandLogs,
        producer: Sender,
        *,
        dedupe_grace_s: float = 5.0,
        replay_check_after_s: float = 1.0,
        topic_prefix: str = "",
    ) -> None:
        self._routes, self._model, self._logs, self._producer = routes, model, logs, producer
        self._grace, self._replay_after = dedupe_grace_s, replay_check_after_s
        self._seen: DedupeCache[Outcome] = DedupeCache()
        self._logs_topic = LOGS.named(topic_prefix)

    async def __call__(self, env: Envelope[InferenceRequested]) -> None:
        consumed = utcnow()
        if await self._answered_elsewhere(env, consumed):
            log.info("request answered by another router before this delivery; not sent again")
            return
        ttl = seconds_left(env.payload.deadline, consumed) + self._grace
        outcome, duplicate = await self._seen.once(env.id, ttl, lambda: self._handle(env, consumed))
        if duplicate:
            log.info("request delivered again; replying with the first outcome")
        await self._end(env, outcome, reply=True)

    async def on_failure(self, env: Envelope[InferenceRequested], exc: Exception) -> None:
        """A request the router gives up on (it goes to the dead letters): its caller gets a 502
        `request_failed` now, not a 504 at its deadline, and its log says failed. `env` may be
        what could be salvaged of a message that did not decode (see runtime/consumer.py)."""
        reply = InferenceReplied(
            ok=False,
            http_status=502,
            error_code="request_failed",
            message=f"The request could not be handled by the router: {type(exc).__name__}.",
        )
        outcome = Outcome(reply, "failed", utcnow())
        await self._end(env, outcome, reply=bool(env.payload.reply_to))

    async def _answered_elsewhere(self, env: Envelope[InferenceRequested], now: datetime) -> bool:
        """A delivery that waited on the bus far longer than usual may be a redelivery of a
        request that the partition's previous owner answered (its reply went out, then its log,
        and the router stopped or lost the partition before committing the offset). The memory
        of this router cannot know: its log can. Fresh deliveries, nearly all of them, skip the
        lookup; a request whose first delivery is still running elsewhere is not caught."""
        if self._seen.get(env.id) is not None:
            return False  # delivered here before: the dedupe cache answers it
        if (now - env.created_at).total_seconds() <= self._replay_after:
            return False
        return await self._logs.answered(env.id)

    async def _end(
        self, env: Envelope[InferenceRequested], outcome: Outcome, *, reply: bool
    ) -> None:
        """Reply, and log the call: the reply is produced first, the log behind it (a task that
        starts when the reply's produce is queued), and both must reach the broker before this
        returns (BusUnavailable otherwise: the loop tries the message again)."""
        logged = asyncio.ensure_future(self._log(env, outcome))
        try:
            if reply:
                await self._reply(env, outcome)
        finally:
            await asyncio.wait([logged])
            failure = logged.exception()  # read even when the reply failed first
        if failure is not None:
            raise failure

    async def _log(self, env: Envelope[InferenceRequested], outcome: Outcome) -> None:
        entry = call_log(env, outcome)
        envelope = envelope_for(LOGS, entry, id=env.id, user=env.user, trace=env.trace)
        try:
            await self._producer.send_and_wait(
                self._logs_topic, encode(envelope), key=env.id.encode()
            )
        except KafkaError as exc:
            raise BusUnavailable(f"log not published: {exc}") from exc

    async def _handle(self, env: Envelope[InferenceRequested], consumed: datetime) -> Outcome:
        p = env.payload
        left = seconds_left(p.deadline, consumed)
        if left <= 0:
            return Outcome(outcomes.expired(), "expired", consumed)
        route = await self._routes.resolve(p.machine_id, p.endpoint)
        if route is None:
            return Outcome(outcomes.not_found(p.machine_id, p.endpoint), "failed", consumed)
        budget = min(route.mapping.timeout_s, left)
        return await self._call(env, route, budget, consumed)

    async def _call(
        self, env: Envelope[InferenceRequested], route: Route, budget_s: float, consumed: datetime
    ) -> Outcome:
        p, pool, task = env.payload, route.pool, route.machine.serving_task_id
        ends = time.monotonic() + budget_s
        tried: set[str] = set()
        while len(tried) < MAX_ATTEMPTS:
            replica = pool.choose(frozenset(tried))
            if replica is None:
                break
            tried.add(replica.url)
            left = ends - time.monotonic()
            if left <= 0:
                return Outcome(
                    outcomes.timed_out(budget_s), "timeout", consumed, serving_task_id=task
                )
            started = time.perf_counter()
            try:
                with pool.calling(replica):
                    answer = await self._model.call(
                        replica.url,
                        p.endpoint,
                        p.version,
                        body=p.input,
                        request_id=env.id,
                        budget_s=left,
                    )
            except ReplicaRefused:
                pool.record(replica, ok=False)
                continue
            except (ModelTimedOut, ModelFailed) as exc:
                pool.record(replica, ok=False)
                spent = round((time.perf_counter() - started) * 1000, 3)
                reply, status = (
                    (outcomes.timed_out(budget_s, spent), "timeout")
                    if isinstance(exc, ModelTimedOut)
                    else (outcomes.failed("The model failed to answer.", spent), "failed")
                )
                return Outcome(
                    reply, status, consumed, replica_url=replica.url, serving_task_id=task
                )
            pool.record(replica, ok=answer.status < 500)
            reply, status = outcomes.from_answer(answer)
            return Outcome(reply, status, consumed, replica_url=replica.url, serving_task_id=task)
        message = (
            "No replica of this model could be reached."
            if tried
            else ("No replica of this model is available right now.")
        )
        return Outcome(outcomes.failed(message), "failed", consumed, serving_task_id=task)

    async def _reply(self, env: Envelope[InferenceRequested], outcome: Outcome) -> None:
        envelope = envelope_for(
            REPLY_TEMPLATE, outcome.reply, id=env.id, user=env.user, trace=env.trace
        )
        try:
            await self._producer.send_and_wait(
                env.payload.reply_to, encode(envelope), key=env.id.encode()
            )
        except KafkaError as exc:
            raise BusUnavailable(f"reply not published: {exc}") from exc
