"""The inference router's error tree.

Model and replica failures are *outcomes*, not exceptions that leave the handler: each becomes a
reply with its status and code (see `outcomes.py`). Only the bus and the store can fail a message.

ModelCallError                     a call that did not give a model answer; becomes a reply
├── ReplicaRefused                 refused before anything was sent: safe to try another replica
├── ModelFailed                    5xx, reset or unreadable answer after sending: 502 model_failed
└── ModelTimedOut                  no answer within the call's budget: 504 model_timeout
RetriableError (runtime.retry)     retried with capped backoff, then dead-lettered
├── StoreUnavailable               MongoDB away while resolving a route the router has not cached
└── BusUnavailable                 the reply or the call's log could not be published
"""

from __future__ import annotations

from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
from runtime.retry import RetriableError


class ModelCallError(Exception):
    """A model call that ended without a model answer."""


class ReplicaRefused(ModelCallError):
    """The replica refused the connection: nothing was sent, another replica may be tried."""


class ModelFailed(ModelCallError):
    """The replica failed after the request may have reached it (5xx, reset, bad JSON)."""


class ModelTimedOut(ModelCallError):
    """The replica did not answer within the call's budget."""


class BusUnavailable(RetriableError):
    """Kafka did not take the reply."""
