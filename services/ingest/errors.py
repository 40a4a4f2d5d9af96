"""Ingest's error tree. Every client-facing error is an ApiError with a stable code:

ApiError (runtime.http)
├── 401 unauthorized          missing, malformed, expired or unverifiable token
├── 403 forbidden             not an admin; queue not allowed by the mapping
├── 404 task_not_found        unknown opaque task id (nothing is published)
├── 404 request_not_found     unknown request id, or another user's
├── 404 artifact_not_found    the request has no artifact of that name (or it is gone)
├── 409 mapping_exists        the template is already mapped
├── 413 body_too_large        body over the limit (runtime.http)
├── 422 invalid_request       malformed JSON or fields (runtime.http)
├── 502 artifact_unavailable  the file server did not give the artifact
├── 503 bus_unavailable       Kafka did not take the message (retriable for the client)
├── 503 store_unavailable     MongoDB did not answer a read (retriable for the client)
└── 503 identity_unavailable  the token names a key that the issuer's JWKS could not be fetched
                              to check (Keycloak down); tokens already checked keep working
"""

from __future__ import annotations

from runtime.http import ApiError


def unauthorized(message: str) -> ApiError:
    """401 with the WWW-Authenticate header clients expect."""
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(code: str, message: str) -> ApiError:
    """403: authenticated, but not allowed."""
    return ApiError(403, code, message)


def not_found(code: str, message: str) -> ApiError:
    """404."""
    return ApiError(404, code, message)


def bus_unavailable(*, unsure: bool = False) -> ApiError:
    """503: the message was not acknowledged, so the request is not accepted. `unsure`: the bus
    did not answer in time, and may still take it when it is back; a retry with the same
    Idempotency-Key runs it once either way."""
    message = "The request could not be accepted right now; try again shortly."
    if unsure:
        message += (
            " The message bus did not answer in time: the request may still run when it is "
            "back; retry with the same Idempotency-Key header to make sure it runs once."
        )
    return ApiError(503, "bus_unavailable", message, headers={"Retry-After": "5"})


def store_unavailable() -> ApiError:
    """503: a read from MongoDB failed; nothing changed."""
    return ApiError(
        503, "store_unavailable", "The data could not be read right now; try again shortly."
    )


def identity_unavailable() -> ApiError:
    """503: the token may be valid, but its key could not be fetched from the issuer."""
    return ApiError(
        503,
        "identity_unavailable",
        "The identity provider cannot be reached to check this token; try again shortly.",
        headers={"Retry-After": "5"},
    )


def artifact_unavailable(why: str) -> ApiError:
    """502: ClearML's file server did not give the artifact (its address is never said)."""
    return ApiError(
        502, "artifact_unavailable", f"The artifact could not be fetched right now ({why})."
    )
