"""Keys of the notifier's state topic: `machine:<id>`, `alert:<fingerprint>`,
`window:<fingerprint>`, `outbox:<notification id>`."""

from __future__ import annotations

MACHINE, ALERT, WINDOW, OUTBOX = "machine:", "alert:", "window:", "outbox:"


def machine(machine_id: str) -> str:
    """Key of a machine's last-seen record."""
    return MACHINE + machine_id


def alert(fp: str) -> str:
    """Key of an alert's record."""
    return ALERT + fp


def window(fp: str) -> str:
    """Key of a sustained-condition window."""
    return WINDOW + fp


def outbox(notification_id: str) -> str:
    """Key of a notification not yet known to be published."""
    return OUTBOX + notification_id
