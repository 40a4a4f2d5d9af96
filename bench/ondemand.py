"""On-demand inference: the same load sent straight to the serving node and through mlbus.

Same client (aiohttp), same model (parking_free_slots on the demo serving node), in one run:
closed loop, then fixed rates. Reports p50/p95/p99 of each path, the latency mlbus adds, the
highest rate whose p99 through mlbus stays under 100 ms, and lost replies (must be 0). Each
load is then sent, at the same rate, through a second ingest copy that counts quotas in its own
memory (`MLBUS_INGEST_SHARED_QUOTAS=false`): the difference is what the quotas shared in MongoDB
add (the issue's bound: p99 at 200/s at most 12 ms more). The two copies take turns, `--rounds`
rounds each in ABBA order, so that both see the same machine. `--pause-logger` freezes the
logger after the warm-up (the calls' logs wait in Kafka): run with and without it, it shows what
folding the logs into FerretDB during the run costs the calls.

    .venv/bin/python -m bench.ondemand [--rates 50 200 500] [--seconds 10] [--closed 2000]
        [--warmup 30] [--rounds 4] [--pause-logger] [--otlp]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import aiohttp
from pymongo import MongoClient

from bench.harness import Stack, paced, say, summary, wait_http, write_report
from mlbus.servers.process import free_port
from schemas.collections import ONDEMAND_LOGS

FEATURES = {
    "capacity": 120,
    "hour": 18,
    "weekday": 2,
    "temperature_c": 14.5,
    "rain_mm": 0.0,
    "event_nearby": False,
}
SERVICE_TASK = "5e7f0c1d9a2b4c3d8e6f7a1b2c3d4e5f"


async def map_demo_endpoint(
    session: aiohttp.ClientSession, stack: Stack, admin: dict[str, str], node_port: int
) -> str:
    """Map the demo serving node and its parking_free_slots endpoint; the machine's opaque id.
    A mapping left by an earlier run on the same data (bench.console --data), which names that
    run's node, is removed first."""
    async with session.get(f"{stack.ingest_url}/v1/admin/serving-machines", headers=admin) as r:
        earlier = [m for m in await r.json() if m.get("serving_task_id") == SERVICE_TASK]
    for old in earlier:
        gone = f"{stack.ingest_url}/v1/admin/endpoint-mappings/{old['machine_id']}"
        async with session.delete(f"{gone}/parking_free_slots", headers=admin):
            pass
        gone = f"{stack.ingest_url}/v1/admin/serving-machines/{old['machine_id']}"
        async with session.delete(gone, headers=admin):
            pass
    async with session.post(
        f"{stack.ingest_url}/v1/admin/serving-machines",
        headers=admin,
        json={
            "serving_task_id": SERVICE_TASK,
            "base_urls": [f"http://127.0.0.1:{node_port}/serve"],
        },
    ) as r:
        machine: str = (await r.json())["machine_id"]
    async with session.post(
        f"{stack.ingest_url}/v1/admin/endpoint-mappings",
        headers=admin,
        json={"machine_id": machine, "endpoint": "parking_free_slots", "timeout_s": 10},
    ):
        pass
    return machine


async def drive(
    session: aiohttp.ClientSession, call: Any, count: int, rate: float | None, concurrency: int
) -> tuple[list[float], int]:
    """Latencies (ms) of successful calls, and the number that failed."""
    latencies, failed = [], 0
    gate = asyncio.Semaphore(concurrency)

    async def one(_: int) -> None:
        nonlocal failed
        async with gate:
            started = time.perf_counter()
            try:
                ok = await call(session)
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failed += 1

    await paced(count, rate, one)
    return latencies, failed


class _OtlpSink(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that takes every export and keeps nothing (`--otlp`): the cost
    measured is mlbus making, encoding and sending its spans, not a collector's."""

    received: ClassVar[list[int]] = [0, 0]  # exports, bytes

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        self.rfile.read(size)
        _OtlpSink.received[0] += 1
        _OtlpSink.received[1] += size
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def _otlp_sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _OtlpSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1/traces"


async def run(args: argparse.Namespace) -> None:
    stack = Stack(profile=args.profile)
    if args.otlp:
        stack.extra_env["MLBUS_OTLP_ENDPOINT"] = _otlp_sink()
        say(f"tracing on: spans exported to {stack.extra_env['MLBUS_OTLP_ENDPOINT']}")
    node_port = free_port()
    # the logger writes the calls' logs (`ondemand_logs`), which `split` reads
    await asyncio.to_thread(stack.start, ["ingest", "inference_router", "logger"])
    local_url = f"http://127.0.0.1:{free_port()}"
    stack.spawn(  # the same ingest, its quotas counted in its own memory
        "ingest#local",
        "-m",
        "services.ingest",
        env={
            "MLBUS_INGEST_PORT": local_url.rsplit(":", 1)[1],
            "MLBUS_INGEST_SHARED_QUOTAS": "false",
        },
    )
    await asyncio.to_thread(wait_http, f"{local_url}/readyz")
    stack.spawn("serving-node", "-m", "serving_node", "--port", str(node_port))
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{node_port}/health")
    admin = {"Authorization": f"Bearer {stack.token('admin', ['RootAdmin'])}"}
    user = {"Authorization": f"Bearer {stack.token('alice', ['Manager'])}"}
    direct_url = f"http://127.0.0.1:{node_port}/serve/parking_free_slots"
    report: dict[str, Any] = {"runs": []}
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            machine = await map_demo_endpoint(session, stack, admin, node_port)
            body = {"machine_id": machine, "endpoint": "parking_free_slots", "input": FEATURES}

            async def direct(s: aiohttp.ClientSession) -> bool:
                async with s.post(direct_url, json=FEATURES) as r:
                    await r.read()
                    return r.status == 200

            async def through(s: aiohttp.ClientSession) -> bool:
                async with s.post(f"{stack.ingest_url}/v1/ondemand", json=body, headers=user) as r:
                    await r.read()
                    return r.status == 200

            async def local(s: aiohttp.ClientSession) -> bool:
                async with s.post(f"{local_url}/v1/ondemand", json=body, headers=user) as r:
                    await r.read()
                    return r.status == 200

            # Warm-up: connections, caches, and above all the broker's JIT. A fresh JVM spends
            # its first ~30 s compiling (measured: 4.4 ms of broker CPU per round trip in the
            # first 10 s, 1.2 ms from 30 s on); a production broker has long been warm.
            await drive(session, through, int(args.warmup * 100), 100.0, args.concurrency)
            await drive(session, local, 500, 100.0, args.concurrency)
            await drive(session, direct, 200, None, 8)
            sent = int(args.warmup * 100) + 500  # calls through mlbus: each gets one log
            plans = [("closed loop", args.closed, None)] + [
                (f"{r:g}/s", int(r * args.seconds), float(r)) for r in args.rates
            ]
            say(
                f"{'run':<12} {'direct p50/p95/p99 ms':>24} {'mlbus p50/p95/p99 ms':>24} "
                f"{'added p50/p99':>14} {'lost':>5} {'shared-q p99 +ms':>16}"
            )
            logger = next(c for c in stack.children if c.name == "logger")
            if args.pause_logger:
                logger.pause()
                say("the logger is paused (SIGSTOP) from here: calls' logs wait in Kafka")
            for label, count, rate in plans:
                d, d_failed = await drive(session, direct, count, rate, args.concurrency)
                # The two ingest copies take turns, round by round in ABBA order, so that both
                # share whatever else the machine does meanwhile (the logger folding the calls
                # before, above all): one after the other, the first absorbed the backlog.
                if not args.pause_logger:
                    await asyncio.to_thread(settle, stack.mongo.uri, sent, 30.0)
                cpu_before = stack.cpu_seconds()
                since = datetime.now(UTC)
                m: list[float] = []
                q: list[float] = []
                m_failed = q_failed = 0
                rounds = max(1, args.rounds)
                for r in range(rounds):
                    n = count // rounds + (1 if r < count % rounds else 0)
                    for which in "mq" if r % 2 == 0 else "qm":
                        via = through if which == "m" else local
                        lat, failed = await drive(session, via, n, rate, args.concurrency)
                        if which == "m":
                            m, m_failed = m + lat, m_failed + failed
                        else:
                            q, q_failed = q + lat, q_failed + failed
                cpu = {
                    k: round(v - cpu_before.get(k, 0.0), 2) for k, v in stack.cpu_seconds().items()
                }
                split_ms = (
                    {}
                    if args.pause_logger
                    else await asyncio.to_thread(
                        split, stack.mongo.uri, since, summary(m + q), len(m) + len(q)
                    )
                )
                sent += 2 * count
                ds, ms, qs = summary(d), summary(m), summary(q)
                added = {
                    "p50": ms["p50"] - ds["p50"],
                    "p95": ms["p95"] - ds["p95"],
                    "p99": ms["p99"] - ds["p99"],
                }
                report["runs"].append(
                    {
                        "label": label,
                        "rate": rate,
                        "direct": ds,
                        "mlbus": ms,
                        "added_ms": added,
                        "lost": m_failed,
                        "direct_failed": d_failed,
                        "cpu_s": cpu,
                        "split_ms": split_ms,
                        # the same load through the copy counting quotas in its own memory
                        "local_quotas": qs,
                        "local_quotas_lost": q_failed,
                        "shared_quotas_added_ms": {
                            "p50": ms["p50"] - qs["p50"],
                            "p99": ms["p99"] - qs["p99"],
                        },
                    }
                )
                say(
                    f"{label:<12} {ds['p50']:7.2f} {ds['p95']:7.2f} {ds['p99']:7.2f}  "
                    f"{ms['p50']:7.2f} {ms['p95']:7.2f} {ms['p99']:7.2f}  "
                    f"{added['p50']:6.2f} {added['p99']:6.2f} {m_failed:5d} "
                    f"{ms['p99'] - qs['p99']:16.2f}"
                )
                say(
                    f"  quotas in ingest's memory: p50/p95/p99 {qs['p50']:.2f} {qs['p95']:.2f} "
                    f"{qs['p99']:.2f} ms, lost {q_failed}"
                )
                say(
                    "  where the time goes, ms: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in report["runs"][-1]["split_ms"].items())
                )
                busiest = sorted(cpu.items(), key=lambda kv: -kv[1])
                say("  CPU seconds on the mlbus side: " + ", ".join(f"{k} {v}" for k, v in busiest))
    finally:
        for child in stack.children:
            if child.name == "logger" and child.alive():
                child.resume()
        await asyncio.to_thread(stack.stop)
    under = [r["rate"] for r in report["runs"] if r["rate"] and r["mlbus"]["p99"] < 100]
    report["highest_rate_p99_under_100ms"] = max(under) if under else None
    say(f"highest fixed rate with mlbus p99 < 100 ms: {report['highest_rate_p99_under_100ms']}")
    if args.otlp:
        exports, size = _OtlpSink.received
        report["otlp"] = {"exports": exports, "bytes": size}
        say(f"spans exported: {exports} OTLP requests, {size / 1e6:.1f} MB")
    say(f"raw numbers: {write_report('ondemand', report)}")


def settle(uri: str, calls: int, timeout_s: float = 120.0) -> None:
    """Until the logger has written the log of every call made so far (or `timeout_s`)."""
    mongo: MongoClient[dict[str, Any]] = MongoClient(uri)
    with mongo:
        deadline = time.monotonic() + timeout_s
        while mongo["mlbus"][ONDEMAND_LOGS].count_documents({}) < calls:
            if time.monotonic() > deadline:
                say(f"  (the logger had not caught up with {calls} calls in {timeout_s:g} s)")
                return
            time.sleep(0.5)


def split(
    uri: str, since: datetime, client: dict[str, float], expected: int = 0
) -> dict[str, float]:
    """p50 and p99 of the parts of one run's calls, from the log of each (`ondemand_logs`):
    request leg = ingest publishing to the router consuming; router + model = consuming to the
    model's answer in hand (the model call alone measured apart); the rest of the client's p50
    is ingest's HTTP work, the reply leg and the client itself."""
    mongo: MongoClient[dict[str, Any]] = MongoClient(uri)
    with mongo:
        query = {"created_at": {"$gte": since}, "status": "ok"}
        # the logger writes them from the logs topic: give it up to 10 s to catch up
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if mongo["mlbus"][ONDEMAND_LOGS].count_documents(query) >= expected:
                break
            time.sleep(0.5)
        found = mongo["mlbus"][ONDEMAND_LOGS].find(
            {"created_at": {"$gte": since}, "status": "ok"}, {"latency_ms": 1}
        )
        rows: list[dict[str, float]] = [doc["latency_ms"] for doc in found]
    if not rows:
        return {}
    parts = {
        "request leg": [r["bus"] for r in rows],
        "router": [r["total"] - r["bus"] - r["model"] for r in rows],
        "model call": [r["model"] for r in rows],
    }
    out = {f"{name} p{q}": summary(v)[f"p{q}"] for name, v in parts.items() for q in (50, 99)}
    out["rest (ingest HTTP, reply leg, client) p50"] = (
        client["p50"] - summary([r["total"] for r in rows])["p50"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", type=float, nargs="*", default=[50.0, 200.0, 500.0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--closed", type=int, default=2000, help="closed-loop request count")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds at 100/s through mlbus first"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="turns each load takes on the two ingest copies"
    )
    parser.add_argument(
        "--pause-logger",
        action="store_true",
        help="SIGSTOP the logger after the warm-up (its folding then costs the runs nothing)",
    )
    parser.add_argument("--profile", nargs="*", default=[], help="services to run under cProfile")
    parser.add_argument(
        "--otlp", action="store_true", help="tracing on, exported to a local OTLP sink"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
