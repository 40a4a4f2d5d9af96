"""What one ingest copy carries: authenticated `POST /v1/enqueue` (published with acks=all) as
fast as ingest accepts them, against a bare FastAPI echo of the same body, in one run; then two
ingest copies sharing the load (and the quotas, counted in MongoDB); and one copy that counts
quotas in its own memory, to show what the shared counters cost.

Closed loop: `--concurrency` callers send `--count` requests each round; reports requests/s,
p50/p99 and errors for each target, and the ratio to the echo. Nothing but ingest runs (no
enqueuer): what is measured is the edge — token check, validation, quotas, idempotency-free
publish with acks=all.

    .venv/bin/python -m bench.ingest [--count 3000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from typing import Any

import aiohttp

from bench.enqueue import INPUT, TEMPLATE
from bench.harness import Stack, say, summary, wait_http, write_report
from mlbus.servers.process import free_port


async def blast(urls: list[str], token: str, body: Any, *, count: int, conc: int) -> dict[str, Any]:
    """`count` posts spread round-robin over `urls`, `conc` at a time, on fresh connections (a
    pooled one left idle past the server's keep-alive would be reset mid-round)."""
    headers = {"Authorization": f"Bearer {token}"}
    targets = itertools.cycle(urls)
    latencies: list[float] = []
    errors = 0
    left = iter(range(count))

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for _ in left:
            url = next(targets)
            started = time.perf_counter()
            async with session.post(f"{url}/v1/enqueue", json=body, headers=headers) as r:
                await r.read()
                if r.status == 202:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(caller(session) for _ in range(conc)))
        span = time.perf_counter() - started
    return {"rps": len(latencies) / span, "errors": errors, "ms": summary(latencies)}


async def run(args: argparse.Namespace) -> None:
    stack = Stack(profile=args.profile)
    await asyncio.to_thread(stack.start, ["ingest"])
    second = f"http://127.0.0.1:{free_port()}"
    stack.spawn(
        "ingest#2", "-m", "services.ingest", env={"MLBUS_INGEST_PORT": second.rsplit(":", 1)[1]}
    )
    local = f"http://127.0.0.1:{free_port()}"
    stack.spawn(
        "ingest#local",
        "-m",
        "services.ingest",
        env={"MLBUS_INGEST_PORT": local.rsplit(":", 1)[1], "MLBUS_INGEST_SHARED_QUOTAS": "false"},
    )
    echo_port = free_port()
    stack.spawn("echo", "-m", "bench.echo", str(echo_port))
    echo = f"http://127.0.0.1:{echo_port}"
    await asyncio.to_thread(wait_http, f"{second}/readyz")
    await asyncio.to_thread(wait_http, f"{local}/readyz")
    await asyncio.to_thread(wait_http, f"{echo}/readyz")
    admin, user = stack.token("admin", ["RootAdmin"]), stack.token("alice", ["Manager"])
    targets = {
        "echo": [echo],
        "ingest x1": [stack.ingest_url],
        "ingest x2": [stack.ingest_url, second],
        # one copy counting quotas in its own memory: what the shared counters cost
        "x1 local-q": [local],
    }
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in targets}
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(
                f"{stack.ingest_url}/v1/admin/task-mappings",
                json={"clearml_task_id": TEMPLATE, "default_queue": "gpu-a100"},
                headers={"Authorization": f"Bearer {admin}"},
            ) as r:
                body = {"task_id": (await r.json())["task_id"], "input": INPUT}
            for urls in targets.values():  # warm-up: connections, the token cache
                await blast(urls, user, body, count=300, conc=args.concurrency)
            say(
                f"{'round':<6} {'target':<10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'errors':>6}"
            )
            for i in range(args.rounds):  # interleaved, so noise hits every target alike
                for name, urls in targets.items():
                    res = await blast(urls, user, body, count=args.count, conc=args.concurrency)
                    results[name].append(res)
                    ms = res["ms"]
                    say(
                        f"{i + 1:<6} {name:<10} {res['rps']:8.0f} {ms['p50']:7.1f} "
                        f"{ms['p99']:7.1f} {res['errors']:6d}"
                    )
    finally:
        await asyncio.to_thread(stack.stop)
    median = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    p99 = {k: statistics.median(r["ms"]["p99"] for r in v) for k, v in results.items()}
    say("medians over rounds:")
    for name in targets:
        say(
            f"  {name:<10} {median[name]:8.0f} req/s  p99 {p99[name]:6.1f} ms  "
            f"ratio to echo {median[name] / median['echo']:.2f}"
        )
    report = {"args": vars(args), "runs": results, "median_rps": median, "median_p99_ms": p99}
    say(f"raw numbers: {write_report('ingest', report)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", nargs="*", default=[], help="services to run under cProfile")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
