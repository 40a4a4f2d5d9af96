"""Logs as CSV: one row per request, the columns both paths share plus each path's own. Shared:
ingest streams it (`/v1/admin/logs.csv`), the console writes its exports with it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from schemas.admin import LogEntry

COLUMNS = (
    "path",
    "request_id",
    "accepted_at",
    "user",
    "target",
    "status",
    "error",
    "latency_ms",
    "queue",
    "http_status",
    "error_code",
)


#: A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return neutralised(str(value))


def neutralised(text: str) -> str:
    """A cell no spreadsheet runs: one that starts like a formula gets a leading quote (the
    text, e.g. a ClearML error a user wrote, is shown as it was). Every cell goes through here,
    whatever its column, so a new column cannot forget it."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def row(entry: LogEntry) -> list[str]:
    """One log as CSV cells, in COLUMNS order (`latency_ms` is the total)."""
    values = entry.model_dump()
    values["latency_ms"] = entry.latency_ms.get("total")
    return [_cell(values.get(c)) for c in COLUMNS]


def lines(entries: Iterable[LogEntry], *, header: bool) -> str:
    """CSV text of some logs (RFC 4180 quoting, CRLF line ends), with the header first if asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(row(e) for e in entries)
    return out.getvalue()
