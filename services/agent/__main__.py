"""`python -m services.agent [--simulate N] [--machines M] [--machine-id ID] [--names A,B]
[--interval S] [--seed K] [--once]`: publish GPU heartbeats, or with `--once` print one and
exit (no Kafka)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from runtime.lifecycle import run_service
from runtime.logs import setup_logging
from schemas.codec import envelope_for
from schemas.topics import HEARTBEATS
from services.agent.app import SERVICE, read_once, run
from services.agent.settings import AgentSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; every flag left out keeps the environment's setting."""
    p = argparse.ArgumentParser(prog="python -m services.agent", description=__doc__)
    p.add_argument("--simulate", type=int, metavar="N", help="N fake GPUs instead of NVML")
    p.add_argument("--machines", type=int, metavar="M", help="M simulated machines (<id>-<k>)")
    p.add_argument("--machine-id", metavar="ID", help="heartbeat key (default: host name)")
    p.add_argument(
        "--names",
        dest="machine_names",
        type=lambda text: tuple(n.strip() for n in text.split(",") if n.strip()),
        metavar="A,B,..",
        help="names of the simulated machines (instead of <id>-<k>)",
    )
    p.add_argument("--interval", dest="interval_s", type=float, metavar="S", help="seconds")
    p.add_argument("--seed", type=int, help="seed of the simulation")
    p.add_argument("--once", action="store_true", help="print one heartbeat as JSON and exit")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> AgentSettings:
    """Environment settings with the flags given on the command line laid over them."""
    fields = ("simulate", "machines", "machine_id", "machine_names", "interval_s", "seed")
    overrides: dict[str, Any] = {
        k: getattr(args, k) for k in fields if getattr(args, k) is not None
    }
    return AgentSettings(**overrides)


def once_json(settings: AgentSettings) -> list[str]:
    """One envelope per machine, as it would go on the wire (indented for reading)."""
    return [envelope_for(HEARTBEATS, hb).model_dump_json(indent=2) for hb in read_once(settings)]


def main(argv: Sequence[str] | None = None) -> int:
    """Read settings once and run until SIGTERM, or print one heartbeat with `--once`."""
    args = parse_args(argv)
    settings = settings_from(args)
    if args.once:
        setup_logging(SERVICE, settings.log_level)
        print("\n".join(once_json(settings)))  # noqa: T201 - --once prints the heartbeat
        return 0
    return run_service(SERVICE, lambda stop: run(settings, stop), settings=settings)


if __name__ == "__main__":
    sys.exit(main())
