"""Projects: just enough for ``new_project_name`` clones and the SDK's name lookups."""

from __future__ import annotations

from clearml_sim.state import Doc, SimState, new_id
from clearml_sim.timeutil import iso


def create_project(
    state: SimState, name: str, *, project_id: str | None = None, description: str = ""
) -> Doc:
    """Store a project document."""
    stamp = iso(state.clock())
    doc: Doc = {
        "id": project_id or new_id(),
        "name": name,
        "basename": name.rsplit("/", 1)[-1],
        "description": description,
        "user": state.config.user_id,
        "company": state.config.company_id,
        "created": stamp,
        "last_update": stamp,
        "tags": [],
        "system_tags": [],
        "default_output_destination": None,
    }
    state.projects[doc["id"]] = doc
    return doc


def ensure_project(state: SimState, name: str) -> Doc:
    """The project called ``name``, created when missing."""
    for doc in state.projects.values():
        if doc["name"] == name:
            return doc
    return create_project(state, name)
