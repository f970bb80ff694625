"""The Kafka fixtures give a broker that really carries messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from reminder_testkit import TansuBroker

pytestmark = pytest.mark.integration


async def _round_trip(bootstrap_servers: str, topic: str, value: bytes) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=10)
        return [record.value for records in batch.values() for record in records if record.value]
    finally:
        await consumer.stop()


async def test_session_broker_carries_a_message(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    values = await _round_trip(kafka_bootstrap_servers, f"{topic_prefix}probe", b"hello")
    assert values == [b"hello"]


def test_idempotence_is_off_only_for_tansu(kafka_idempotence: bool) -> None:
    from reminder_testkit.kafka import plan_kafka

    assert kafka_idempotence is (plan_kafka().source != "tansu")


def test_topic_prefix_is_unique_per_test(topic_prefix: str) -> None:
    assert topic_prefix.startswith("t")
    assert topic_prefix.endswith(".")
    assert len(topic_prefix) == 10


async def test_private_broker_stops_and_restarts_on_the_same_port(
    tansu_factory: Callable[[], TansuBroker],
) -> None:
    broker = tansu_factory()
    address = broker.bootstrap_servers
    assert broker.is_running
    assert await _round_trip(address, "before", b"one") == [b"one"]

    broker.stop()
    assert not broker.is_running
    broker.start()
    assert broker.is_running
    assert broker.bootstrap_servers == address
    # memory storage: the restarted broker starts empty, and still works
    assert await _round_trip(address, "before", b"two") == [b"two"]

    broker.kill()
    assert not broker.is_running
    broker.start()
    assert await _round_trip(address, "after-kill", b"three") == [b"three"]
