"""The demo seed: queues, a project, template tasks and agents, with ids stable across restarts.

Template ids are derived from their names, so the local stack can map them once and find them
again after any restart. ``DEMO_TEMPLATE_IDS`` lists them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from clearml_sim import projects, queues, tasks
from clearml_sim.status import COMPLETED, IN_PROGRESS, change_status

if TYPE_CHECKING:
    from clearml_sim.simulator import Simulator

DEMO_PROJECT = "mlbus-demo"


def stable_id(kind: str, name: str) -> str:
    """A fixed 32-hex id for a demo object."""
    return hashlib.sha256(f"mlbus-demo/{kind}/{name}".encode()).hexdigest()[:32]


DEMO_QUEUES: tuple[tuple[str, list[str]], ...] = (
    ("default", ["default"]),
    ("gpu-a100", []),
    ("gpu-t4", []),
    ("cpu", []),
)
# (worker id, queues by priority, gpus)
DEMO_AGENTS: tuple[tuple[str, list[str], int], ...] = (
    ("gpu-box-01:gpu0", ["gpu-a100"], 2),
    ("gpu-box-02:gpu0", ["gpu-a100"], 2),
    ("t4-box-01:gpu0", ["gpu-t4", "default"], 1),
)
DEMO_TEMPLATES = ("parking-occupancy-train", "traffic-flow-forecast", "always-fails-demo")
DEMO_TEMPLATE_IDS = {name: stable_id("task", name) for name in DEMO_TEMPLATES}
DEMO_QUEUE_IDS = {name: stable_id("queue", name) for name, _ in DEMO_QUEUES}


def _hp(section: str, name: str, value: Any, type_: str, description: str = "") -> dict[str, Any]:
    return {
        "section": section,
        "name": name,
        "value": str(value),
        "type": type_,
        "description": description,
    }


def _hyperparams(duration: float, items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in [*items, _hp("Sim", "duration_s", duration, "float", "simulated run time")]:
        out.setdefault(item["section"], {})[item["name"]] = item
    return out


def _templates(base: float) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (
            "parking-occupancy-train",
            "Train the parking occupancy model (Snap4City car parks).",
            _hyperparams(
                base,
                [
                    _hp("General", "lr", 0.001, "float"),
                    _hp("General", "epochs", 10, "int"),
                    _hp("Args", "batch_size", 32, "int", "argparse"),
                ],
            ),
        ),
        (
            "traffic-flow-forecast",
            "Forecast traffic flow per road sensor.",
            _hyperparams(
                base * 2,
                [
                    _hp("General", "lr", 0.01, "float"),
                    _hp("General", "epochs", 20, "int"),
                    _hp("General", "horizon_min", 30, "int"),
                    _hp("Args", "batch_size", 64, "int", "argparse"),
                ],
            ),
        ),
        (
            "always-fails-demo",
            "A template whose runs always fail, to exercise failure notifications.",
            _hyperparams(
                min(base, 1.0),
                [
                    _hp("General", "lr", 0.1, "float"),
                    _hp("Sim", "fail", "true", "bool"),
                    _hp(
                        "Sim",
                        "fail_message",
                        "CUDA out of memory. Tried to allocate 2.50 GiB (simulated failure)",
                        "str",
                    ),
                ],
            ),
        ),
    ]


def seed(sim: Simulator) -> None:
    """Create the demo world in an empty simulator."""
    state = sim.state
    for name, system_tags in DEMO_QUEUES:
        queues.create_queue(state, name, queue_id=DEMO_QUEUE_IDS[name], system_tags=system_tags)
    project = projects.create_project(
        state, DEMO_PROJECT, project_id=stable_id("project", DEMO_PROJECT)
    )
    for name, comment, hyperparams in _templates(sim.config.task_duration_s):
        doc = tasks.create_task(
            state,
            name,
            id=DEMO_TEMPLATE_IDS[name],
            comment=comment,
            project=project["id"],
            hyperparams=hyperparams,
            script={
                "repository": "https://github.com/mlbus/demo-models.git",
                "branch": "main",
                "entry_point": f"{name.replace('-', '_')}.py",
                "working_dir": ".",
            },
            container={"image": "nvcr.io/nvidia/pytorch:24.10-py3", "arguments": ""},
        )
        state.set_tags(doc, "tags", ["template", "demo"])
        # templates are tasks that ran once, as in a real ClearML project
        change_status(state, doc, IN_PROGRESS, force=True)
        change_status(state, doc, COMPLETED, force=True, message="template run")
    for worker, queue_names, gpus in DEMO_AGENTS:
        sim.agents.add(worker, queue_names, gpus=gpus)
