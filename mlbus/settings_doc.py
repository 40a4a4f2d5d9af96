"""The README's settings tables, written from the settings models so they cannot drift.

`python -m mlbus.settings_doc` rewrites the part of README.md between the two markers;
`--check` only says whether it is up to date (tests/unit/test_settings.py runs the same check).
"""

from __future__ import annotations

import json
import os
import socket

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from mlbus.readme_part import Part
from runtime.clearml import ClearMLSettings
from runtime.settings import SHARED_PREFIX, BusSettings
from services.agent.settings import AgentSettings
from services.console.settings import ConsoleSettings
from services.enqueuer.settings import EnqueuerSettings
from services.inference_router.settings import InferenceRouterSettings
from services.ingest.settings import IngestSettings
from services.logger.settings import LoggerSettings
from services.monitor.settings import MonitorSettings
from services.notifier.settings import NotifierSettings

BEGIN = "<!-- settings:begin (written by `python -m mlbus.settings_doc`: edit the models) -->"
END = "<!-- settings:end -->"
SERVICES: tuple[type[BaseSettings], ...] = (
    IngestSettings,
    ConsoleSettings,
    EnqueuerSettings,
    InferenceRouterSettings,
    MonitorSettings,
    NotifierSettings,
    LoggerSettings,
    AgentSettings,
)


def default_text(field: FieldInfo) -> str:
    """The default as a person sets it in the environment (JSON for lists and maps)."""
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if "://" not in secret:  # a key or password: its local value says nothing useful
            return "a dev value" if secret else "empty"
        value = secret
    if value is None:
        return "none"
    if isinstance(value, str):
        if field.default_factory is not None:  # the host's name, and the process id
            value = value.replace(socket.gethostname(), "<host>").replace(str(os.getpid()), "<pid>")
        return f"`{value}`" if value else "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{int(value) if float(value).is_integer() else value}`"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{json.dumps(value, default=list, ensure_ascii=False, separators=(',', ':'))}`"


def _row(name: str, field: FieldInfo) -> str:
    what = " ".join((field.description or "").split()).replace("|", "\\|")
    return f"| `{name}` | {default_text(field)} | {what} |"


def _table(rows: list[str]) -> list[str]:
    return ["| variable | default | what |", "|---|---|---|", *rows]


def render() -> str:
    """The text between the markers."""
    shared_bus = sorted(BusSettings.shared_fields)
    shared_clearml = sorted(ClearMLSettings.shared_fields - BusSettings.shared_fields)
    out = [
        "Connections, and what a pod sets once for its one process, are read from the service's "
        f"own prefix first (`MLBUS_ENQUEUER_KAFKA_BOOTSTRAP`), then from `{SHARED_PREFIX}` "
        f"(`{SHARED_PREFIX}KAFKA_BOOTSTRAP`), which the local stack and the Kubernetes manifests "
        "set once for every service:",
        "",
        *_table([_row(SHARED_PREFIX + n.upper(), BusSettings.model_fields[n]) for n in shared_bus]),
        "",
        "The enqueuer and the monitor also read ClearML's connection this way:",
        "",
        *_table(
            [
                _row(SHARED_PREFIX + n.upper(), ClearMLSettings.model_fields[n])
                for n in shared_clearml
            ]
        ),
        "",
        "Every other setting belongs to one service and is read from its prefix only (so "
        f"`{SHARED_PREFIX}GROUP` names no consumer group); the console reads only its own. Lists "
        "and maps are JSON.",
    ]
    for model in SERVICES:
        prefix = str(model.model_config.get("env_prefix", ""))
        shared: frozenset[str] = getattr(model, "shared_fields", frozenset())
        rows = [
            _row(prefix + name.upper(), field)
            for name, field in model.model_fields.items()
            if name not in shared
        ]
        service = prefix.removeprefix(SHARED_PREFIX).rstrip("_").lower()
        out += [
            "",
            f"<details><summary><b>{service}</b> (<code>{prefix}…</code>): "
            f"{len(rows)} settings</summary>",
            "",
            *_table(rows),
            "",
            "</details>",
        ]
    return "\n".join(out)


PART = Part("mlbus.settings_doc", "settings", BEGIN, END, render)


def rewritten(readme: str) -> str:
    """`readme` with the generated part replaced."""
    return PART.rewritten(readme)


def main(argv: list[str] | None = None) -> int:
    return PART.main(argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
