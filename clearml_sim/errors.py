"""API errors in the server's format (``apierrors/base.py``).

Every error is an :class:`ApiError`; handlers raise it and the app turns it into an envelope whose
HTTP status equals ``result_code``. The message is the capitalised default message, then
`` (<extra>)``, then ``: k=v, k=v``; ``error_data`` holds the same keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ApiError(Exception):
    """An error answer: ``code``/``subcode``, message and ``error_data``.

    Raised by handlers; the app turns it into the envelope.
    """

    def __init__(
        self, code: int, subcode: int, msg: str, error_data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}/{subcode}: {msg}")
        self.code = code
        self.subcode = subcode
        self.msg = msg
        self.error_data = error_data or {}


def _fmt(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def make(code: int, subcode: int, default: str, extra: str | None = None, **kw: Any) -> ApiError:
    """Build an error exactly as ``BaseError.__init__`` formats it."""
    msg = default
    if extra:
        msg += f" ({extra})"
    if kw:
        msg += ": " + ", ".join(f"{k}={_fmt(v)}" for k, v in kw.items())
    return ApiError(code, subcode, msg, {k: _safe(v) for k, v in kw.items()})


def _safe(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return value


def missing_fields(*fields: str) -> ApiError:
    return make(
        400, 11, "Missing required fields", field=list(fields) if len(fields) > 1 else fields[0]
    )


def validation_error(extra: str, **kw: Any) -> ApiError:
    return make(400, 12, "Validation error", extra, **kw)


def fields_value_error(extra: str, **kw: Any) -> ApiError:
    return make(400, 16, "Invalid value for fields", extra, **kw)


def invalid_regex(pattern: str) -> ApiError:
    return make(400, 21, "Malformed regular expression", pattern=pattern)


def invalid_task_id(task_id: Any, company: str) -> ApiError:
    return make(400, 101, "Invalid task id", id=task_id, company=company)


def invalid_status_change(current: str, new: str) -> ApiError:
    return make(
        400,
        110,
        "Invalid task status",
        "Invalid status change",
        current_status=current,
        new_status=new,
    )


def invalid_status_expected(expected: str | Iterable[str], status: str) -> ApiError:
    return make(400, 110, "Invalid task status", expected=expected, status=status)


def failed_changing_task_status(task_id: str, current: str, new: str) -> ApiError:
    """400/121: the conditional status update found the task no longer in the status it read
    (another call changed it in between: ``bll/task/utils.py::ChangeStatusRequest.execute``)."""
    return make(
        400,
        121,
        "Failed changing task status. probably someone changed it before you",
        task_id=task_id,
        current_status=current,
        new_status=new,
    )


def invalid_queue_id(queue_id: Any) -> ApiError:
    return make(400, 701, "Invalid queue id", queue_id=queue_id)


def task_already_queued(task_id: str, queue_id: str) -> ApiError:
    return make(
        400,
        706,
        "Failed adding task to queue since task is already queued",
        task=task_id,
        queue=queue_id,
    )


def no_default_queue() -> ApiError:
    return make(400, 707, "No queue is tagged as the default queue for this company")


def multiple_default_queues() -> ApiError:
    return make(400, 708, "More than one queue is tagged as the default queue for this company")


def invalid_project_id(project_id: Any) -> ApiError:
    return make(400, 401, "Invalid project id", id=project_id)


def invalid_worker_id(worker: Any) -> ApiError:
    return make(400, 1001, "Invalid worker id", worker=worker)


def worker_stats_not_found(workers: Any) -> ApiError:
    return make(400, 1005, "Worker stats not found", worker_ids=workers)


def unauthorized(subcode: int) -> ApiError:
    text = {
        10: "Unauthorized (bad authentication header type)",
        20: "Unauthorized (missing credentials)",
        21: "Unauthorized (malformed credentials)",
        22: "Unauthorized (invalid credentials)",
        30: "Invalid token",
    }[subcode]
    return ApiError(401, subcode, text)


def unknown_endpoint(name: str, version: str) -> ApiError:
    return ApiError(404, 0, f"Unable to find endpoint for name {name} and version {version}")


def general_error(extra: str | None = None) -> ApiError:
    return make(500, 0, "General server error", extra)
