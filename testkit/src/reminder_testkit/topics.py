"""Reading what landed on a topic, and writing raw messages to one, from a test."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from reminder_contracts import Event, decode, encode


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    def event(self) -> Event:
        return decode(self.value)


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline for the whole read, not one call
    settle: float = 0.0,
) -> list[Record]:
    """Every record of `topic` from the start, once at least `expect` arrived (or timeout).

    `settle` keeps reading that many seconds more, to catch unwanted extra records.
    A fresh consumer group each call, so nothing is committed for anyone else.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(records) >= expect and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(
                    Record(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.key,
                        m.value or b"",
                        {k: v.decode() for k, v in (m.headers or ())},
                    )
                    for m in messages
                )
    finally:
        await consumer.stop()
    return records


async def read_events(
    bootstrap_servers: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 20.0,  # noqa: ASYNC109
    settle: float = 0.0,
) -> list[Event]:
    records = await read_topic(
        bootstrap_servers, topic, expect=expect, timeout=timeout, settle=settle
    )
    return [r.event() for r in records]


async def publish_raw(
    bootstrap_servers: str, topic: str, *values: bytes, key: bytes | None = None
) -> None:
    """Send raw bytes (valid events or garbage) to a topic, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def publish_events(bootstrap_servers: str, topic: str, *events: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, encode(event), key=event.key().encode())
    finally:
        await producer.stop()
