"""First-run demo content: map the simulator's demo templates and show how to call them."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from clearml_sim.demo import DEMO_TEMPLATE_IDS
from mlbus.devissuer import DEV_USERS
from mlbus.servers.keycloak import password_grant

#: The demo serving node stands for a ClearML Serving service task with this id.
DEMO_SERVING_TASK = "5e7f0c1d9a2b4c3d8e6f7a1b2c3d4e5f"
DEMO_SERVING_URL = "http://127.0.0.1:8080/serve"

DEMO_MAPPINGS = {
    "parking-occupancy-train": ("gpu-a100", ["gpu-t4", "auto"]),
    "traffic-flow-forecast": ("gpu-t4", ["gpu-a100", "auto"]),
    "always-fails-demo": ("gpu-a100", []),
}


def dev_token(realm_url: str, user: str) -> str:
    """A real token for one of the local realm's users, from the stack's Keycloak by the
    password grant (TokenError when Keycloak does not answer: the stack is not up)."""
    return password_grant(realm_url, user, DEV_USERS[user][0])


def seed_demo(ingest: str, realm_url: str, say: Callable[[str], None]) -> None:
    """Map the demo templates once (later runs find them mapped) and print a first request."""
    admin = {"Authorization": f"Bearer {dev_token(realm_url, 'admin')}"}
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
    machine = _seed_serving(ingest, admin)
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
    say(f"  demo model 'parking_free_slots' is served by machine {machine}; call it:")
    call = (
        f'{{"machine_id": "{machine}", "endpoint": "parking_free_slots", "input": '
        '{"capacity": 120, "hour": 18, "weekday": 2, "temperature_c": 14.5, "rain_mm": 0.0, '
        '"event_nearby": false}}'
    )
    say(
        f'    curl -s -X POST {ingest}/v1/ondemand -H "Authorization: Bearer $TOKEN" '
        f"-H 'content-type: application/json' -d '{call}'"
    )


def _seed_serving(ingest: str, admin: dict[str, str]) -> str:
    """Map the demo serving node (once) and its parking endpoint; the opaque machine id back."""
    machines = httpx.get(f"{ingest}/v1/admin/serving-machines", headers=admin, timeout=10).json()
    found = [m["machine_id"] for m in machines if m["serving_task_id"] == DEMO_SERVING_TASK]
    if found:
        return str(found[0])
    body = {
        "serving_task_id": DEMO_SERVING_TASK,
        "base_urls": [DEMO_SERVING_URL],
        "description": "demo serving node (parking free slots)",
    }
    response = httpx.post(f"{ingest}/v1/admin/serving-machines", json=body, headers=admin)
    response.raise_for_status()
    machine = str(response.json()["machine_id"])
    endpoint = {"machine_id": machine, "endpoint": "parking_free_slots", "timeout_s": 10}
    httpx.post(
        f"{ingest}/v1/admin/endpoint-mappings", json=endpoint, headers=admin
    ).raise_for_status()
    return machine
