"""The `mlbus` command line: run the local stack, print dev tokens, manage mappings (tasks,
serving machines, endpoints), show and replay dead letters, rebuild the log read models."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import httpx

from mlbus.demo import dev_token
from mlbus.devissuer import DEV_USERS
from mlbus.servers.keycloak import TokenError
from mlbus.stack import INGEST_URL, ISSUER_URL
from mlbus.tables import render


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the command's output


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _admin_headers(args: argparse.Namespace) -> dict[str, str]:
    token = args.token or dev_token(ISSUER_URL, "admin")
    return {"Authorization": f"Bearer {token}"}


def _show(response: httpx.Response) -> int:
    if response.status_code >= 400:
        _say(f"error {response.status_code}: {response.text}")
        return 1
    if response.content:
        _say(json.dumps(response.json(), indent=2))
    return 0


#: command -> (admin collection path, how `add` builds its body)
_KINDS: dict[str, tuple[str, Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "mappings": (
        "task-mappings",
        lambda a: {
            "clearml_task_id": a.clearml_task_id,
            "default_queue": a.default_queue,
            "allowed_queues": a.allow or [],
            "description": a.description,
        },
    ),
    "machines": (
        "serving-machines",
        lambda a: {
            "serving_task_id": a.serving_task_id,
            "base_urls": a.url_of_replica,
            "description": a.description,
        },
    ),
    "endpoints": (
        "endpoint-mappings",
        lambda a: {"machine_id": a.machine_id, "endpoint": a.endpoint, "timeout_s": a.timeout},
    ),
}


def cmd_admin(args: argparse.Namespace) -> int:
    """Mappings of each kind through the admin API."""
    path, body_of = _KINDS[args.command]
    url, headers = f"{args.url}/v1/admin/{path}", _admin_headers(args)
    if args.action == "list":
        response = httpx.get(url, headers=headers)
        if args.json or response.status_code >= 400:
            return _show(response)
        _say(render(path, response.json()))
        return 0
    if args.action == "rm":
        return _show(httpx.delete(f"{url}/{args.key}", headers=headers))
    return _show(httpx.post(url, json=body_of(args), headers=headers))


def _admin_parser(sub: Any, name: str, help_text: str) -> Any:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--url", default=INGEST_URL, help="ingest's base URL")
    parser.add_argument("--token", help="admin access token (default: local dev admin)")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a table (ids shortened); --json for scripts")
    listing.add_argument("--json", action="store_true", help="the API's JSON, ids in full")
    rm = actions.add_parser("rm")
    rm.add_argument("key", help="the opaque id (endpoints: <machine_id>/<endpoint>)")
    add = actions.add_parser("add")
    add.add_argument("--description", default="")
    return add


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlbus` command."""
    parser = argparse.ArgumentParser(prog="mlbus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="run the whole local stack until Ctrl-C")
    up_cmd.add_argument(
        "--replicas",
        type=_positive,
        help="copies of each service (ingest on ports 8000, 8010, ...; default: "
        "MLBUS_REPLICAS, else 1); the agent runs once",
    )
    token = sub.add_parser(
        "token", help="print an access token for a local user (from the stack's Keycloak)"
    )
    token.add_argument("user", choices=sorted(DEV_USERS))
    add = _admin_parser(sub, "mappings", "task mappings (admin API)")
    add.add_argument("clearml_task_id")
    add.add_argument("--default-queue", required=True)
    add.add_argument("--allow", action="append", help="another queue users may ask for")
    add = _admin_parser(sub, "machines", "serving machines (admin API)")
    add.add_argument("serving_task_id")
    add.add_argument(
        "--replica",
        dest="url_of_replica",
        action="append",
        required=True,
        help="a replica's base URL, e.g. http://10.0.0.5:8080/serve",
    )
    add = _admin_parser(sub, "endpoints", "endpoint mappings (admin API)")
    add.add_argument("machine_id")
    add.add_argument("endpoint")
    add.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    dlq = sub.add_parser("dlq", help="dead letters: show them or replay them")
    dlq.add_argument("action", choices=["show", "replay"])
    dlq.add_argument("--bootstrap", default="127.0.0.1:9092")
    dlq.add_argument("--topic-prefix", default="")
    dlq.add_argument("--topic", help="only letters from this original topic")
    logs = sub.add_parser("logs", help="the log read models (MongoDB views, log index)")
    rebuild = logs.add_subparsers(dest="action", required=True).add_parser(
        "rebuild",
        help="drop the read models and fold every raw log again (stop the logger first)",
        description="Drop the collections the logger derives from the raw logs "
        "(view_enqueue_logs, view_ondemand_logs, view_requests_hourly, view_requests_daily, "
        "view_usage_by_user, view_log_index, logger_folds) and fold every raw log in "
        "enqueue_logs and ondemand_logs again with the logger's own code, in the database "
        "the logger's settings name (MLBUS_LOGGER_*, then MLBUS_*). The raw logs are not "
        "touched. STOP "
        "THE LOGGER FIRST: a logger folding meanwhile could lose facts or count them twice. "
        "The rest of the stack may run: what it logs meanwhile waits in Kafka and is folded "
        "when the logger starts again. If the rebuild stops half-way, run it again.",
    )
    rebuild.add_argument(
        "--batch", type=_positive, default=5000, help="raw logs per write batch (5000)"
    )
    args = parser.parse_args(argv)

    if args.command == "up":
        from mlbus.stack import up

        return up(args.replicas)
    if args.command == "token":
        try:
            _say(dev_token(ISSUER_URL, args.user))
        except TokenError as exc:
            _say(f"mlbus: {exc} (is the local stack up? `make run`)")
            return 1
        return 0
    if args.command in _KINDS:
        return cmd_admin(args)
    if args.command == "logs":
        from mlbus.logs import run_rebuild

        return run_rebuild(args.batch, _say)
    from mlbus.dlq import run_dlq

    return run_dlq(args.action, args.bootstrap, args.topic_prefix, args.topic, _say)


if __name__ == "__main__":
    sys.exit(main())
