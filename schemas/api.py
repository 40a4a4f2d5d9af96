"""HTTP request and response bodies of the ingest bridge (`/v1/...` and the compatibility
routes that Snap4City's Node-RED nodes call)."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime

from pydantic import Field, field_validator

from schemas.base import JSONValue, Model
from schemas.enqueue import empty_parameter_key
from schemas.notifications import Notification
from schemas.tasks import TaskResults

OPAQUE_ID = r"^[0-9a-f]{16,64}$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"


class EnqueueRequest(Model):
    """Start a training run: clone the mapped template with `input` as its parameters."""

    task_id: str = Field(
        description="Opaque id of the task mapping.",
        examples=["3b1f0e3c9d2a4e5f8a7b6c5d4e3f2a1b"],
        pattern=OPAQUE_ID,
    )
    queue_name: str | None = Field(
        default=None,
        description="Queue to use; the mapping's default when absent.",
        examples=["gpu-a100"],
        pattern=NAME,
    )
    input: dict[str, JSONValue] = Field(
        default_factory=dict,
        description="Parameters: 'lr' → section General; 'Args/batch_size' → section Args.",
        examples=[{"lr": 0.01, "Args/batch_size": 64}],
    )

    @field_validator("input")
    @classmethod
    def _keys_name_a_parameter(cls, value: dict[str, JSONValue]) -> dict[str, JSONValue]:
        return _named_parameters(value)


def _named_parameters(value: dict[str, JSONValue]) -> dict[str, JSONValue]:
    """ClearML refuses a parameter with an empty section or name (400/12): such a key is 422."""
    bad = empty_parameter_key(value)
    if bad is not None:
        raise ValueError(f"parameter key {bad!r} has an empty section or name")
    return value


class CompatEnqueueRequest(Model):
    """What node-red-contrib-snap4city-clearml's enqueue node sends (token in the body)."""

    access_token: str = Field(description="Keycloak access token.", min_length=1)
    task_id: str = Field(description="Opaque id of the task mapping.", pattern=OPAQUE_ID)
    queue: str | None = Field(
        default=None, description="Queue name; null or empty: the default.", pattern=NAME
    )
    params: dict[str, JSONValue] | None = Field(
        default=None, description="Parameters (an object, or JSON text of one)."
    )

    @field_validator("queue", mode="before")
    @classmethod
    def _empty_queue_is_none(cls, value: object) -> object:
        """The node sends `queue_name || config.queue_name`: an empty editor field gives ""."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("params", mode="before")
    @classmethod
    def _params_as_json_text(cls, value: object) -> object:
        """A node whose input field holds JSON text sends `params` as a string; an object's
        text is read as that object (anything else fails validation as before)."""
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
                if isinstance(parsed, dict):
                    return parsed
        return value

    @field_validator("params")
    @classmethod
    def _keys_name_a_parameter(
        cls, value: dict[str, JSONValue] | None
    ) -> dict[str, JSONValue] | None:
        return None if value is None else _named_parameters(value)


class EnqueueAccepted(Model):
    """The request is on the bus; follow it at /v1/requests/{request_id}."""

    status: str = Field(description="Always 'queued' on success.", examples=["queued"])
    request_id: str = Field(description="Follow the request with this id.")
    queue: str = Field(description="The queue it will run on.", examples=["gpu-a100"])
    queue_choice: str | None = Field(
        default=None,
        description="With queue_name 'auto': why mlbus chose this queue.",
        examples=["auto: gpu-t4 has 1 free GPU now"],
    )


class TimelineEntry(Model):
    """One state the request reached."""

    status: str = Field(description="State.", examples=["cloned"])
    at: datetime = Field(description="When (UTC).")
    message: str | None = Field(default=None, description="Explanation, for failures.")


class RequestStatus(Model):
    """A request's timeline, as its requester sees it."""

    request_id: str = Field(description="The request.")
    kind: str = Field(description="'enqueue' or 'ondemand'.", examples=["enqueue"])
    status: str = Field(description="Latest state.", examples=["queued"])
    task_id: str | None = Field(default=None, description="Opaque task id.")
    queue: str | None = Field(default=None, description="Queue used.")
    queue_watched: bool | None = Field(default=None, description="A worker listens on it.")
    queue_choice: str | None = Field(
        default=None, description="With queue_name 'auto': why mlbus chose the queue."
    )
    error: str | None = Field(default=None, description="What went wrong, in words.")
    results: TaskResults | None = Field(
        default=None,
        description="Once completed: the last value of each scalar, the artifacts (download "
        "them at /v1/requests/{request_id}/artifacts/{name}) and the output models.",
    )
    timeline: list[TimelineEntry] = Field(default_factory=list, description="Oldest first.")
    admin: dict[str, JSONValue] | None = Field(
        default=None, description="Internal ids and the artifacts' real URIs (admins only)."
    )


class TaskMappingIn(Model):
    """An admin registers a ClearML template task under an opaque id."""

    clearml_task_id: str = Field(description="Real ClearML task id.", pattern=r"^[0-9a-f]{32}$")
    default_queue: str = Field(description="Queue used when none is asked.", pattern=NAME)
    allowed_queues: list[str] = Field(
        default_factory=list, description="Queues users may ask for (the default is always)."
    )
    description: str = Field(default="", description="What the task trains.", max_length=2000)


class TaskMapping(Model):
    """A stored task mapping (admin view)."""

    task_id: str = Field(description="Opaque id users send.")
    clearml_task_id: str = Field(description="Real ClearML task id.")
    default_queue: str = Field(description="Default queue.")
    allowed_queues: list[str] = Field(description="Allowed queues.")
    description: str = Field(description="Description.")
    created_at: datetime = Field(description="When it was registered.")
    created_by: str | None = Field(default=None, description="Admin who registered it.")
    warnings: list[str] = Field(
        default_factory=list, description="What the admin should know (on registration only)."
    )


class OnDemandRequest(Model):
    """Call a deployed model now, by the opaque id of its serving machine."""

    machine_id: str = Field(description="Opaque id of the serving machine.", pattern=OPAQUE_ID)
    endpoint: str = Field(
        description="ClearML Serving endpoint name.", examples=["parking_free_slots"], pattern=NAME
    )
    version: str | None = Field(default=None, description="Endpoint version.", pattern=NAME)
    input: JSONValue = Field(default=None, description="The body sent to the model.")


class CompatOnDemandRequest(Model):
    """What node-red-contrib-snap4city-clearml's on-demand node sends (token in the body)."""

    access_token: str = Field(description="Keycloak access token.", min_length=1)
    machine_id: str = Field(description="Opaque id of the serving machine.", pattern=OPAQUE_ID)
    endpoint: str = Field(description="Endpoint name.", pattern=NAME)
    params: JSONValue = Field(default=None, description="The body sent to the model.")


class OnDemandReply(Model):
    """The model's answer."""

    status: str = Field(description="'ok'.", examples=["ok"])
    request_id: str = Field(description="The request id (also in the X-Request-ID header).")
    output: JSONValue = Field(description="The model's own JSON.")


class ServingMachineIn(Model):
    """An admin registers a ClearML Serving service and where its replicas listen."""

    serving_task_id: str = Field(
        description="Real ClearML id of the serving service task.", pattern=r"^[0-9a-f]{32}$"
    )
    base_urls: list[str] = Field(
        description="Replica base URLs, e.g. http://10.0.0.5:8080/serve.",
        min_length=1,
        max_length=32,
    )
    description: str = Field(default="", description="What it serves.", max_length=2000)


class ServingMachine(Model):
    """A stored serving machine (admin view)."""

    machine_id: str = Field(description="Opaque id users send.")
    serving_task_id: str = Field(description="Real serving service task id.")
    base_urls: list[str] = Field(description="Replica base URLs.")
    description: str = Field(description="Description.")
    created_at: datetime = Field(description="When it was registered.")
    created_by: str | None = Field(default=None, description="Admin who registered it.")
    warnings: list[str] = Field(
        default_factory=list, description="What the admin should know (on registration only)."
    )


class EndpointMappingIn(Model):
    """An admin makes an endpoint of a serving machine callable."""

    machine_id: str = Field(description="Opaque id of the serving machine.", pattern=OPAQUE_ID)
    endpoint: str = Field(description="Endpoint name.", pattern=NAME)
    timeout_s: float = Field(default=30.0, description="Answer within this or 504.", gt=0, le=600)


class EndpointMapping(Model):
    """A stored endpoint mapping."""

    machine_id: str = Field(description="Opaque id of the serving machine.")
    endpoint: str = Field(description="Endpoint name.")
    timeout_s: float = Field(description="Timeout, seconds.")
    created_at: datetime = Field(description="When it was registered.")


class NotificationPage(Model):
    """A page of stored notifications, newest first."""

    items: list[Notification] = Field(description="Notifications, newest first.")
    next_before: str | None = Field(
        default=None, description="Pass as `before` for the next (older) page; None at the end."
    )


class MachineCounts(Model):
    """How many GPU machines are up."""

    online: int = Field(description="Machines with recent heartbeats or worker reports.", ge=0)
    offline: int = Field(description="Known machines that stopped reporting.", ge=0)


class GpuCounts(Model):
    """GPUs of the online machines (an offline machine's GPUs are not counted)."""

    total: int = Field(description="GPUs reported by online machines.", ge=0)
    free: int = Field(description="Low load and memory now.", ge=0)
    busy: int = Field(description="The others.", ge=0)


class QueueSummary(Model):
    """One queue, as `GET /v1/resources` shows it."""

    name: str = Field(description="Queue name (what `queue_name` takes).", examples=["gpu-a100"])
    length: int = Field(description="Tasks waiting.", ge=0, examples=[3])
    oldest_wait_s: float | None = Field(
        default=None, description="Seconds the oldest waiting task has waited.", examples=[42.0]
    )
    avg_wait_s: float | None = Field(
        default=None, description="Average wait over the last minutes.", examples=[12.5]
    )
    workers: int = Field(description="Workers listening on it.", ge=0, examples=[2])
    idle_workers: int = Field(description="Listening workers running nothing.", ge=0)
    free_gpus: int = Field(description="Free GPUs behind its idle workers.", ge=0)
    has_free_gpu: bool = Field(description="A task sent now would find a free GPU.")
    worker_ids: list[str] | None = Field(
        default=None, description="ClearML worker ids (admins and operators only)."
    )


class GpuSummary(Model):
    """One GPU of a machine (admins and operators)."""

    index: int = Field(description="NVML index.")
    name: str = Field(description="Product name.")
    utilization_pct: float | None = Field(default=None, description="Busy %.")
    memory_used_mb: float | None = Field(default=None, description="Used MiB.")
    memory_total_mb: float | None = Field(default=None, description="Total MiB.")
    temperature_c: float | None = Field(default=None, description="Core °C.")


class MachineSummary(Model):
    """One machine with its real name and addresses (admins and operators)."""

    machine_id: str = Field(description="Machine (host) name.", examples=["gpu-box-01"])
    online: bool = Field(description="Reporting now.")
    since: datetime = Field(description="When `online` last changed.")
    workers: list[str] = Field(description="ClearML worker ids.")
    ips: list[str] | None = Field(
        default=None, description="Addresses its workers report from (admins only)."
    )
    queues: list[str] = Field(description="Queues its workers serve.")
    running_tasks: int = Field(description="Tasks its workers run now.", ge=0)
    free_gpus: int = Field(description="Free GPUs now.", ge=0)
    gpus: list[GpuSummary] = Field(description="Latest GPU readings.")
    last_heartbeat: datetime | None = Field(default=None, description="Last GPU heartbeat.")


class ResourcesView(Model):
    """Where a task can run now: machines, GPUs and queues. Plain users get counts and queue
    summaries; admins and operators also get machine names, worker ids and addresses."""

    machines: MachineCounts = Field(description="Machines up and down.")
    gpus: GpuCounts = Field(description="GPUs free and busy.")
    queues: list[QueueSummary] = Field(description="Every queue, by name.")
    machine_details: list[MachineSummary] | None = Field(
        default=None, description="Per machine (admins and operators only)."
    )
    at: datetime | None = Field(
        default=None, description="When the newest state was computed (None: no state yet)."
    )
