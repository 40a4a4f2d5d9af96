"""The README's "Data flow" tables, written from the topic registry (`schemas/topics.py`): every
topic with its key, partitions, payload, writers and readers, and every service with what it
reads and writes. tests/unit/test_dataflow.py checks the registry's writers and readers against
the services' code, and the README against the registry.

`python -m mlbus.dataflow_doc` rewrites the part of README.md between the two markers; `--check`
only says whether it is current.
"""

from __future__ import annotations

from mlbus.readme_part import Part
from schemas.topics import REGISTRY, REPLY_TEMPLATE, TopicSpec

BEGIN = "<!-- dataflow:begin (written by `python -m mlbus.dataflow_doc` from schemas/topics.py) -->"
END = "<!-- dataflow:end -->"
TOPICS: tuple[TopicSpec, ...] = (*REGISTRY, REPLY_TEMPLATE)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none in mlbus"


def render() -> str:
    """The two tables, as Markdown."""
    out = [
        "| topic | key | partitions | carries | written by | read by |",
        "|---|---|---|---|---|---|",
    ]
    for t in TOPICS:
        kept = "compacted" if t.compacted else ""
        partitions = f"{t.partitions}{' (' + kept + ')' if kept else ''}"
        out.append(
            f"| `{t.name}` | {t.key} | {partitions} | `{t.payload.__name__}` "
            f"| {_names(t.producers)} | {_names(t.consumers)} |"
        )
    services = sorted({s for t in TOPICS for s in (*t.producers, *t.consumers)})
    out += ["", "| service | reads | writes |", "|---|---|---|"]
    for service in services:
        reads = [f"`{t.name}`" for t in TOPICS if service in t.consumers]
        writes = [f"`{t.name}`" for t in TOPICS if service in t.producers]
        out.append(f"| {service} | {', '.join(reads) or '—'} | {', '.join(writes) or '—'} |")
    return "\n".join(out)


PART = Part("mlbus.dataflow_doc", "data flow tables", BEGIN, END, render)


def main(argv: list[str] | None = None) -> int:
    return PART.main(argv, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
