"""``python -m serving_node --host 127.0.0.1 --port 8080 [--latency-ms X] [--error-rate R] ...``"""

from __future__ import annotations

import argparse
import logging
import sys

from serving_node.app import NodeConfig, create_app
from serving_node.faults import Faults
from serving_node.server import bind_socket, build_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; the fault flags set the global knobs the control API starts from."""
    parser = argparse.ArgumentParser(prog="serving_node", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--status-override", type=int, default=None)
    parser.add_argument("--not-ready", action="store_true")
    parser.add_argument("--request-id-capacity", type=int, default=10_000)
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    """A NodeConfig from parsed flags."""
    faults = Faults(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        status_override=args.status_override,
        not_ready=args.not_ready,
    )
    extra = {} if args.instance_id is None else {"instance_id": args.instance_id}
    return NodeConfig(faults=faults, request_id_capacity=args.request_id_capacity, **extra)


def main(argv: list[str] | None = None) -> None:
    """Fit the models, bind, announce the address on stdout, serve until SIGINT/SIGTERM."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    app = create_app(config_from_args(args))
    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    endpoints = ", ".join(app.state.registry.names())
    # One line on stdout, the contract with scripts that start a node and wait for its address.
    sys.stdout.write(
        f"serving_node listening on http://{host}:{port}/serve/ endpoints: {endpoints}\n"
    )
    sys.stdout.flush()
    build_server(app, log_level=args.log_level).run(sockets=[sock])


if __name__ == "__main__":
    main()
