"""The ASGI app: ClearML's ``/[vX.Y/]service.action`` API plus the ``/_sim/`` control API.

A raw ASGI callable rather than a framework router: each call is a dict lookup, a handler over
in-memory dicts and one ``orjson.dumps``, which keeps a 2-core machine above 1000 calls/s.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any
from urllib.parse import unquote

import orjson

from clearml_sim import api_misc, api_queues, api_tasks, api_workers, control, errors, results
from clearml_sim.asgi import Receive, Scope, Send, header, query_args, read_body, send_json
from clearml_sim.config import SimConfig
from clearml_sim.endpoint import Call, Doc, Endpoint
from clearml_sim.journal import session_of
from clearml_sim.simulator import Simulator

log = logging.getLogger(__name__)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        *api_misc.ENDPOINTS,
        *api_tasks.ENDPOINTS,
        *api_queues.ENDPOINTS,
        *api_workers.ENDPOINTS,
    )
}
_VERSIONS: dict[str, tuple[int, ...]] = {}


def _version_tuple(version: str) -> tuple[int, ...]:
    parsed = _VERSIONS.get(version)
    if parsed is None:
        try:
            parsed = tuple(int(p) for p in version.split("."))
        except ValueError:
            parsed = (0,)
        if len(_VERSIONS) < 1000:
            _VERSIONS[version] = parsed
    return parsed


def parse_path(path: str, max_version: str) -> tuple[str, str]:
    """``/v2.23/tasks.clone`` -> ``("tasks.clone", "2.23")``; unversioned gets the max version."""
    name = path.strip("/")
    version = max_version
    if name.startswith("v") and "/" in name:
        prefix, rest = name.split("/", 1)
        if prefix[1:2].isdigit():
            version, name = prefix[1:], rest
    return name, version


def parse_body(raw: bytes, content_type: str | None) -> tuple[Doc, list[Doc] | None]:
    """JSON object body, or a batch: ``application/json-lines`` or a JSON array."""
    if not raw.strip():
        return {}, None
    try:
        if content_type and content_type.startswith("application/json-lines"):
            return {}, [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.validation_error("invalid JSON body") from exc
    if isinstance(data, list):
        return {}, data
    if not isinstance(data, dict):
        raise errors.validation_error("request body must be a JSON object")
    return data, None


def envelope(
    name: str, requested: str, actual: str | None, err: errors.ApiError | None, data: Any
) -> Doc:
    """The server's response document (``apicall.py::get_response``)."""
    return {
        "meta": {
            "id": os.urandom(16).hex(),
            "trx": os.urandom(16).hex(),
            "endpoint": {"name": name, "requested_version": requested, "actual_version": actual},
            "result_code": err.code if err else 200,
            "result_subcode": err.subcode if err else 0,
            "result_msg": err.msg if err else "OK",
            "error_stack": None,
            "error_data": err.error_data if err else {},
        },
        "data": data,
    }


class SimApp:
    """ASGI entry point for one :class:`Simulator`; its lifespan runs the agent loop."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"].startswith("/_sim"):
                await control.handle(self.sim, scope, receive, send)
            elif scope["path"].startswith("/files/"):
                await self._file(scope, send)
            else:
                await self._api(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        name, version = parse_path(scope["path"], self.sim.config.api_version)
        raw = await read_body(receive)
        endpoint = ENDPOINTS.get(name)
        actual = endpoint.min_version if endpoint else None
        data: Any = {}
        handle: int | None = None
        try:
            if endpoint is None or _version_tuple(version) < _version_tuple(endpoint.min_version):
                actual = None
                raise errors.unknown_endpoint(name, version)
            call = self._call(endpoint, scope, raw)
            session = session_of(call.authorization)
            handle = self.sim.journal.begin(name, session, call.body, self.sim.clock())
            delay, fault = self.sim.faults.decide(name)
            if delay:
                await asyncio.sleep(delay)
            if fault is not None:
                raise fault
            if endpoint.auth:
                self.sim.auth.check(call.authorization)
            data = endpoint.handler(call)
            err = None
        except errors.ApiError as exc:
            err = exc
        except asyncio.CancelledError:  # the client went away: the call is over all the same
            if handle is not None:
                self.sim.journal.end(handle, self.sim.clock(), 499)
            raise
        except Exception:
            log.exception("clearml-sim: %s failed", name)
            err = errors.general_error()
        if handle is not None:
            self.sim.journal.end(handle, self.sim.clock(), err.code if err else 200)
        await send_json(send, err.code if err else 200, envelope(name, version, actual, err, data))

    async def _file(self, scope: Scope, send: Send) -> None:
        """The file server: the bytes of an uploaded artifact or model, or 404."""
        path = unquote(scope["path"][len("/files/") :])
        try:
            content = results.get_file(self.sim.state, path)
        except errors.ApiError:
            await send_json(send, 404, {"detail": "not found"})
            return
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(content)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _call(self, endpoint: Endpoint, scope: Scope, raw: bytes) -> Call:
        """The call as read on arrival: body, client, and, for a status change, the task's
        status then (what the server's read-then-conditional-update compares against)."""
        body, batch = parse_body(raw, header(scope, b"content-type"))
        if scope["query_string"]:
            body.update(query_args(scope["query_string"]))
        client = scope.get("client")
        call = Call(
            self.sim,
            body,
            batch,
            client[0] if client else "127.0.0.1",
            header(scope, b"authorization"),
        )
        if endpoint.changes_status and isinstance(body.get("task"), str):
            task = self.sim.state.tasks.get(body["task"])
            call.seen_status = task["status"] if task is not None else None
        return call

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.sim.start_background()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.sim.stop_background()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config: SimConfig | None = None, sim: Simulator | None = None) -> SimApp:
    """An app around ``sim``, or around a new simulator built from ``config``."""
    return SimApp(sim or Simulator(config))
