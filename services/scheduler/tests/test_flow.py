"""The scheduler as it runs: the real app (uvicorn) on Tansu and MariaDB, appointment events
in through Kafka, ReminderDue out on Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reminder_contracts import topics
from reminder_contracts.events import PatientUpdated, ReminderDue, reminder_id_for
from reminder_runtime.db import transaction
from reminder_testkit import free_port
from reminder_testkit.apps import serve_app
from reminder_testkit.topics import publish_events, publish_raw, read_events, read_topic
from scheduler.app import Scheduler, create_app
from scheduler.handlers import handle_event
from scheduler.settings import Settings
from scheduler.testing import cancelled, rescheduled, scheduled, snapshot

pytestmark = pytest.mark.integration

FireOnce = Callable[[], Any]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Scheduler]:
    """The app served by uvicorn in this event loop, until the block ends (graceful stop)."""
    settings = settings.model_copy(update={"http_port": free_port()})
    app = create_app(settings)
    async with serve_app(app, port=settings.http_port):
        yield app.state.scheduler


def now() -> datetime:
    return datetime.now(UTC)


async def test_appointment_events_in_reminders_out(
    make_settings: Callable[..., Settings], kafka_bootstrap_servers: str
) -> None:
    # A long cap on sleeping: a reminder due in 3 s must still go at its time.
    settings = make_settings(reminder_offsets="24h", scheduler_max_sleep_seconds=30)
    appointments = settings.topic(topics.APPOINTMENTS)
    reminders = settings.topic(topics.REMINDERS)
    async with running(settings) as service:
        port = service.settings.http_port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text

        booked_late = scheduled(now() + timedelta(hours=1))  # inside the 24 h window
        await publish_events(kafka_bootstrap_servers, appointments, booked_late)
        # Its reminder is due at once: once it is out, the consumer is surely running.
        await read_events(kafka_bootstrap_servers, reminders, expect=1, timeout=30)

        soon = scheduled(now() + timedelta(minutes=60, seconds=3), offsets=(60,))
        to_cancel = scheduled(now() + timedelta(minutes=60, seconds=4), offsets=(60,))
        await publish_events(kafka_bootstrap_servers, appointments, soon, to_cancel)
        # The patient changes name and number before the reminder is due (patients topic).
        renamed = PatientUpdated(
            patient_id=soon.patient_id,
            version=2,
            name="Ada King",
            phone="+12025550178",
            language="en",
            timezone=soon.patient.timezone,
        )
        await publish_events(kafka_bootstrap_servers, settings.topic(topics.PATIENTS), renamed)
        await publish_raw(kafka_bootstrap_servers, appointments, b"{not json", key=b"x")
        moved = rescheduled(booked_late, now() + timedelta(hours=2), version=2)
        await publish_events(
            kafka_bootstrap_servers,
            appointments,
            booked_late,  # redelivered: no second reminder
            cancelled(to_cancel, version=2),
            moved,
        )

        events = await read_events(kafka_bootstrap_servers, reminders, expect=3, settle=6)
        received_at = now()

    due = [e for e in events if isinstance(e, ReminderDue)]
    assert len(due) == len(events) == 3
    by_id = {e.reminder_id: e for e in due}
    assert set(by_id) == {
        reminder_id_for(booked_late.appointment_id, 1, 1440),
        reminder_id_for(booked_late.appointment_id, 2, 1440),
        reminder_id_for(soon.appointment_id, 1, 60),
    }, "one per appointment version, none for the cancelled one, no duplicate"
    timed = by_id[reminder_id_for(soon.appointment_id, 1, 60)]
    assert timed.due_at == soon.starts_at - timedelta(minutes=60)
    assert timed.occurred_at >= timed.due_at
    assert timed.occurred_at - timed.due_at < timedelta(seconds=2), "woke at its due time"
    assert received_at >= timed.due_at
    assert (timed.patient.name, timed.patient.phone) == ("Ada King", "+12025550178")
    assert by_id[reminder_id_for(booked_late.appointment_id, 2, 1440)].starts_at == moved.starts_at

    group = settings.service_name  # the service's name is its consumer group
    dead = await read_topic(kafka_bootstrap_servers, settings.topic(f"dlt.{group}"), expect=1)
    assert [r.value for r in dead] == [b"{not json"]
    assert dead[0].headers["dlt-consumer-group"] == settings.consumer_group(group)


async def test_two_replicas_emit_each_reminder_once(
    make_settings: Callable[..., Settings], kafka_bootstrap_servers: str
) -> None:
    settings = make_settings(
        scheduler_batch_size=25, scheduler_max_sleep_seconds=0.5, outbox_batch_size=40
    )
    count = 300
    async with running(settings) as first, running(settings) as second:
        claimed = {id(first): 0, id(second): 0}
        for replica in (first, second):
            fire_once = replica.timers.fire_once

            def counting(replica: Scheduler = replica, fire_once: FireOnce = fire_once) -> Any:
                fired, upcoming = fire_once()
                claimed[id(replica)] += fired.claimed
                return fired, upcoming

            replica.timers.fire_once = counting  # type: ignore[method-assign]
        due_in = now() + timedelta(seconds=2)
        patient = snapshot()
        booked = [
            scheduled(due_in + timedelta(minutes=30), patient=patient, offsets=(30,))
            for _ in range(count)
        ]

        def book() -> None:
            # Straight into the table (as the consumer would), so both replicas find
            # the timers due at the same moment.
            with transaction(first.session_factory) as session:
                for event in booked:
                    handle_event(session, event, settings.policy, now())

        await asyncio.to_thread(book)
        records = await read_topic(
            kafka_bootstrap_servers, settings.topic(topics.REMINDERS), expect=count, settle=3
        )
    events = [r.event() for r in records]
    ids = [e.reminder_id for e in events if isinstance(e, ReminderDue)]
    assert len(ids) == count, "each reminder once"
    assert all(claimed.values()), f"both replicas fired some: {claimed}"
    assert set(ids) == {reminder_id_for(e.appointment_id, 1, 30) for e in booked}
