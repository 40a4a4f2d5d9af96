"""Enqueue through mlbus vs the same ClearML calls made directly, in one run.

mlbus path: HTTP `POST /v1/enqueue` accepted by ingest → Kafka → enqueuer → ClearML simulator
(clone, hyperparameters, enqueue) → logged. Baseline: a plain async client making the same three
calls against the same simulator. Reports requests/s, p50/p95/p99 of each step, the ratio to the
baseline, and requests lost or duplicated (both must be 0).

    .venv/bin/python -m bench.enqueue [--bursts 1000 10000] [--rates 100 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from bench.harness import Stack, paced, say, summary, write_report
from clearml_sim.demo import DEMO_TEMPLATE_IDS
from schemas.codec import decode
from schemas.topics import TASK_EVENTS

TEMPLATE = DEMO_TEMPLATE_IDS["parking-occupancy-train"]
INPUT = {"lr": 0.01, "Args/batch_size": 64}


async def post_requests(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    task_id: str,
    *,
    count: int,
    concurrency: int,
    rate: float | None,
) -> list[str]:
    """Send `count` enqueue requests (closed loop, or open loop at `rate`/s); request ids back."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"task_id": task_id, "input": INPUT}
    gate, ids = asyncio.Semaphore(concurrency), []

    async def one(_: int) -> None:
        async with gate, session.post(f"{url}/v1/enqueue", json=body, headers=headers) as r:
            assert r.status == 202, await r.text()
            ids.append((await r.json())["request_id"])

    await paced(count, rate, one)
    return ids


async def wait_logged(
    stack: Stack, db: Any, ids: list[str], timeout_s: float
) -> list[dict[str, Any]]:
    """Until a task event says each request was enqueued (or failed); then their log documents.
    Completion comes from the bus, so the benchmark adds no load to the store while it runs."""
    consumer = AIOKafkaConsumer(
        TASK_EVENTS.name, bootstrap_servers=stack.kafka.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    waiting, deadline = set(ids), time.monotonic() + timeout_s
    try:
        while waiting and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    waiting.discard(decode(TASK_EVENTS, record.value).payload.request_id)
    finally:
        await consumer.stop()
    docs: list[dict[str, Any]] = await db["enqueue_logs"].find({"_id": {"$in": ids}}).to_list()
    return docs


def mlbus_stats(docs: list[dict[str, Any]], sent: int) -> dict[str, Any]:
    queued = [d for d in docs if d["status"] == "queued"]
    accepted = [d["accepted_at"].timestamp() for d in queued]
    finished = [
        h["at"].timestamp() for d in queued for h in d["history"] if h["status"] == "queued"
    ]
    span = (max(finished) - min(accepted)) if queued else float("nan")
    steps = {
        k: summary([d["latency_ms"][k] for d in queued if k in d["latency_ms"]])
        for k in ("clone", "parameters", "enqueue", "total")
    }
    return {
        "sent": sent,
        "queued": len(queued),
        "failed": sent - len(queued),
        "throughput_rps": len(queued) / span if queued else 0.0,
        "steps_ms": steps,
    }


async def baseline(
    session: aiohttp.ClientSession,
    sim: str,
    count: int,
    concurrency: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """The same three ClearML calls per request, straight at the simulator."""
    async with session.get(
        f"{sim}/auth.login", auth=aiohttp.BasicAuth("mlbus-dev-access", "mlbus-dev-secret")
    ) as r:
        token = (await r.json())["data"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(
        f"{sim}/v2.23/queues.get_all", json={"name": "^gpu\\-a100$"}, headers=headers
    ) as r:
        queue = (await r.json())["data"]["queues"][0]["id"]
    steps: dict[str, list[float]] = {"clone": [], "parameters": [], "enqueue": [], "total": []}
    gate = asyncio.Semaphore(concurrency)

    async def call(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        async with session.post(f"{sim}/v2.23/{endpoint}", json=body, headers=headers) as r:
            data: dict[str, Any] = (await r.json())["data"]
            return data

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            clone = (
                await call(
                    "tasks.clone",
                    {
                        "task": TEMPLATE,
                        "new_task_name": f"b{i}",
                        "new_task_tags": [f"baseline:{i}"],
                    },
                )
            )["id"]
            t1 = time.perf_counter()
            await call(
                "tasks.edit_hyper_params",
                {
                    "task": clone,
                    "hyperparams": [
                        {"section": "General", "name": "lr", "value": "0.01", "type": "float"},
                        {"section": "Args", "name": "batch_size", "value": "64", "type": "int"},
                    ],
                },
            )
            t2 = time.perf_counter()
            await call(
                "tasks.enqueue", {"task": clone, "queue": queue, "verify_watched_queue": True}
            )
            t3 = time.perf_counter()
            for k, v in (
                ("clone", t1 - t0),
                ("parameters", t2 - t1),
                ("enqueue", t3 - t2),
                ("total", t3 - t0),
            ):
                steps[k].append(v * 1000)

    started = time.perf_counter()
    await paced(count, rate, one)
    span = time.perf_counter() - started
    return {
        "sent": count,
        "throughput_rps": count / span,
        "steps_ms": {k: summary(v) for k, v in steps.items()},
    }


async def duplicates(session: aiohttp.ClientSession, sim: str, ids: list[str]) -> dict[str, int]:
    """Clones per request id on the simulator: none missing, none doubled."""
    async with session.get(f"{sim}/_sim/tasks", params={"tag": "mlbus"}) as r:
        tasks = (await r.json())["tasks"]
    tags = [t for task in tasks for t in task.get("tags", []) if t.startswith("mlbus-request:")]
    per = dict.fromkeys(ids, 0)
    for tag in tags:
        rid = tag.split(":", 1)[1]
        if rid in per:
            per[rid] += 1
    return {
        "missing": sum(1 for n in per.values() if n == 0),
        "duplicated": sum(1 for n in per.values() if n > 1),
    }


def row(label: str, m: dict[str, Any], b: dict[str, Any]) -> str:
    mt, bt = m["steps_ms"]["total"], b["steps_ms"]["total"]
    return (
        f"{label:<18} {m['throughput_rps']:8.1f} {b['throughput_rps']:8.1f} "
        f"{m['throughput_rps'] / b['throughput_rps']:6.2f}  "
        f"{mt['p50']:7.1f} {mt['p95']:7.1f} {mt['p99']:7.1f}  "
        f"{bt['p50']:6.1f} {bt['p99']:6.1f}  lost={m['failed']}"
    )


async def run(args: argparse.Namespace) -> None:
    stack = Stack(profile=args.profile)
    services = ["ingest"] + [f"enqueuer#{i}" for i in range(args.enqueuers)]
    await asyncio.to_thread(stack.start, services)
    admin, user = stack.token("admin", ["RootAdmin"]), stack.token("alice", ["Manager"])
    report: dict[str, Any] = {"enqueuers": args.enqueuers, "runs": []}
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo.uri, tz_aware=True)
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(
                f"{stack.ingest_url}/v1/admin/task-mappings",
                json={"clearml_task_id": TEMPLATE, "default_queue": "gpu-a100"},
                headers={"Authorization": f"Bearer {admin}"},
            ) as r:
                task_id = (await r.json())["task_id"]
            plans: list[tuple[str, int, float | None]] = [
                (f"burst {n}", n, None) for n in args.bursts
            ]
            plans += [(f"rate {r}/s", int(r * args.seconds), float(r)) for r in args.rates]
            say(
                f"{'run':<18} {'mlbus/s':>8} {'base/s':>8} {'ratio':>6}  "
                f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  {'b p50':>6} {'b p99':>6}"
            )
            for label, count, rate in plans:
                cpu_before = stack.cpu_seconds()
                ids = await post_requests(
                    session,
                    stack.ingest_url,
                    user,
                    task_id,
                    count=count,
                    concurrency=args.concurrency,
                    rate=rate,
                )
                docs = await wait_logged(stack, mongo["mlbus"], ids, timeout_s=120 + count / 50)
                m = mlbus_stats(docs, count)
                cpu_after = stack.cpu_seconds()
                m["cpu_s"] = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in cpu_after.items()}
                m.update(await duplicates(session, stack.sim_url, ids))
                b = await baseline(session, stack.sim_url, count, args.concurrency, rate)
                report["runs"].append({"label": label, "mlbus": m, "baseline": b})
                say(row(label, m, b) + f" dup={m['duplicated']} missing={m['missing']}")
                say(
                    "  CPU seconds on the mlbus side: "
                    + ", ".join(
                        f"{k} {v}" for k, v in sorted(m["cpu_s"].items(), key=lambda kv: -kv[1])
                    )
                )
    finally:
        await mongo.close()
        await asyncio.to_thread(stack.stop)
    path = write_report("enqueue", report)
    say(f"steps and raw numbers: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bursts", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--rates", type=float, nargs="*", default=[100.0, 300.0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--enqueuers", type=int, default=1)
    parser.add_argument("--profile", nargs="*", default=[], help="services to run under cProfile")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
