"""`Idempotency-Key`: a client's retry that must not run twice.

The request id is always minted by ingest; a client that must retry without running twice sends
an `Idempotency-Key`, scoped to its user: (user, key) names one request id and one answer for
`idempotency_ttl_s` (24 h). Claims live in MongoDB (`idempotency_keys`, `_id` a hash of user and
key), so every ingest copy sees them.

- the first request with a key claims it and runs under a fresh request id; its answer is kept;
- a retry with the same body gets the kept answer (the same request id, `Idempotent-Replayed`);
- a retry while the first is still running is 409 `request_in_progress` (with `Retry-After`);
- a retry after an attempt that ended without an answer to keep (a 5xx, a timeout, a crash)
  runs again under the *same* request id, so the enqueuer's one clone per request id and the
  router's one model call per request id still hold;
- the same key with another body (or on another path) is 422 `idempotency_key_reused`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from runtime.http import ApiError
from runtime.mongo import Doc, StoreUnavailable, store_errors
from schemas.base import JSONValue, Model, utcnow
from services.ingest import errors

HEADER = "idempotency-key"
COLLECTION = "idempotency_keys"
_MAX_KEY = 255


@dataclass(frozen=True)
class Answer:
    """What a request answered: kept for a retry with the same key."""

    status: int
    body: JSONValue

    def response(self, *, replayed: bool = False) -> Response:
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(_dumps(self.body), self.status, headers, media_type="application/json")


def _dumps(body: JSONValue) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson stops at 64-bit integers
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 422 when it is not a usable key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= _MAX_KEY or not key.isascii() or not key.isprintable():
        raise ApiError(
            422,
            "invalid_request",
            f"Idempotency-Key must be 1 to {_MAX_KEY} visible ASCII characters.",
            details=[{"field": "Idempotency-Key", "error": "not a usable key"}],
        )
    return key


def fingerprint(path: str, body: Model) -> str:
    """What a retry must repeat exactly: the route and the validated body (a compatibility
    body's token is not part of it: a retry may carry a renewed one)."""
    text = body.model_dump_json(exclude={"access_token"})
    return hashlib.sha256(path.rstrip("/").encode() + b"\0" + text.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: run under `request_id`, or answer `answer` again."""

    request_id: str
    answer: Answer | None = None


class IdempotencyKeys:
    """The claims, in MongoDB."""

    def __init__(self, db: AsyncDatabase[Doc], ttl_s: float) -> None:
        self._docs = db[COLLECTION]
        self._ttl = timedelta(seconds=ttl_s)

    async def claim(
        self, user: str, key: str, fingerprint: str, request_id: str, running_s: float
    ) -> Claim:
        """Claim (user, key) for a request that may run `running_s` seconds; see the module."""
        _id = hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()
        try:
            with store_errors():
                for _ in range(3):  # an expired or vanished claim is replaced; a race tries again
                    claim = await self._try(_id, user, fingerprint, request_id, running_s)
                    if claim is not None:
                        return claim
        except StoreUnavailable as exc:
            raise errors.store_unavailable() from exc
        raise in_progress(1.0)

    async def _try(
        self, _id: str, user: str, fingerprint: str, request_id: str, running_s: float
    ) -> Claim | None:
        now = utcnow()
        until = now + timedelta(seconds=running_s)
        doc = {"_id": _id, "user": user, "fingerprint": fingerprint, "request_id": request_id}
        try:
            await self._docs.insert_one({**doc, "created_at": now, "running_until": until})
        except DuplicateKeyError:
            pass
        else:
            return Claim(request_id)
        held: dict[str, Any] | None = await self._docs.find_one({"_id": _id})
        if held is None:
            return None
        if _aware(held["created_at"]) + self._ttl <= now:  # expired: a new claim
            done = await self._docs.replace_one(
                {"_id": _id, "created_at": held["created_at"]},
                {**doc, "created_at": now, "running_until": until},
            )
            return Claim(request_id) if done.modified_count else None
        if held.get("fingerprint") != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used for another request (another body or path) "
                "in the last 24 h; use a new key for a new request.",
            )
        if held.get("answer") is not None:
            answer = held["answer"]
            return Claim(held["request_id"], Answer(int(answer["status"]), answer["body"]))
        running_until = held.get("running_until")
        if running_until is not None and _aware(running_until) > now:
            raise in_progress((_aware(running_until) - now).total_seconds())
        again = await self._docs.update_one(
            {"_id": _id, "running_until": running_until}, {"$set": {"running_until": until}}
        )
        return Claim(str(held["request_id"])) if again.modified_count else None

    async def settle(self, user: str, key: str, answer: Answer | None) -> None:
        """The attempt ended: keep its answer, or (None) let a retry run again. Best effort: a
        claim that cannot be settled ends by its own deadline."""
        _id = hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()
        change: dict[str, Any] = {"running_until": None}
        if answer is not None:
            change["answer"] = {"status": answer.status, "body": answer.body}
        try:
            with store_errors():
                await self._docs.update_one({"_id": _id}, {"$set": change})
        except StoreUnavailable:
            return


def in_progress(wait_s: float) -> ApiError:
    """409: a request with this key is still running."""
    return ApiError(
        409,
        "request_in_progress",
        "A request with this Idempotency-Key is still running; retry after it ends.",
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def run_once(
    keys: IdempotencyKeys,
    request: Request,
    user: str,
    body: Model,
    *,
    running_s: float,
    run: Callable[[], Awaitable[Answer]],
    keep: Callable[[ApiError], bool] = lambda _: False,
) -> Response:
    """Run a request once per Idempotency-Key (or simply run it, without one). `keep` says which
    errors are the request's answer (kept for retries) rather than a failure to try again."""
    key = key_of(request)
    if key is None:
        return (await run()).response()
    claim = await keys.claim(
        user, key, fingerprint(request.url.path, body), request.state.request_id, running_s
    )
    request.state.request_id = claim.request_id
    if claim.answer is not None:
        return claim.answer.response(replayed=True)
    try:
        answer = await run()
    except ApiError as exc:
        kept = keep(exc)
        if kept:
            shape: dict[str, JSONValue] = {
                "code": exc.code,
                "message": exc.message,
                "request_id": claim.request_id,
            }
            answer = Answer(exc.status, shape)
        await keys.settle(user, key, answer if kept else None)
        raise
    except BaseException:
        await keys.settle(user, key, None)
        raise
    await keys.settle(user, key, answer)
    return answer.response()
