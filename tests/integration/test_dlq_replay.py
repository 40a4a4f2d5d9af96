"""`mlbus dlq show|replay`: dead letters are listed, and replay puts each one's original bytes
back on its original topic, with its key, once."""

from __future__ import annotations

import asyncio
from typing import Any

from clearml_sim.testing import SimServer
from mlbus.dlq import run_dlq
from schemas.topics import ENQUEUE_REQUESTS
from tests.conftest import Bus
from tests.fixtures import enqueuer_settings, running_enqueuer
from tests.integration.test_enqueue_faults import produce, read_all


async def test_a_dead_letter_is_shown_and_replayed_once(bus: Bus, sim: SimServer) -> None:
    async with running_enqueuer(enqueuer_settings(bus, sim)):
        await produce(bus, (b"poison-key", b"definitely not json"))
        await read_all(bus, "mlbus.dlq", 1)
    said: list[str] = []
    show = await asyncio.to_thread(
        run_dlq, "show", bus.kafka_bootstrap, bus.topic_prefix, None, said.append
    )
    assert show == 0
    assert any("SchemaError" in line and "not an mlbus envelope" in line for line in said), said

    for _ in range(2):  # a second replay finds nothing new: the group remembers its position
        await asyncio.to_thread(
            run_dlq, "replay", bus.kafka_bootstrap, bus.topic_prefix, None, said.append
        )
    assert said[-1] == "0 dead letter(s), 0 replayed"
    values: list[Any] = await read_all(bus, ENQUEUE_REQUESTS.name, 2)
    assert values == [b"definitely not json", b"definitely not json"]  # original + one replay
