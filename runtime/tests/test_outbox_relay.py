"""The outbox relay against a real broker and a real MySQL-compatible database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import AppointmentCancelled, Event, topics
from reminder_runtime.db import transaction
from reminder_runtime.kafka import make_broker
from reminder_runtime.relay import OutboxRelay
from reminder_runtime.settings import ServiceSettings
from reminder_testkit import TansuBroker, async_wait_for
from reminder_testkit.topics import read_events

pytestmark = pytest.mark.integration


def cancellation(appointment_id: UUID, version: int) -> AppointmentCancelled:
    return AppointmentCancelled(appointment_id=appointment_id, patient_id=uuid4(), version=version)


def write(session_factory: sessionmaker[Session], schema: Any, *events: Event) -> None:
    with transaction(session_factory) as session:
        schema.messaging.outbox.add(session, *events)


def pending(session_factory: sessionmaker[Session], schema: Any) -> int:
    with session_factory() as session:
        return int(schema.messaging.outbox.count_pending(session))


async def test_outbox_events_reach_kafka_in_order_and_are_marked(
    schema: Any, session_factory: sessionmaker[Session], settings: ServiceSettings
) -> None:
    first, second = uuid4(), uuid4()
    events = [cancellation(first if i % 2 else second, version=i + 2) for i in range(120)]
    for chunk in range(0, 120, 30):  # several transactions, as handlers would write them
        write(session_factory, schema, *events[chunk : chunk + 30])

    broker = make_broker(settings)
    await broker.start()
    relay = OutboxRelay(session_factory, schema.messaging, broker, settings)
    relay.start()
    try:
        received = await read_events(
            settings.kafka_bootstrap_servers, settings.topic(topics.APPOINTMENTS), expect=120
        )
        await async_wait_for(lambda: pending(session_factory, schema) == 0, timeout=10)
    finally:
        await relay.stop()
        await broker.stop()

    assert sorted(str(e.event_id) for e in received) == sorted(str(e.event_id) for e in events)
    for aggregate in (first, second):
        sent = [e.event_id for e in events if e.key() == str(aggregate)]
        got = [e.event_id for e in received if e.key() == str(aggregate)]
        assert got == sent, "one aggregate's events must arrive in the order they were written"


async def test_events_written_while_the_broker_is_down_arrive_when_it_is_back(
    schema: Any,
    session_factory: sessionmaker[Session],
    settings: ServiceSettings,
    tansu_factory: Callable[[], TansuBroker],
) -> None:
    private = tansu_factory()
    settings = settings.model_copy(update={"kafka_bootstrap_servers": private.bootstrap_servers})
    broker = make_broker(settings, request_timeout_ms=3000)
    await broker.start()
    relay = OutboxRelay(session_factory, schema.messaging, broker, settings)
    relay.start()
    try:
        private.stop()
        outage = [cancellation(uuid4(), 2) for _ in range(5)]
        write(session_factory, schema, *outage)  # a handler's write succeeds without the broker
        relay.wake()
        await asyncio.sleep(4)  # the relay tries, fails, backs off
        assert pending(session_factory, schema) == 5, "nothing may be marked while unpublished"

        private.start()
        received = await read_events(
            private.bootstrap_servers, settings.topic(topics.APPOINTMENTS), expect=5, timeout=60
        )
        await async_wait_for(lambda: pending(session_factory, schema) == 0, timeout=30)
    finally:
        await relay.stop()
        await broker.stop()
    assert {e.event_id for e in received} == {e.event_id for e in outage}


async def test_two_relays_on_one_database_publish_each_event_once(
    schema: Any, session_factory: sessionmaker[Session], settings: ServiceSettings
) -> None:
    events = [cancellation(uuid4(), 2) for _ in range(300)]
    brokers = [make_broker(settings), make_broker(settings)]
    relays = [OutboxRelay(session_factory, schema.messaging, b, settings) for b in brokers]
    for b in brokers:
        await b.start()
    for r in relays:
        r.start()
    try:
        for chunk in range(0, 300, 20):
            write(session_factory, schema, *events[chunk : chunk + 20])
            for r in relays:
                r.wake()
            await asyncio.sleep(0.01)
        received = await read_events(
            settings.kafka_bootstrap_servers,
            settings.topic(topics.APPOINTMENTS),
            expect=300,
            settle=2.0,
        )
    finally:
        for r in relays:
            await r.stop()
        for b in brokers:
            await b.stop()
    ids = [e.event_id for e in received]
    assert len(ids) == 300
    assert set(ids) == {e.event_id for e in events}


def test_old_published_rows_are_deleted_and_pending_rows_kept(
    schema: Any, session_factory: sessionmaker[Session], settings: ServiceSettings
) -> None:
    from sqlalchemy import select, update

    old, recent, unpublished = (cancellation(uuid4(), 2) for _ in range(3))
    write(session_factory, schema, old, recent, unpublished)
    table = schema.messaging.outbox.table
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(session_factory) as session:
        for event, published in ((old, now - timedelta(days=30)), (recent, now)):
            session.execute(
                update(table)
                .where(table.c.event_id == str(event.event_id))
                .values(published_at=published)
            )
    relay = OutboxRelay(session_factory, schema.messaging, make_broker(settings), settings)
    relay._delete_old()
    with session_factory() as session:
        left = set(session.execute(select(table.c.event_id)).scalars())
    assert left == {str(recent.event_id), str(unpublished.event_id)}
