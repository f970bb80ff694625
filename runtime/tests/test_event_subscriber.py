"""At-least-once consumption: dead-letter topic, retries, inbox, against a real broker."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import AppointmentCancelled, Event, encode, topics
from reminder_contracts.topics import dead_letter_topic
from reminder_runtime.db import transaction
from reminder_runtime.kafka import EventSubscriber, MessageMeta, make_broker
from reminder_runtime.settings import ServiceSettings
from reminder_testkit import async_wait_for
from reminder_testkit.topics import publish_raw, read_topic

pytestmark = pytest.mark.integration

GROUP = "runtime-test"


def cancellation() -> AppointmentCancelled:
    return AppointmentCancelled(appointment_id=uuid4(), patient_id=uuid4(), version=2)


async def test_malformed_message_goes_to_dead_letter_topic_and_consumer_moves_on(
    settings: ServiceSettings,
) -> None:
    handled: list[Event] = []

    async def handler(event: Event, meta: MessageMeta) -> None:
        handled.append(event)

    broker = make_broker(settings)
    EventSubscriber(broker, settings, topics=[topics.APPOINTMENTS], group_id=GROUP, handler=handler)
    topic = settings.topic(topics.APPOINTMENTS)
    good_before, good_after = cancellation(), cancellation()
    too_new = encode(cancellation()).replace(b'"event_version":1', b'"event_version":9')
    unknown = b'{"event_type":"SomethingNew","event_version":1}'
    await publish_raw(
        settings.kafka_bootstrap_servers,
        topic,
        encode(good_before),
        b"{not json",
        b'{"event_type":"AppointmentCancelled"}',
        too_new,
        unknown,
        encode(good_after),
        key=b"k",
    )
    await broker.start()
    try:
        await async_wait_for(lambda: len(handled) == 2, timeout=30)
        dead = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(dead_letter_topic(GROUP)), expect=3
        )
    finally:
        await broker.stop()

    assert [e.event_id for e in handled] == [good_before.event_id, good_after.event_id]
    assert [r.value for r in dead] == [
        b"{not json",
        b'{"event_type":"AppointmentCancelled"}',
        too_new,
    ]
    assert [r.headers["dlt-error-type"] for r in dead] == [
        "MalformedEvent",
        "MalformedEvent",
        "UnsupportedEventVersion",
    ]
    first = dead[0].headers
    assert first["dlt-original-topic"] == topic
    assert first["dlt-original-partition"] == "0"
    assert first["dlt-original-offset"] == "1"
    assert first["dlt-consumer-group"] == settings.consumer_group(GROUP)
    assert settings.consumer_group(GROUP) == f"{settings.kafka_topic_prefix}{GROUP}"
    assert "not JSON" in first["dlt-error"]


async def test_a_failing_handler_is_retried_then_dead_lettered(settings: ServiceSettings) -> None:
    attempts: dict[str, int] = {}
    poison, healthy, flaky = cancellation(), cancellation(), cancellation()

    async def handler(event: Event, meta: MessageMeta) -> None:
        key = str(event.event_id)
        attempts[key] = attempts.get(key, 0) + 1
        if event is not None and event.event_id == poison.event_id:
            raise RuntimeError("the database said no")
        if event.event_id == flaky.event_id and attempts[key] < 2:
            raise ConnectionError("blip")

    broker = make_broker(settings)
    EventSubscriber(broker, settings, topics=[topics.APPOINTMENTS], group_id=GROUP, handler=handler)
    await publish_raw(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.APPOINTMENTS),
        encode(poison),
        encode(flaky),
        encode(healthy),
        key=b"k",
    )
    await broker.start()
    try:
        await async_wait_for(lambda: str(healthy.event_id) in attempts, timeout=30)
        dead = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(dead_letter_topic(GROUP)), expect=1
        )
    finally:
        await broker.stop()

    assert attempts[str(poison.event_id)] == settings.consumer_max_retries + 1
    assert attempts[str(flaky.event_id)] == 2, "a transient failure is retried, then succeeds"
    assert attempts[str(healthy.event_id)] == 1
    assert len(dead) == 1
    assert dead[0].event().event_id == poison.event_id
    assert dead[0].headers["dlt-error"] == "the database said no"


async def test_a_redelivered_event_has_its_effect_once(
    settings: ServiceSettings, schema: Any, session_factory: sessionmaker[Session]
) -> None:
    def record_effect(event: Event) -> None:
        with transaction(session_factory) as session:
            if not schema.messaging.inbox.first_time(session, GROUP, event.event_id):
                return
            session.execute(insert(schema.effects).values(event_id=str(event.event_id)))

    async def handler(event: Event, meta: MessageMeta) -> None:
        await asyncio.to_thread(record_effect, event)

    once, twice = cancellation(), cancellation()
    broker = make_broker(settings)
    EventSubscriber(broker, settings, topics=[topics.APPOINTMENTS], group_id=GROUP, handler=handler)
    topic = settings.topic(topics.APPOINTMENTS)
    # The same event three times: a producer retry, a replay, a consumer restart.
    await publish_raw(
        settings.kafka_bootstrap_servers,
        topic,
        encode(twice),
        encode(once),
        encode(twice),
        encode(twice),
        key=b"k",
    )

    def effects() -> dict[str, int]:
        with session_factory() as session:
            rows = session.execute(
                select(schema.effects.c.event_id, func.count()).group_by(schema.effects.c.event_id)
            ).all()
        return {event_id: n for event_id, n in rows}

    await broker.start()
    try:
        await async_wait_for(lambda: len(effects()) == 2, timeout=30)
        await asyncio.sleep(1)  # let every redelivery be handled
    finally:
        await broker.stop()
    assert effects() == {str(once.event_id): 1, str(twice.event_id): 1}


async def test_offsets_are_committed_only_for_handled_messages(settings: ServiceSettings) -> None:
    """A consumer that restarts goes on after the last handled message, not before or past it."""
    seen: list[Event] = []

    async def handler(event: Event, meta: MessageMeta) -> None:
        seen.append(event)

    events = [cancellation() for _ in range(4)]
    topic = settings.topic(topics.APPOINTMENTS)
    await publish_raw(settings.kafka_bootstrap_servers, topic, *map(encode, events[:2]), key=b"k")
    broker = make_broker(settings)
    EventSubscriber(broker, settings, topics=[topics.APPOINTMENTS], group_id=GROUP, handler=handler)
    await broker.start()
    await async_wait_for(lambda: len(seen) == 2, timeout=30)
    await broker.stop()

    await publish_raw(settings.kafka_bootstrap_servers, topic, *map(encode, events[2:]), key=b"k")
    broker = make_broker(settings)
    EventSubscriber(broker, settings, topics=[topics.APPOINTMENTS], group_id=GROUP, handler=handler)
    await broker.start()
    try:
        await async_wait_for(lambda: len(seen) == 4, timeout=30)
        await asyncio.sleep(1)
    finally:
        await broker.stop()
    assert [e.event_id for e in seen] == [e.event_id for e in events]
