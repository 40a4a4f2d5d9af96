"""Logging: one format, with the request id, topic, partition and offset of the message in hand.

The consumer loop sets the context variables; every log record made while handling that message
carries them, without handlers passing them around.
"""

from __future__ import annotations

import contextvars
import logging
import sys

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
message_var: contextvars.ContextVar[str] = contextvars.ContextVar("message", default="-")


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.msgref = message_var.get()
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    """Configure the root logger once, for a service process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {service} %(name)s [req=%(request_id)s msg=%(msgref)s] "
            "%(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
