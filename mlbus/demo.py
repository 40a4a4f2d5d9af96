"""First-run demo content: map the simulator's demo templates and show how to call them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from clearml_sim.demo import DEMO_TEMPLATE_IDS
from mlbus.devissuer import DEV_USERS, SigningKey

DEMO_MAPPINGS = {
    "parking-occupancy-train": ("gpu-a100", ["gpu-t4", "auto"]),
    "traffic-flow-forecast": ("gpu-t4", ["gpu-a100", "auto"]),
    "always-fails-demo": ("gpu-a100", []),
}


def dev_token(key_path: Path, issuer: str, user: str) -> str:
    """A token for one of the dev users, signed with the local issuer's key."""
    return SigningKey.load_or_create(key_path).sign(issuer, user, DEV_USERS[user][1])


def seed_demo(ingest: str, issuer: str, key_path: Path, say: Callable[[str], None]) -> None:
    """Map the demo templates once (later runs find them mapped) and print a first request."""
    admin = {"Authorization": f"Bearer {dev_token(key_path, issuer, 'admin')}"}
    existing = httpx.get(f"{ingest}/v1/admin/task-mappings", headers=admin, timeout=10).json()
    mapped = {m["clearml_task_id"]: m["task_id"] for m in existing}
    for name, (queue, allowed) in DEMO_MAPPINGS.items():
        real = DEMO_TEMPLATE_IDS[name]
        if real not in mapped:
            body = {
                "clearml_task_id": real,
                "default_queue": queue,
                "allowed_queues": [q for q in allowed if q != "auto"],
                "description": name,
            }
            response = httpx.post(f"{ingest}/v1/admin/task-mappings", json=body, headers=admin)
            response.raise_for_status()
            mapped[real] = response.json()["task_id"]
    parking = mapped[DEMO_TEMPLATE_IDS["parking-occupancy-train"]]
    say("  demo task 'parking-occupancy-train' is mapped as " + parking)
    say("  try it:")
    say("    TOKEN=$(.venv/bin/mlbus token alice)")
    say(
        f'    curl -s -X POST {ingest}/v1/enqueue -H "Authorization: Bearer $TOKEN" '
        f'-H \'content-type: application/json\' -d \'{{"task_id": "{parking}", '
        '"input": {"lr": 0.01}}\''
    )
    say(f'    curl -s {ingest}/v1/requests/<request_id> -H "Authorization: Bearer $TOKEN"')
