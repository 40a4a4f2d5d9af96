"""The MongoDB contract: every collection mlbus keeps, by name, with who writes it, who reads it,
what a document is, and the indexes beyond `_id`. A collection's name is written here and
nowhere else (tests/unit/test_layout.py fails on a collection name spelled in another module);
services and tools import the constants.

Every hot document is keyed by `_id`, the one index FerretDB's SQLite backend answers from; the
few secondary indexes are listed with their collection and created by its writer
(`runtime.mongo.create_indexes`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Mappings the admin API keeps (opaque id -> ClearML task, serving machine, endpoint).
TASK_MAPPINGS = "task_mappings"
SERVING_MACHINES = "serving_machines"
ENDPOINT_MAPPINGS = "endpoint_mappings"
#: One document per request: its raw log (status, history, timings), keyed by request id.
ENQUEUE_LOGS = "enqueue_logs"
ONDEMAND_LOGS = "ondemand_logs"
NOTIFICATIONS = "notifications"
#: The monitor's read models: one document per machine, one per ClearML queue.
RESOURCES = "resources"
QUEUES = "queues"
#: Ingest's own state, shared by its copies.
QUOTA_COUNTERS = "quota_counters"
TASK_SLOTS = "task_slots"
IDEMPOTENCY_KEYS = "idempotency_keys"
ADMIN_AUDIT = "admin_audit"
#: The console's sign-in sessions, shared by its copies.
CONSOLE_SESSIONS = "console_sessions"
#: The logger's read models (their documents: schemas/views.py and the README's "MongoDB views").
VIEW_ENQUEUE = "view_enqueue_logs"
VIEW_ONDEMAND = "view_ondemand_logs"
VIEW_HOURLY = "view_requests_hourly"
VIEW_DAILY = "view_requests_daily"
VIEW_USAGE = "view_usage_by_user"
LOG_INDEX = "view_log_index"
#: One document per (request id, status) the logger has folded: its idempotency keys.
FOLDS = "logger_folds"
#: Cross-process locks of single documents where updates are not atomic (runtime/doclocks.py).
DOC_LOCKS = "doc_locks"
#: Real views of the raw logs, registered by the logger where the server has `createView`.
LIVE_ENQUEUE = "view_enqueue_logs_live"
LIVE_ONDEMAND = "view_ondemand_logs_live"

#: An index: its keys, each (field, 1 ascending or -1 descending).
IndexKeys = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Collection:
    """One collection of the contract."""

    name: str
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    document: str
    indexes: tuple[IndexKeys, ...] = ()


#: How the log pages read the view documents where the server has real indexes (MongoDB):
#: newest first (`at_ms`, then `_id`), all logs or those of one user, status, user and status,
#: or target. On FerretDB/SQLite the hand-made log index answers instead (schemas/views.py).
VIEW_INDEXES: tuple[IndexKeys, ...] = tuple(
    (*((f, 1) for f in fields), ("at_ms", -1), ("_id", -1))
    for fields in ((), ("user",), ("status",), ("user", "status"), ("target",))
)

COLLECTIONS: tuple[Collection, ...] = (
    Collection(TASK_MAPPINGS, ("ingest",), ("ingest",), "schemas.api.TaskMapping"),
    Collection(
        SERVING_MACHINES, ("ingest",), ("ingest", "inference_router"), "schemas.api.ServingMachine"
    ),
    Collection(
        ENDPOINT_MAPPINGS,
        ("ingest",),
        ("ingest", "inference_router"),
        "schemas.api.EndpointMapping",
    ),
    Collection(
        ENQUEUE_LOGS,
        ("enqueuer", "monitor"),
        ("enqueuer", "monitor", "ingest", "logger"),
        "an enqueue request's log: status (schemas.status), history, task id, timings; the "
        "monitor's outbox of task events not yet on Kafka (by kind)",
    ),
    Collection(
        ONDEMAND_LOGS,
        ("logger",),
        ("inference_router", "ingest", "logger"),
        "an on-demand call's log: outcome, latency (the router's, carried on RequestLogged)",
    ),
    Collection(
        NOTIFICATIONS,
        ("notifier",),
        ("ingest",),
        "schemas.notifications.Notification, stored once",
        indexes=((("user", 1), ("_id", -1)),),
    ),
    Collection(RESOURCES, ("monitor",), ("ingest",), "schemas.resources.ResourceState"),
    Collection(QUEUES, ("monitor",), ("ingest",), "schemas.resources.QueueState"),
    Collection(
        QUOTA_COUNTERS,
        ("ingest",),
        ("ingest",),
        "requests counted per user, path and window",
        indexes=((("at", 1),),),
    ),
    Collection(
        TASK_SLOTS,
        ("ingest",),
        ("ingest",),
        "a seat `s|<k>|<user>` (k < the user's task quota) {user, request, at}, held by an "
        "enqueued task until it ends; its request's marker `r|<request id>` {user, request, seat, "
        "at}; read by user only when a user's seats look taken",
        indexes=((("user", 1),),),
    ),
    Collection(IDEMPOTENCY_KEYS, ("ingest",), ("ingest",), "an Idempotency-Key's claim and answer"),
    Collection(ADMIN_AUDIT, ("ingest",), ("ingest",), "schemas.admin.AuditEntry"),
    Collection(
        CONSOLE_SESSIONS,
        ("console",),
        ("console",),
        "a sign-in session; a TTL index on expires_at (made by the console, with its option)",
    ),
    Collection(
        VIEW_ENQUEUE,
        ("logger",),
        ("ingest",),
        "a request's row (schemas/views.py); indexes made on MongoDB only",
        indexes=VIEW_INDEXES,
    ),
    Collection(
        VIEW_ONDEMAND,
        ("logger",),
        ("ingest",),
        "a call's row (schemas/views.py); indexes made on MongoDB only",
        indexes=VIEW_INDEXES,
    ),
    Collection(VIEW_HOURLY, ("logger",), ("ingest",), "requests per hour and target"),
    Collection(VIEW_DAILY, ("logger",), ("ingest",), "requests per day and target"),
    Collection(VIEW_USAGE, ("logger",), ("ingest",), "requests per user"),
    Collection(LOG_INDEX, ("logger",), ("ingest",), "the log index's buckets (schemas/views.py)"),
    Collection(FOLDS, ("logger",), ("logger",), "a (request id, status) folded once"),
    Collection(
        DOC_LOCKS,
        ("ingest", "logger"),
        ("ingest", "logger"),
        "a lock of one document being updated (FerretDB only; held for one write)",
    ),
    Collection(LIVE_ENQUEUE, ("logger",), (), "a view (createView) of enqueue_logs, MongoDB only"),
    Collection(
        LIVE_ONDEMAND, ("logger",), (), "a view (createView) of ondemand_logs, MongoDB only"
    ),
)

BY_NAME = {c.name: c for c in COLLECTIONS}
