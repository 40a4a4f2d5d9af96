"""`mlbus dlq show|replay`: read the dead-letter topic; replay resends each letter's original
bytes to its original topic, with its original key.

Replay commits its position in the consumer group `mlbus-dlq-replay`, so a letter is replayed
once; a message that fails again comes back as a new dead letter, with the new reason.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from runtime.kafka import partitions_of
from schemas.codec import SchemaError, decode
from schemas.dlq import DeadLetter
from schemas.topics import DEAD_LETTERS

REPLAY_GROUP = "mlbus-dlq-replay"


async def _letters(
    bootstrap: str, prefix: str, group: str | None
) -> tuple[AIOKafkaConsumer, list[tuple[TopicPartition, int, DeadLetter | str]]]:
    """Every letter from the group's position (or the start) up to the end as of now."""
    topic = DEAD_LETTERS.named(prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    out: list[tuple[TopicPartition, int, DeadLetter | str]] = []
    for tp in partitions:
        while await consumer.position(tp) < ends[tp]:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            for record in batch.get(tp, []):
                if record.offset >= ends[tp]:
                    break
                try:
                    letter: DeadLetter | str = decode(DEAD_LETTERS, record.value).payload
                except SchemaError as exc:
                    letter = f"unreadable dead letter: {exc}"
                out.append((tp, record.offset, letter))
    return consumer, out


async def _run(
    action: str, bootstrap: str, prefix: str, only: str | None, say: Callable[[str], None]
) -> int:
    group = REPLAY_GROUP if action == "replay" else None
    consumer, letters = await _letters(bootstrap, prefix, group)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    sent = 0
    try:
        for tp, offset, letter in letters:
            if isinstance(letter, str):
                say(f"{offset}: {letter}")
                continue
            if only and letter.topic != only:
                continue
            say(
                f"{offset}: {letter.topic}[{letter.partition}]@{letter.offset} "
                f"{letter.error_class}: {letter.reason}"
            )
            if action == "replay":
                key = letter.key.encode() if letter.key else None
                await producer.send_and_wait(
                    letter.topic, base64.b64decode(letter.raw_b64), key=key
                )
                await consumer.commit({tp: offset + 1})
                sent += 1
    finally:
        await producer.stop()
        await consumer.stop()
    say(f"{len(letters)} dead letter(s)" + (f", {sent} replayed" if action == "replay" else ""))
    return 0


def run_dlq(
    action: str, bootstrap: str, prefix: str, only: str | None, say: Callable[[str], None]
) -> int:
    """Show or replay the dead letters."""
    return asyncio.run(_run(action, bootstrap, prefix, only, say))
