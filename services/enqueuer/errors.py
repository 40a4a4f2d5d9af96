"""The enqueuer's error tree. Adapters raise these; handlers never see library exceptions.

    RetriableError (runtime.retry)            retried with capped backoff, then dead-lettered
    ├── ClearMLUnavailable                    5xx, timeout, refused connection
    └── StoreUnavailable                      MongoDB away
    PermanentError (runtime.retry)            logged on the request, dead-lettered at once
    └── ClearMLRejected                       4xx: unknown task or queue, illegal status
"""

from __future__ import annotations

from runtime.retry import PermanentError, RetriableError


class ClearMLUnavailable(RetriableError):
    """ClearML did not answer, or answered 5xx."""


class StoreUnavailable(RetriableError):
    """MongoDB did not answer."""


class ClearMLRejected(PermanentError):
    """ClearML refused the call (4xx). `user_message` says what happened in a flow author's
    words; `str()` keeps the API's own text for the logs and the dead letter."""

    code = "clearml_rejected"

    def __init__(self, code: int, subcode: int, api_message: str, user_message: str) -> None:
        super().__init__(f"ClearML {code}/{subcode}: {api_message}")
        self.status, self.subcode, self.user_message = code, subcode, user_message
