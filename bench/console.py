"""The console's costs, in one run against a fresh stack with `--logs` synthetic logs (filled as
bench.logs fills them, read models included):

- server time of every console page (p50/p95/p99 over `--repeat` loads, each a full page: the
  console's call to ingest's API included), against "p99 <= 150 ms";
- the dashboard's first contentful paint in Chromium (the browser's own Paint Timing), against
  "<= 500 ms", and the page weight: the JavaScript and CSS a page loads, gzip-compressed as
  served, against "<= 250 KB";
- the on-demand p99 at `--rate`/s, quiet, then while a CSV export of the logs (up to 100,000
  rows) streams through the console and 50 SSE clients hold ingest's notification stream.

Signed-in sessions are put straight into the console's session store (a bench-only launcher below):
Keycloak's login page is what the browser tests cover, not what a page costs.

    .venv/bin/python -m bench.console [--logs 100000] [--days 3] [--repeat 50] [--rate 200]
        [--seconds 10] [--data DIR]

With `--data DIR` the filled database is kept there and the next run with the same `--logs` and
`--days` skips the fill: fill 1,000,000 logs once, then measure when the machine is quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.harness import Stack, say, summary, wait_http, write_report
from bench.logs import MACHINES, fill
from bench.ondemand import FEATURES, drive, map_demo_endpoint
from mlbus.servers.process import free_port

PAGE_P99_MS, PAINT_MS, WEIGHT_KB = 150.0, 500.0, 250.0
_LAUNCHER = """
import contextlib, json, os, time
import uvicorn
from services.console.app import create_app
from services.console.oidc import Tokens
from services.console.sessions import Session
from services.console.settings import ConsoleSettings

settings = ConsoleSettings()
app = create_app(settings)
opened = app.router.lifespan_context

@contextlib.asynccontextmanager
async def lifespan(a):
    async with opened(a):
        for key, (user, grants, token) in json.loads(os.environ["BENCH_SESSIONS"]).items():
            await a.state.console.sessions.put(key, Session(
                user, frozenset(grants), Tokens(token, None, None, time.time() + 86400)
            ))
        yield

app.router.lifespan_context = lifespan
uvicorn.run(app, host="127.0.0.1", port=settings.port, loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""


#: Page -> the API call it makes (timed on its own too: what the console adds is the difference).
API_OF = {
    "/dashboard": "/v1/admin/dashboard?hours=24&days=30",
    "/mappings/tasks": "/v1/admin/task-mappings",
    "/logs/enqueue": "/v1/admin/logs/enqueue?limit=25",
    "/logs/enqueue?user=user07": "/v1/admin/logs/enqueue?limit=25&user=user07",
    "/logs/ondemand?status=failed": "/v1/admin/logs/ondemand?limit=25&status=failed",
    "/resources": "/v1/resources",
    "/notifications": "/v1/notifications?limit=50",
    "/my/requests": "/v1/logs?limit=20",
}


def pages() -> dict[str, tuple[str, str]]:
    """Page name -> (session, path)."""
    return {
        "dashboard": ("admin", "/dashboard"),
        "dashboard (live part)": ("admin", "/dashboard/summary"),
        "task mappings": ("admin", "/mappings/tasks"),
        "audit trail": ("admin", "/mappings/tasks/audit"),
        "enqueue logs": ("admin", "/logs/enqueue"),
        "enqueue logs, user": ("admin", "/logs/enqueue?user=user07"),
        "on-demand logs, failed": ("admin", "/logs/ondemand?status=failed"),
        "on-demand logs, endpoint": (
            "admin",
            f"/logs/ondemand?machine_id={MACHINES[0]}&endpoint=ep3",
        ),
        "resources": ("admin", "/resources"),
        "notifications": ("admin", "/notifications"),
        "my requests (user07)": ("user", "/my/requests"),
        "my requests, live rows": ("user", "/my/requests/rows"),
        "baseline: /healthz": ("admin", "/healthz"),
    }


async def _timed(client: httpx.AsyncClient, path: str, repeat: int, **kwargs: Any) -> Any:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = await client.get(path, **kwargs)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return summary(times)


async def page_times(
    url: str, stack: Stack, sessions: dict[str, Any], cookies: dict[str, str], repeat: int
) -> dict[str, Any]:
    """Each page, then the API call behind it alone (same token)."""
    out: dict[str, Any] = {}
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        httpx.AsyncClient(base_url=stack.ingest_url, timeout=30) as api,
    ):
        for name, (who, path) in pages().items():
            jar = {"mlbus_console": cookies[who]}
            out[name] = await _timed(client, path, repeat, cookies=jar)
            if path in API_OF:
                token = sessions[cookies[who]][2]
                headers = {"Authorization": f"Bearer {token}"}
                out[name]["api"] = await _timed(api, API_OF[path], repeat, headers=headers)
    return out


async def weight(url: str, cookie: str) -> dict[str, Any]:
    """The dashboard's scripts and style sheets, bytes on the wire with gzip."""
    headers = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        page = await client.get("/dashboard", cookies={"mlbus_console": cookie})
        assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css)(?:\?[^"]*)?)"', page.text)
        sizes: dict[str, int] = {}
        for asset in assets:
            async with client.stream("GET", asset, headers=headers) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
                encoding = response.headers.get("content-encoding", "identity")
            sizes[asset] = len(raw) if encoding == "gzip" else len(gzip.compress(raw))
    return {"assets": sizes, "total_kb": round(sum(sizes.values()) / 1024, 1)}


#: The first contentful paint and the first byte, once painted: the paint entry can come after
#: the load event (about half the loads of a small page in headless Chromium here), and a
#: load that had not painted by then was left out before, the slower ones more often.
_PAINTED = """new Promise((resolve) => {
  const answer = (paint) => resolve([paint.startTime,
    performance.getEntriesByType('navigation')[0]?.responseStart ?? null]);
  new PerformanceObserver((list, observer) => {
    const paint = list.getEntriesByName('first-contentful-paint')[0];
    if (paint) { observer.disconnect(); answer(paint); }
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve([null, null]), 10000);
})"""


async def first_paint(url: str, cookie: str, loads: int) -> dict[str, Any]:
    """First contentful paint of the dashboard, by the browser's own timing."""
    from playwright.async_api import async_playwright

    path = shutil.which("chromium")
    if path is None:
        return {"skipped": "no chromium"}
    paints: list[float] = []
    firsts: list[float] = []  # the page's first byte, on the same clock
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path)
        context = await browser.new_context()
        await context.add_cookies([{"name": "mlbus_console", "value": cookie, "url": url}])
        for _ in range(loads):
            page = await context.new_page()
            await page.goto(f"{url}/dashboard", wait_until="load")
            fcp, first = await page.evaluate(_PAINTED)
            if fcp is not None:
                paints.append(float(fcp))
                firsts.append(float(first or 0))
            await page.close()
        await browser.close()
    return summary(paints) | {"first_byte": summary(firsts)}


async def ondemand_under_load(
    stack: Stack, console: str, admin_cookie: str, node_port: int, args: argparse.Namespace
) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {stack.token('admin', ['RootAdmin'])}"}
    user = {"Authorization": f"Bearer {stack.token('alice', ['Manager'])}"}
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        machine = await map_demo_endpoint(session, stack, admin, node_port)
        await asyncio.sleep(6)  # ingest's mapping cache refreshes every 5 s
        body = {"machine_id": machine, "endpoint": "parking_free_slots", "input": FEATURES}

        async def through(s: aiohttp.ClientSession) -> bool:
            async with s.post(f"{stack.ingest_url}/v1/ondemand", json=body, headers=user) as r:
                await r.read()
                return r.status == 200

        count = int(args.rate * args.seconds)
        await drive(session, through, int(args.rate * 10), args.rate, 64)  # warm-up
        stop = asyncio.Event()
        rows = {"console": 0, "ingest": 0}
        # The export as the console serves it (paced JSON pages, CSV written in the console),
        # and as ingest's own CSV route streams it (the console passing it through would be this).
        sources = {
            "console": (f"{console}/logs/enqueue/export.csv", {}, {"mlbus_console": admin_cookie}),
            "ingest": (f"{stack.ingest_url}/v1/admin/logs/enqueue.csv", admin, {}),
        }

        async def export(via: str) -> None:
            url, headers, cookies = sources[via]
            while not stop.is_set():
                async with session.get(url, headers=headers, cookies=cookies) as r:
                    async for _ in r.content:
                        rows[via] += 1
                        if stop.is_set():
                            return

        async def listen() -> None:
            async with session.get(
                f"{stack.ingest_url}/v1/notifications/stream", headers=admin
            ) as r:
                async for _ in r.content:
                    if stop.is_set():
                        return

        async def loaded(via: str) -> tuple[list[float], int]:
            stop.clear()
            background = [asyncio.create_task(export(via))]
            background += [asyncio.create_task(listen()) for _ in range(50)]
            await asyncio.sleep(1)
            got = await drive(session, through, count, args.rate, 64)
            stop.set()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            return got

        # Quiet and loaded runs alternate, so a neighbour's load on a shared machine falls on
        # all alike.
        runs: dict[str, list[float]] = {"quiet": [], "console": [], "ingest": []}
        lost = dict.fromkeys(runs, 0)
        for _ in range(args.rounds):
            for kind in runs:
                if kind == "quiet":
                    got, failed = await drive(session, through, count, args.rate, 64)
                else:
                    got, failed = await loaded(kind)
                runs[kind] += got
                lost[kind] += failed
        labels = {
            "quiet": "quiet",
            "console": "export by the console (paced pages) + 50 SSE clients",
            "ingest": "export by ingest's CSV route + 50 SSE clients",
        }
        for kind, latencies in runs.items():
            out[kind] = {**summary(latencies), "lost": lost[kind], "csv_lines": rows.get(kind)}
            lines = f", {rows[kind]:,} CSV lines" if kind in rows else ""
            say(
                f"  on-demand at {args.rate:g}/s, {labels[kind]}: p50 {out[kind]['p50']:.1f} "
                f"p99 {out[kind]['p99']:.1f} ms (lost {lost[kind]}{lines})"
            )
    return out


async def run(args: argparse.Namespace) -> None:
    kept = args.data / "fill.json" if args.data else None
    stack = Stack(mongo_home=args.data / "ferretdb" if args.data else None)
    node_port, console_port = free_port(), free_port()
    console = f"http://127.0.0.1:{console_port}"
    cookies = {"admin": secrets.token_urlsafe(32), "user": secrets.token_urlsafe(32)}
    sessions = {
        cookies["admin"]: ["admin", ["admin", "user"], stack.token("admin", ["RootAdmin"])],
        cookies["user"]: ["user07", ["user"], stack.token("user07", ["Manager"])],
    }
    report: dict[str, Any] = {"args": vars(args)}
    try:
        await asyncio.to_thread(stack.start, ["ingest", "inference_router"])
        stack.spawn("serving-node", "-m", "serving_node", "--port", str(node_port))
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo.uri, tz_aware=True)
        report["fill"] = await filled(client["mlbus"], args.count, args.days, kept)
        await client.close()
        stack.spawn(
            "console",
            "-c",
            _LAUNCHER,
            env={
                "MLBUS_CONSOLE_PORT": str(console_port),
                "MLBUS_CONSOLE_INGEST_URL": stack.ingest_url,
                "MLBUS_CONSOLE_ISSUER": stack.realm,
                "BENCH_SESSIONS": json.dumps(sessions),
            },
        )
        await asyncio.to_thread(wait_http, f"{console}/healthz")
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{node_port}/health")
        if not args.only_ondemand:
            await pages_and_paint(
                report, console=console, stack=stack, sessions=sessions, cookies=cookies, args=args
            )
        say("\non-demand latency while the console exports and streams")
        report["ondemand"] = await ondemand_under_load(
            stack, console, cookies["admin"], node_port, args
        )
    finally:
        await asyncio.to_thread(stack.stop)
    say(f"report: {write_report('console', report)}")


async def filled(db: Any, count: int, days: int, kept: Path | None) -> dict[str, Any]:
    """Fill `count` logs over `days` days, unless the kept database already holds that fill (a
    fill of 1,000,000 logs takes about half an hour; its logs then end when that fill ended)."""
    before = _kept_fill(kept, count, days) if kept is not None else None
    if before is not None:
        say(f"reusing the {count:,} logs over {days} days filled at {before['at']} ({kept})")
        return before
    say(f"filling {count:,} logs over {days} days, with their read models")
    report = await fill(db, count, days) | {"days": days, "at": time.strftime("%Y-%m-%d %H:%M")}
    if kept is not None:
        kept.write_text(json.dumps(report))  # noqa: ASYNC240 - once, after half an hour of fill
    return report


def _kept_fill(kept: Path, count: int, days: int) -> dict[str, Any] | None:
    if not kept.exists():
        return None
    before: dict[str, Any] = json.loads(kept.read_text())
    if (before["logs"], before["days"]) != (count, days):
        raise SystemExit(f"{kept.parent} holds another fill ({before}): pick another --data")
    return before


async def pages_and_paint(
    report: dict[str, Any],
    *,
    console: str,
    stack: Stack,
    sessions: dict[str, Any],
    cookies: dict[str, str],
    args: argparse.Namespace,
) -> None:
    """Page server times, page weight, first paint."""
    say(f"\nconsole pages, server time (ms), {args.repeat} loads each, with {args.count:,} logs")
    report["pages"] = await page_times(console, stack, sessions, cookies, args.repeat)
    say(
        f"{'page':<28} {'p50':>8} {'p95':>8} {'p99':>8}  p99 <= {PAGE_P99_MS:g} ms"
        "   (its API call alone: p50 / p99)"
    )
    for name, s in report["pages"].items():
        ok = "yes" if s["p99"] <= PAGE_P99_MS else "NO "
        api = s.get("api")
        alone = f"   {api['p50']:7.1f} / {api['p99']:7.1f}" if api else ""
        say(f"{name:<28} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f}  {ok}{alone}")
    report["weight"] = await weight(console, cookies["admin"])
    say(f"\npage weight, JS + CSS gzip: {report['weight']['total_kb']} KB (<= {WEIGHT_KB:g})")
    for asset, size in report["weight"]["assets"].items():
        say(f"  {asset}: {size / 1024:.1f} KB")
    report["first_paint"] = await first_paint(console, cookies["admin"], args.paints)
    fp = report["first_paint"]
    if "p50" in fp:
        say(
            f"dashboard first contentful paint (ms): p50 {fp['p50']:.0f} p99 {fp['p99']:.0f} "
            f"(<= {PAINT_MS:g}); its first byte: p50 {fp['first_byte']['p50']:.0f} "
            f"p99 {fp['first_byte']['p99']:.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", "--count", dest="count", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument(
        "--data",
        type=Path,
        help="keep FerretDB's data in this directory and reuse its fill in the next run",
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--paints", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="quiet/loaded pairs")
    parser.add_argument(
        "--only-ondemand", action="store_true", help="skip page times, weight and first paint"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
