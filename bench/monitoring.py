"""Monitoring at scale: many simulated GPU agents, and how fast an outage reaches a person.

In one run, against a fresh stack (Kafka, FerretDB, simulator, ingest, monitor, notifier):

1. Load: one agent process simulates `--agents` machines, each sending a heartbeat every
   second. Over a steady window it reports the heartbeats the bus carried, each consumer group's
   lag on the heartbeat topic (as seconds of traffic), and the CPU the monitor and the notifier
   spent per 1,000 heartbeats/s, against a **baseline**: a bare Kafka consumer in its own
   process that reads the same topic and throws the messages away.
2. Latency: `--victims` extra machines, whose heartbeats this script sends itself, stop one at
   a time (spaced so that they are not grouped). For each, the time from the moment the rule's
   condition is met (last heartbeat + missed x interval) to the `machine_offline` notification
   arriving on a live SSE stream. Baseline: one Kafka hop (produce -> consume) in the same run.

    .venv/bin/python -m bench.monitoring [--agents 1000] [--seconds 30] [--victims 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Stack, say, summary, write_report
from mlbus.servers.process import free_port
from schemas.codec import encode, envelope_for
from schemas.heartbeat import AgentHeartbeat
from schemas.topics import HEARTBEATS

MISSED = 3  # heartbeats missed before a machine is offline (the notifier's default)
INTERVAL_S = 1.0

_DRAIN = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer
async def main():
    c = AIOKafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id="bench-baseline",
                         auto_offset_reset="latest", auto_commit_interval_ms=500)
    await c.start()
    try:
        while True:
            await c.getmany(timeout_ms=500, max_records=5000)
    finally:
        await c.stop()
asyncio.run(main())
"""


async def group_lag(bootstrap: str, topic: str) -> dict[str, int]:
    """Messages behind the end of `topic`, per consumer group that reads it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(HEARTBEATS.partitions)]
        ends = await consumer.end_offsets(partitions)
        lags: dict[str, int] = {}
        for group, _ in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            mine = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            if mine:
                lags[group] = sum(ends[tp] - off for tp, off in mine.items())
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def gauge_lag(url: str) -> int | None:
    """Messages behind, from a service's own `mlbus_consumer_lag` gauge (its position, not its
    last commit), summed over the heartbeat topic's partitions."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            text = (await client.get(url)).text
    except httpx.HTTPError:
        return None
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("mlbus_consumer_lag{") and f'topic="{HEARTBEATS.name}"' in line
    ]
    return int(sum(float(r.rsplit(" ", 1)[1]) for r in rows)) if rows else None


async def kafka_hop(bootstrap: str, topic: str, count: int = 200) -> list[float]:
    """Baseline: produce -> consume latency of small messages, one at a time (ms)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])  # the broker does not auto-create
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    await producer.start()
    await consumer.start()
    try:
        await consumer.seek_to_end()
        out = []
        for i in range(count):
            sent = time.perf_counter()
            await producer.send_and_wait(topic, str(i).encode())
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                if any(r.value == str(i).encode() for rs in batch.values() for r in rs):
                    break
            out.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.01)
        return out
    finally:
        await producer.stop()
        await consumer.stop()


class Victims:
    """Machines whose heartbeats this script sends, and stops one by one."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, names: list[str]) -> None:
        self.producer, self.topic = producer, topic
        self.alive = set(names)
        self.last_sent: dict[str, float] = {}

    async def beat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name in sorted(self.alive):
                hb = AgentHeartbeat(machine_id=name, interval_s=INTERVAL_S, simulated=True)
                await self.producer.send_and_wait(
                    self.topic, encode(envelope_for(HEARTBEATS, hb)), key=name.encode()
                )
                self.last_sent[name] = time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL_S)


async def watch(url: str, token: str, seen: dict[str, list[float]], ready: asyncio.Event) -> None:
    """Arrival times of the `machine_offline` notifications naming each subject (live stream)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=60.0)) as client,  # keep-alive 15 s
        client.stream("GET", f"{url}/v1/notifications/stream", headers=headers) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                ready.set()
            if not line.startswith("data: "):
                continue
            note = json.loads(line[6:])
            if note["kind"] == "machine_offline" and note["status"] == "firing":
                for subject in note["subjects"] or [note["subject"]]:
                    seen.setdefault(subject, []).append(time.time())


async def run(args: argparse.Namespace) -> None:
    stack = Stack(profile=args.profile)
    notifier_metrics = free_port()
    stack.extra_env.update(
        {
            "MLBUS_NOTIFIER_METRICS_PORT": str(notifier_metrics),
            "MLBUS_NOTIFIER_GROUP_WAIT_S": str(args.group_wait_s),
        }
    )
    await asyncio.to_thread(stack.start, ["ingest", "monitor", "notifier"])
    topic = HEARTBEATS.named("")
    report: dict[str, Any] = {
        "agents": args.agents,
        "victims": args.victims,
        "group_wait_s": args.group_wait_s,
    }
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap, linger_ms=0)
    await producer.start()
    stop = asyncio.Event()
    seen: dict[str, list[float]] = {}
    ready = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        say(f"starting {args.agents} simulated agents (1 heartbeat/s each) and a bare consumer")
        stack.spawn(
            "agent",
            "-m",
            "services.agent",
            "--simulate",
            "1",
            "--machines",
            str(args.agents),
            "--machine-id",
            "bench",
            "--interval",
            str(INTERVAL_S),
        )
        stack.spawn("baseline-consumer", "-c", _DRAIN, stack.kafka.bootstrap, topic)
        names = [f"victim-{i:03d}" for i in range(args.victims)]
        victims = Victims(producer, topic, names)
        token = stack.token("bench-operator", ["RootAdmin"])
        tasks.append(asyncio.create_task(victims.beat(stop)))
        tasks.append(asyncio.create_task(watch(stack.ingest_url, token, seen, ready)))
        await asyncio.wait_for(ready.wait(), 30)
        say("warming up for 10 s")
        await asyncio.sleep(10)

        say(f"steady window: {args.seconds:g} s; stopping one victim every {args.spacing_s:g} s")
        cpu0, t0 = stack.cpu_seconds(), time.perf_counter()
        ends0 = await _end_total(stack.kafka.bootstrap, topic)
        lags: dict[str, list[int]] = {}
        stopped_at: dict[str, float] = {}
        next_victim, next_stop = 0, time.perf_counter() + 2
        while time.perf_counter() - t0 < args.seconds:
            if time.perf_counter() >= next_stop and next_victim < len(names):
                name = names[next_victim]
                victims.alive.discard(name)
                stopped_at[name] = victims.last_sent[name]
                next_victim, next_stop = next_victim + 1, time.perf_counter() + args.spacing_s
            for group, lag in (await group_lag(stack.kafka.bootstrap, topic)).items():
                lags.setdefault(group, []).append(lag)
            own = await gauge_lag(f"http://127.0.0.1:{notifier_metrics}/metrics")
            if own is not None:
                lags.setdefault("notifier (own position)", []).append(own)
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - t0
        cpu1 = stack.cpu_seconds()
        heartbeats = await _end_total(stack.kafka.bootstrap, topic) - ends0
        rate = heartbeats / elapsed
        say(f"waiting up to {MISSED * INTERVAL_S + 5:g} s for the last outages to be told")
        await asyncio.sleep(MISSED * INTERVAL_S + 5)
        hop = await kafka_hop(stack.kafka.bootstrap, "bench.hop")
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        stack.stop()

    cpu = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2) for k in cpu1}
    per_k = {k: round(v / elapsed / (rate / 1000), 3) for k, v in cpu.items()}
    # The first offline notification after the victim's last heartbeat (one told earlier, while
    # the notifier caught up at start, does not count).
    told = {
        n: min((a for a in seen.get(n, []) if a > t), default=None) for n, t in stopped_at.items()
    }
    delays = [
        (a - (stopped_at[n] + MISSED * INTERVAL_S)) * 1000 for n, a in told.items() if a is not None
    ]
    report |= {
        "heartbeats_per_s": round(rate, 1),
        "lag_max_msgs": {g: max(v) for g, v in lags.items()},
        "lag_max_s": {g: round(max(v) / rate, 3) for g, v in lags.items()},
        "cpu_s_in_window": cpu,
        "cpu_cores_per_1000_hb_s": per_k,
        "offline_told": f"{len(delays)}/{len(stopped_at)}",
        "offline_delay_beyond_window_ms": summary(delays),
        "kafka_hop_ms": summary(hop),
    }
    _print(report)
    say(f"report: {write_report('monitoring', report)}")


async def _end_total(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(HEARTBEATS.partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


def _print(r: dict[str, Any]) -> None:
    say("")
    say(f"heartbeats carried: {r['heartbeats_per_s']}/s")
    say("consumer lag on the heartbeat topic, max over the window (groups: committed offsets,")
    say("which trail the position by up to the commit interval; 'own position': the gauge):")
    for group, msgs in sorted(r["lag_max_msgs"].items()):
        say(f"  {group:<40} {msgs:>7} messages = {r['lag_max_s'][group]:.3f} s")
    say("CPU cores used per 1,000 heartbeats/s:")
    base = r["cpu_cores_per_1000_hb_s"].get("baseline-consumer") or float("nan")
    for name, cores in sorted(r["cpu_cores_per_1000_hb_s"].items()):
        say(f"  {name:<20} {cores:>6.3f}  ({cores / base:.1f}x the bare consumer)")
    d, h = r["offline_delay_beyond_window_ms"], r["kafka_hop_ms"]
    say(f"machine_offline told on the SSE stream: {r['offline_told']} victims")
    say(
        f"  delay beyond the rule's window: p50 {d['p50']:.0f} ms, p95 {d['p95']:.0f} ms, "
        f"p99 {d['p99']:.0f} ms (target p99 <= 1000 ms)"
    )
    say(f"baseline, one Kafka hop: p50 {h['p50']:.1f} ms, p99 {h['p99']:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--victims", type=int, default=30)
    parser.add_argument(
        "--spacing-s", type=float, default=2.0, help="between victims (more than the group wait)"
    )
    parser.add_argument("--profile", nargs="*", default=[], help="services to run under cProfile")
    parser.add_argument(
        "--group-wait-s", type=float, default=0.5, help="the notifier's (its default: 0.5)"
    )
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
