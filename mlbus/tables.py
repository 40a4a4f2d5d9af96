"""Tables for people: what `mlbus mappings|machines|endpoints list` print (`--json` keeps the
API's JSON for scripts).

Opaque ids are shortened to their first characters (enough to tell them apart in a list; `rm`
and the API take the full id, which `--json` prints); long cells are cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

ID_CHARS = 12
CELL_MAX = 48

Row = dict[str, Any]
Column = tuple[str, Callable[[Row], str]]


def short_id(value: object) -> str:
    """An opaque id cut to ID_CHARS characters, with an ellipsis when cut."""
    text = str(value or "")
    return text if len(text) <= ID_CHARS else text[:ID_CHARS] + "…"


def _cell(text: str) -> str:
    flat = " ".join(text.split())  # a description's newlines would break the table
    return flat if len(flat) <= CELL_MAX else flat[: CELL_MAX - 1] + "…"


def _joined(values: object) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) else ""


def _day(value: object) -> str:
    return str(value or "")[:10]


COLUMNS: dict[str, list[Column]] = {
    "task-mappings": [
        ("TASK ID", lambda r: short_id(r.get("task_id"))),
        ("DEFAULT QUEUE", lambda r: str(r.get("default_queue", ""))),
        ("ALLOWED QUEUES", lambda r: _joined(r.get("allowed_queues"))),
        ("DESCRIPTION", lambda r: str(r.get("description", ""))),
        ("CREATED", lambda r: _day(r.get("created_at"))),
    ],
    "serving-machines": [
        ("MACHINE ID", lambda r: short_id(r.get("machine_id"))),
        ("REPLICAS", lambda r: str(len(r.get("base_urls") or []))),
        ("DESCRIPTION", lambda r: str(r.get("description", ""))),
        ("CREATED", lambda r: _day(r.get("created_at"))),
    ],
    "endpoint-mappings": [
        ("MACHINE ID", lambda r: short_id(r.get("machine_id"))),
        ("ENDPOINT", lambda r: str(r.get("endpoint", ""))),
        ("TIMEOUT S", lambda r: f"{float(r.get('timeout_s') or 0):g}"),
        ("CREATED", lambda r: _day(r.get("created_at"))),
    ],
}


def render(kind: str, rows: Sequence[Row]) -> str:
    """The rows of one admin collection as an aligned text table (a line when there are none)."""
    if not rows:
        return "(none)"
    columns = COLUMNS[kind]
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    heads = [name for name, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = [heads, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
