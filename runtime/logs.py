"""Logging: one format, with the request id, trace id, topic, partition and offset of the
message in hand.

The consumer loop and the HTTP edge set the context variables; every log record made while
handling that message or request carries them, without handlers passing them around.

Two formats (`MLBUS_LOG_FORMAT`): `text` for a terminal, and `json` for a cluster's log
collector, one object a line with these fields:

| field | what |
|---|---|
| `ts` | when, UTC, ISO 8601 with milliseconds |
| `level` | DEBUG, INFO, WARNING, ERROR, CRITICAL |
| `service` | the mlbus service (ingest, enqueuer, ...) |
| `logger` | the Python logger (module) that wrote it |
| `message` | the text |
| `request_id` | the request being handled, `-` outside one |
| `trace_id` | its trace (32 hex digits) when tracing is on, else `-` |
| `msg` | the Kafka message in hand, `topic/partition@offset`, else `-` |
| `exc` | the traceback, when the record carries an exception |
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

from runtime import tracing

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
message_var: contextvars.ContextVar[str] = contextvars.ContextVar("message", default="-")


class ContextFilter(logging.Filter):
    """Stamps each record with the request id, trace id and message in hand."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp; never drops a record."""
        record.request_id = request_id_var.get()
        record.msgref = message_var.get()
        record.trace_id = tracing.trace_id() or "-"
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line, with the fields in the module docstring."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        at = datetime.fromtimestamp(record.created, UTC)
        line = {
            "ts": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "trace_id": getattr(record, "trace_id", "-"),
            "msg": getattr(record, "msgref", "-"),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO", *, json_lines: bool = False) -> None:
    """Configure the root logger once, for a service process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if json_lines:
        handler.setFormatter(JsonLines(service))
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s {service} %(name)s "
                "[req=%(request_id)s trace=%(trace_id)s msg=%(msgref)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
