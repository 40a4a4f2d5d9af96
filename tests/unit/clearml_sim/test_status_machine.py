"""The status machine table (§4.2)."""

from __future__ import annotations

import pytest

from clearml_sim.status import ALL_STATUSES, can_change


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("created", "queued", True),
        ("created", "completed", False),
        ("queued", "in_progress", True),
        ("queued", "failed", False),
        ("in_progress", "completed", True),
        ("in_progress", "queued", False),
        ("completed", "queued", False),
        ("completed", "created", True),
        ("failed", "queued", True),
        ("stopped", "queued", True),
        ("published", "created", False),
        ("closed", "failed", True),
        ("publishing", "published", True),
    ],
)
def test_transitions(current: str, new: str, allowed: bool) -> None:
    assert can_change(current, new) is allowed


def test_same_state_is_always_allowed() -> None:
    assert all(can_change(s, s) for s in ALL_STATUSES)
