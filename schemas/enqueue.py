"""Enqueue: a flow author asks to run a ClearML template task with their parameters."""

from __future__ import annotations

from pydantic import Field

from schemas.base import JSONValue, Model


class EnqueueTask(Model):
    """Command: clone the mapped template, write `input` into its hyperparameters, enqueue it.

    Ingest has already resolved the opaque id and the queue; the enqueuer trusts them.
    """

    task_id: str = Field(
        description="Opaque id of the task mapping.", examples=["3b1f0e3c9d2a4e5f8a7b6c5d4e3f2a1b"]
    )
    template_task_id: str = Field(
        description="Real ClearML id of the template (internal; never shown to users).",
        examples=["ee28605ba52eca2f944da36b799378d3"],
    )
    queue_name: str = Field(description="ClearML queue to enqueue on.", examples=["gpu-a100"])
    input: dict[str, JSONValue] = Field(
        default_factory=dict,
        description="Parameters; 'lr' goes to section General, 'Args/batch_size' to Args.",
        examples=[{"lr": 0.01, "Args/batch_size": 64}],
    )
    queue_choice: str | None = Field(
        default=None,
        description="Why ingest chose this queue when the user asked for 'auto' (None: the "
        "user named it, or it is the mapping's default); shown on the request's timeline.",
        examples=["auto: gpu-t4 has 1 free GPU now"],
    )


def empty_parameter_key(data: dict[str, JSONValue]) -> str | None:
    """The first key of `input` that would give ClearML a parameter with an empty section or
    name ("/lr", "Args/", "", or "" inside a section object), which it refuses (400/12); None
    when every key maps to a section and a name."""
    for key, value in data.items():
        section, slash, name = key.partition("/")
        if slash and (not section.strip() or not name.strip()):
            return key
        if not key.strip():
            return key
        if not slash and isinstance(value, dict):
            bad = next((sub for sub in value if not sub.strip()), None)
            if bad is not None:
                return f"{key}/{bad}"
    return None
