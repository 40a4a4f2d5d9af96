"""``python -m clearml_sim``: serve the simulator with uvicorn (httptools, uvloop)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from clearml_sim.app import create_app
from clearml_sim.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m clearml_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8008)
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--task-duration", type=float, default=3.0, help="default run time (s)")
    parser.add_argument("--report-interval", type=float, default=5.0, help="agent report (s)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = SimConfig(
        access_key=args.access_key,
        secret_key=args.secret_key,
        demo=args.demo,
        task_duration_s=args.task_duration,
        report_interval_s=args.report_interval,
    )
    app = create_app(config)
    app.sim.state.files_url = f"http://{args.host}:{args.port}/files"
    # the one line of user-facing output: where to point CLEARML_API_HOST
    sys.stdout.write(
        f"clearml-sim listening on http://{args.host}:{args.port} "
        f"(demo={'on' if args.demo else 'off'}, access_key={args.access_key})\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
