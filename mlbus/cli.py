"""The `mlbus` command line: run the local stack, print dev tokens, manage task mappings,
replay dead letters."""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from mlbus.demo import dev_token
from mlbus.devissuer import DEV_USERS
from mlbus.stack import INGEST_URL, ISSUER_URL, VAR


def _say(text: str) -> None:
    print(text, flush=True)


def _admin_headers(args: argparse.Namespace) -> dict[str, str]:
    token = args.token or dev_token(VAR / "dev-issuer" / "key.pem", ISSUER_URL, "admin")
    return {"Authorization": f"Bearer {token}"}


def _show(response: httpx.Response) -> int:
    if response.status_code >= 400:
        _say(f"error {response.status_code}: {response.text}")
        return 1
    if response.content:
        _say(json.dumps(response.json(), indent=2))
    return 0


def cmd_mappings(args: argparse.Namespace) -> int:
    """Task mappings through the admin API."""
    url, headers = f"{args.url}/v1/admin/task-mappings", _admin_headers(args)
    if args.action == "list":
        return _show(httpx.get(url, headers=headers))
    if args.action == "rm":
        return _show(httpx.delete(f"{url}/{args.task_id}", headers=headers))
    body = {
        "clearml_task_id": args.clearml_task_id,
        "default_queue": args.default_queue,
        "allowed_queues": args.allow or [],
        "description": args.description,
    }
    return _show(httpx.post(url, json=body, headers=headers))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlbus` command."""
    parser = argparse.ArgumentParser(prog="mlbus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the whole local stack until Ctrl-C")
    token = sub.add_parser("token", help="print an access token for a local dev user")
    token.add_argument("user", choices=sorted(DEV_USERS))
    maps = sub.add_parser("mappings", help="task mappings (admin API)")
    maps.add_argument("--url", default=INGEST_URL)
    maps.add_argument("--token", help="admin access token (default: local dev admin)")
    actions = maps.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    add = actions.add_parser("add")
    add.add_argument("clearml_task_id")
    add.add_argument("--default-queue", required=True)
    add.add_argument("--allow", action="append", help="another queue users may ask for")
    add.add_argument("--description", default="")
    rm = actions.add_parser("rm")
    rm.add_argument("task_id")
    dlq = sub.add_parser("dlq", help="dead letters: show them or replay them")
    dlq.add_argument("action", choices=["show", "replay"])
    dlq.add_argument("--bootstrap", default="127.0.0.1:9092")
    dlq.add_argument("--topic-prefix", default="")
    dlq.add_argument("--topic", help="only letters from this original topic")
    args = parser.parse_args(argv)

    if args.command == "up":
        from mlbus.stack import up

        return up()
    if args.command == "token":
        _say(dev_token(VAR / "dev-issuer" / "key.pem", ISSUER_URL, args.user))
        return 0
    if args.command == "mappings":
        return cmd_mappings(args)
    from mlbus.dlq import run_dlq

    return run_dlq(args.action, args.bootstrap, args.topic_prefix, args.topic, _say)


if __name__ == "__main__":
    sys.exit(main())
