"""The sender as it runs: the real app (uvicorn) on Tansu, MariaDB and the moto SNS server;
events in through Kafka, SMS out through SNS, delivery events out on Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from reminder_contracts import topics
from reminder_contracts.events import PatientUpdated, ReminderSent, ReminderSkipped
from reminder_testkit import SnsServer, async_wait_for, free_port
from reminder_testkit.apps import serve_app
from reminder_testkit.topics import publish_events, read_events
from sender.app import Sender, create_app
from sender.settings import Settings
from sender.testing import cancelled, due, opted, reminder_for, scheduled, snapshot

pytestmark = pytest.mark.integration

DEC_10_1530_UTC = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Sender]:
    """The app served by uvicorn in this event loop, until the block ends (graceful stop)."""
    settings = settings.model_copy(update={"http_port": free_port()})
    app = create_app(settings)
    async with serve_app(app, port=settings.http_port):
        yield app.state.sender


def known(sender: Sender, table: str, where: str = "1 = 1") -> bool:
    with sender.engine.connect() as conn:
        query = text(f"SELECT COUNT(*) FROM {table} WHERE {where}")  # noqa: S608
        return bool(conn.execute(query).scalar_one())


async def test_reminders_in_sms_and_delivery_events_out(
    make_settings: Callable[..., Settings], kafka_bootstrap_servers: str, sns: SnsServer
) -> None:
    settings = make_settings()
    english = reminder_for(snapshot(phone="+12025550143"), DEC_10_1530_UTC)
    spanish = reminder_for(
        snapshot(phone="+34612345678", language="es", timezone="Europe/Madrid"), DEC_10_1530_UTC
    )
    french = reminder_for(
        snapshot(phone="+33612345678", language="fr", timezone="Europe/Paris"), DEC_10_1530_UTC
    )
    to_cancel = scheduled(DEC_10_1530_UTC, snapshot(phone="+12025550178"))
    stopped = snapshot(phone="+12025550100")
    to_stopped = reminder_for(stopped)

    async with running(settings) as sender:
        await publish_events(
            kafka_bootstrap_servers,
            settings.topic(topics.APPOINTMENTS),
            to_cancel,
            cancelled(to_cancel),
        )
        await publish_events(
            kafka_bootstrap_servers,
            settings.topic(topics.REPLIES),
            opted(stopped.phone, stopped.patient_id, out=True),
        )
        # The French patient's number changes after the reminder was scheduled.
        await publish_events(
            kafka_bootstrap_servers,
            settings.topic(topics.PATIENTS),
            PatientUpdated(
                patient_id=french.patient_id,
                version=2,
                name="Ana Lopez",
                phone="+33612345679",
                language="fr",
                timezone="Europe/Paris",
            ),
        )
        # State first (as it would be in a running system), then the reminders.
        await async_wait_for(
            lambda: (
                known(sender, "opt_outs")
                and known(sender, "appointments")
                and known(sender, "patients", "version = 2")
            )
        )
        await publish_events(
            kafka_bootstrap_servers,
            settings.topic(topics.REMINDERS),
            english,
            english,
            spanish,
            french,
            english,  # english three times
            due(to_cancel),
            to_stopped,
        )
        events = await read_events(
            kafka_bootstrap_servers, settings.topic(topics.DELIVERIES), expect=5, settle=2
        )
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{sender.settings.http_port}"
        ) as client:
            ready = (await client.get("/readyz")).json()
            metrics = (await client.get("/metrics")).text
    assert ready["ready"] is True, ready

    sent = {(s.phone_number, s.message.split(",")[0]) for s in sns.sent_sms()}
    assert sent == {
        ("+12025550143", "Riverside Family Clinic: Hi Ana"),
        ("+34612345678", "Riverside Family Clinic: Hola Ana"),
        ("+33612345679", "Riverside Family Clinic : Bonjour Ana"),  # the updated number
    }
    assert len(sns.sent_sms()) == 3  # the English reminder came three times, went once
    assert sorted(e.reminder_id for e in events if isinstance(e, ReminderSent)) == sorted(
        [english.reminder_id, spanish.reminder_id, french.reminder_id]
    )
    skipped = {e.reminder_id: e.reason for e in events if isinstance(e, ReminderSkipped)}
    assert skipped == {
        due(to_cancel).reminder_id: "cancelled",
        to_stopped.reminder_id: "opted_out",
    }
    assert 'sender_sms_sent_total{kind="reminder"}' in metrics
    assert "+1202" not in metrics  # no phone number in any label


async def test_a_restart_in_the_middle_of_a_batch_loses_nothing_and_repeats_nothing(
    make_settings: Callable[..., Settings], kafka_bootstrap_servers: str, sns: SnsServer
) -> None:
    settings = make_settings(sms_max_per_second=4)
    batch = [
        reminder_for(snapshot(phone="+12025550143"), DEC_10_1530_UTC + timedelta(hours=i))
        for i in range(20)
    ]
    await publish_events(kafka_bootstrap_servers, settings.topic(topics.REMINDERS), *batch)
    async with running(settings):
        await async_wait_for(lambda: len(sns.sent_sms()) >= 3, timeout=30)
    # Stopped gracefully mid-batch (SIGTERM in production); a new process takes over.
    assert len(sns.sent_sms()) < len(batch)
    async with running(settings):
        await async_wait_for(lambda: len(sns.sent_sms()) >= len(batch), timeout=60)
        events = await read_events(
            kafka_bootstrap_servers,
            settings.topic(topics.DELIVERIES),
            expect=len(batch),
            settle=2,
        )
    assert len(sns.sent_sms()) == len(batch)
    unique = {e.event_id: e for e in events}.values()  # the relay is at-least-once
    sent_ids = [e.reminder_id for e in unique if isinstance(e, ReminderSent)]
    assert sorted(sent_ids) == sorted(r.reminder_id for r in batch)
