"""The console's error tree. What reaches a browser is a page (or, for htmx, a fragment) with the
status; what reaches a script is the one JSON shape (runtime.http):

ConsoleError
├── NotSignedIn           no session, or it ended (pages redirect to the login)
├── SignInFailed          Keycloak refused the code exchange, or the state did not match (400)
├── Forbidden             the session's roles do not allow the page or action (403)
├── CsrfRefused           a form without this session's CSRF token (403)
├── SessionsUnavailable   the session store (MongoDB) did not answer (503, retriable)
└── ApiFailed             ingest answered an error: its status, code and message are kept
    └── ApiUnavailable    ingest or Keycloak did not answer (503, retriable)
"""

from __future__ import annotations

from typing import Any


class ConsoleError(Exception):
    """Base of the console's errors: a status and a stable code."""

    status = 500
    code = "console_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotSignedIn(ConsoleError):
    """No session, or it ended."""

    status, code = 401, "not_signed_in"


class SignInFailed(ConsoleError):
    """The OIDC callback could not finish."""

    status, code = 400, "sign_in_failed"


class Forbidden(ConsoleError):
    """Signed in, but not allowed."""

    status, code = 403, "forbidden"


class CsrfRefused(ConsoleError):
    """A state-changing request without the session's CSRF token."""

    status, code = 403, "csrf_refused"


class SessionsUnavailable(ConsoleError):
    """MongoDB, where the sessions are, did not answer."""

    status, code = 503, "sessions_unavailable"


class ApiFailed(ConsoleError):
    """Ingest answered an error."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.details = status, code, details


class ApiUnavailable(ApiFailed):
    """Ingest (or Keycloak) did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "api_unavailable", message)
