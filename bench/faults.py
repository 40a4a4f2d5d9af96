"""The servers below mlbus taken away mid-burst, and what users saw: `python -m bench.faults`.

One stack (Kafka, FerretDB, the ClearML simulator, the dev issuer, the demo serving node, and
ingest, enqueuer, inference_router and logger as processes); for each fault, a burst of enqueues
and on-demand calls (`--rate` of each a second) runs from a few seconds before the fault until a
few seconds after the server serves again. Per fault and kind: requests sent, answered (by
status), unanswered, late, carried, lost (goal 0), duplicated (goal 0), and the time to recover
after the server is back (from when it serves again to the last request that failed).

Faults: Kafka stopped 10 s and 60 s, FerretDB stopped 10 s and 60 s, Kafka paused (SIGSTOP)
20 s. `--short` runs the 10 s stops and the pause only, `--long` the 60 s stops only.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.harness import Stack, say, wait_http, write_report
from clearml_sim.demo import DEMO_TEMPLATE_IDS
from mlbus.faultload import Burst, account, clones_per_request, model_calls
from mlbus.servers.outage import Kind, LocalServer, Outage
from mlbus.servers.process import free_port

FEATURES = {
    "capacity": 120,
    "hour": 3,
    "weekday": 2,
    "temperature_c": 10.0,
    "rain_mm": 0.0,
    "event_nearby": False,
}
PARKING = DEMO_TEMPLATE_IDS["parking-occupancy-train"]
ONDEMAND_TIMEOUT_S = 10.0
PUBLISH_TIMEOUT_S = 5.0  # ingest's default
FAULTS: list[tuple[str, str, Kind, float]] = [
    ("kafka stopped 10 s", "kafka", "stop", 10.0),
    ("ferretdb stopped 10 s", "mongo", "stop", 10.0),
    ("kafka paused 20 s", "kafka", "pause", 20.0),
    ("kafka stopped 60 s", "kafka", "stop", 60.0),
    ("ferretdb stopped 60 s", "mongo", "stop", 60.0),
]


async def _map(client: httpx.AsyncClient, stack: Stack, node_url: str) -> tuple[str, str]:
    admin = {"Authorization": f"Bearer {stack.token('admin', ['RootAdmin'])}"}
    task = await client.post(
        "/v1/admin/task-mappings",
        json={"clearml_task_id": PARKING, "default_queue": "gpu-a100"},
        headers=admin,
    )
    task.raise_for_status()
    machine = await client.post(
        "/v1/admin/serving-machines",
        json={"serving_task_id": "7a" * 16, "base_urls": [f"{node_url}/serve"]},
        headers=admin,
    )
    machine.raise_for_status()
    machine_id = machine.json()["machine_id"]
    endpoint = await client.post(
        "/v1/admin/endpoint-mappings",
        json={
            "machine_id": machine_id,
            "endpoint": "parking_free_slots",
            "timeout_s": ONDEMAND_TIMEOUT_S,
        },
        headers=admin,
    )
    endpoint.raise_for_status()
    return str(task.json()["task_id"]), str(machine_id)


async def _until_carried(
    client: httpx.AsyncClient, sim_url: str, accepted: set[str], timeout_s: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        clones = await clones_per_request(client, sim_url)
        if accepted <= clones.keys() or time.monotonic() > deadline:
            return clones
        await asyncio.sleep(0.5)


async def one_fault(
    stack: Stack,
    client: httpx.AsyncClient,
    ids: tuple[str, str],
    node_url: str,
    fault: tuple[str, str, Kind, float],
    *,
    rate: float,
) -> dict[str, Any]:
    """Run a burst across one outage; its counts."""
    name, which, kind, away_s = fault
    server: LocalServer = stack.kafka if which == "kafka" else stack.mongo
    burst = Burst(
        client,
        stack.token("alice", ["Manager"]),
        task_id=ids[0],
        machine_id=ids[1],
        endpoint="parking_free_slots",
        features=FEATURES,
        enqueue_bound_s=PUBLISH_TIMEOUT_S,
        ondemand_bound_s=ONDEMAND_TIMEOUT_S + 1.0,
    )
    stop = asyncio.Event()
    sending = asyncio.create_task(burst.run(rate, stop))
    await asyncio.sleep(3.0)
    outage = Outage(server, kind)
    await asyncio.to_thread(outage.begin)
    await asyncio.sleep(away_s)
    await asyncio.to_thread(outage.end)
    await asyncio.sleep(10.0)  # the burst goes on after the server is back
    stop.set()
    await sending
    accepted = burst.ids("enqueue", 202)
    clones = await _until_carried(client, stack.sim_url, accepted, 120.0)
    mine = {rid: n for rid, n in clones.items() if rid in burst.ids("enqueue")}
    calls = await model_calls(client, node_url, burst.ids("ondemand"))
    report: dict[str, Any] = {"fault": name, **account(burst, mine, calls)}
    failed = [
        o.sent_at
        for o in burst.outcomes
        if o.status not in (200, 202) and o.sent_at >= outage.began_at
    ]
    report["server_back_after_s"] = round(outage.away_s, 1)
    report["recovered_after_back_s"] = round(
        max([0.0, *(t - outage.serving_at for t in failed)]), 1
    )
    return report


def _row(report: dict[str, Any]) -> str:
    out = [
        f"{report['fault']}: server away {report['server_back_after_s']} s in all "
        f"(restart included); users saw failures until {report['recovered_after_back_s']} s "
        "after it was back"
    ]
    for kind in ("enqueue", "ondemand"):
        r = report[kind]
        out.append(
            f"  {kind:<9} sent {r['sent']:>4}  answered {r['answered']}  unanswered "
            f"{r['unanswered']}  late {r['late']}  carried {r['carried']}  lost {r['lost']}  "
            f"duplicated {r['duplicated']}  carried after a 503 {r['carried_after_503']}  "
            f"slowest {r['slowest_s']} s"
        )
    return "\n".join(out)


async def run(args: argparse.Namespace) -> None:
    stack = Stack()
    stack.extra_env["MLBUS_LOG_LEVEL"] = "ERROR"
    node_port = free_port()
    node_url = f"http://127.0.0.1:{node_port}"
    try:
        await asyncio.to_thread(stack.start, ["ingest", "enqueuer", "inference_router", "logger"])
        stack.spawn("serving-node", "-m", "serving_node", "--port", str(node_port))
        await asyncio.to_thread(wait_http, f"{node_url}/health")
        faults = FAULTS[:3] if args.short else FAULTS[3:] if args.long else FAULTS
        reports = []
        async with httpx.AsyncClient(base_url=stack.ingest_url, timeout=30) as client:
            ids = await _map(client, stack, node_url)
            for fault in faults:
                say(f"fault: {fault[0]} (rate {args.rate}/s of each kind)")
                report = await one_fault(stack, client, ids, node_url, fault, rate=args.rate)
                say(_row(report))
                reports.append(report)
        path = write_report("faults", {"rate": args.rate, "faults": reports})
        say(f"written: {path}")
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3.0, help="requests of each kind a second")
    parser.add_argument("--short", action="store_true", help="the 10 s stops and the pause only")
    parser.add_argument("--long", action="store_true", help="the 60 s stops only")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
