"""The sender's service layer against the real database (MariaDB) and SNS (moto server):
what patients receive, what is skipped, once-only sending, failures and crash recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import Event, decode
from reminder_contracts.events import (
    AppointmentConfirmed,
    AutoReplySent,
    HelpRequested,
    PatientUpdated,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
)
from reminder_runtime.db import transaction
from reminder_testkit import SnsServer
from sender import handlers
from sender.adapters.sns import SmsOptions, SnsSmsGateway, make_sns_client
from sender.adapters.tables import messaging, sms_deliveries
from sender.dispatcher import Dispatcher
from sender.domain.messages import Clinic
from sender.domain.segments import count_segments
from sender.handlers import SenderConfig
from sender.templates import load_templates
from sender.testing import cancelled, due, opted, reminder_for, rescheduled, scheduled, snapshot

pytestmark = pytest.mark.integration

LONG_CODE = "+12025550178"
DEC_10_1530_UTC = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)


def outbox_events(session_factory: sessionmaker[Session]) -> list[Event]:
    with transaction(session_factory) as session:
        rows = session.execute(
            select(messaging.outbox.table.c.payload).order_by(messaging.outbox.table.c.id)
        ).scalars()
        return [decode(payload) for payload in rows]


def apply(session_factory: sessionmaker[Session], handler: Callable[..., None], event: Any) -> None:
    with transaction(session_factory) as session:
        handler(session, event)


class CountingGateway:
    """The real SNS gateway, counting publish calls (to see that nothing is retried)."""

    def __init__(self, inner: SnsSmsGateway) -> None:
        self.inner = inner
        self.calls = 0

    async def publish(self, phone: str, text: str) -> str:
        self.calls += 1
        return await self.inner.publish(phone, text)


@pytest.mark.parametrize(
    ("phone", "language", "timezone", "expected"),
    [
        (
            "+12025550143",
            "en",
            "America/New_York",
            "Riverside Family Clinic: Hi Ana, a reminder of your appointment on Thu, December 10 "
            "at 10:30 AM at 12 Main Street. Reply YES to confirm or NO if you cannot come.",
        ),
        (
            "+12025550143",
            "en",
            "America/Los_Angeles",
            "Riverside Family Clinic: Hi Ana, a reminder of your appointment on Thu, December 10 "
            "at 7:30 AM at 12 Main Street. Reply YES to confirm or NO if you cannot come.",
        ),
        (
            "+34612345678",
            "es",
            "Europe/Madrid",
            "Riverside Family Clinic: Hola Ana, le recordamos su cita el jue, 10 de diciembre a "
            "las 16:30 en 12 Main Street. Responda SI para confirmar o NO si no puede venir.",
        ),
        (
            "+33612345678",
            "fr",
            "Europe/Paris",
            "Riverside Family Clinic : Bonjour Ana, rappel de votre rendez-vous le jeu. "
            "10 décembre à 16:30, 12 Main Street. Répondez OUI pour confirmer ou NON si vous ne "
            "pouvez pas venir.",
        ),
    ],
)
async def test_the_sms_reaches_the_right_number_with_the_right_text(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
    phone: str,
    language: str,
    timezone: str,
    expected: str,
) -> None:
    reminder = reminder_for(
        snapshot(phone=phone, language=language, timezone=timezone), DEC_10_1530_UTC
    )
    await make_dispatcher().reminder_due(reminder)

    [sms] = sns.sent_sms()
    assert sms.phone_number == phone
    assert sms.message == expected
    assert sms.origination_number == LONG_CODE
    assert sms.sms_type == "Transactional"
    [sent] = outbox_events(session_factory)
    assert isinstance(sent, ReminderSent)
    assert sent.reminder_id == reminder.reminder_id
    assert sent.sns_message_id == sms.message_id
    assert (sent.segments, sent.encoding, sent.language) == (
        count_segments(expected).segments,
        "GSM-7",
        language,
    )
    assert sent.causation_id == reminder.event_id
    assert sent.correlation_id == reminder.correlation_id


async def test_the_same_reminder_three_times_sends_one_sms(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    reminder = reminder_for()
    dispatcher = make_dispatcher()
    for _ in range(3):
        await dispatcher.reminder_due(reminder)
    # ... and a second replica seeing it again:
    await make_dispatcher().reminder_due(reminder)
    assert len(sns.sent_sms()) == 1
    assert [type(e) for e in outbox_events(session_factory)] == [ReminderSent]


async def test_opted_out_cancelled_and_rescheduled_away_reminders_are_skipped(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    dispatcher = make_dispatcher()
    # Opted out by phone number (STOP came before the reminder).
    quiet = snapshot(phone="+12025550143")
    apply(session_factory, handlers.on_opt, opted(quiet.phone, quiet.patient_id, out=True))
    to_quiet = reminder_for(quiet)
    # Cancelled after the reminder was scheduled.
    booked = scheduled(DEC_10_1530_UTC, snapshot(phone="+34612345678"))
    apply(session_factory, handlers.on_appointment, booked)
    apply(session_factory, handlers.on_appointment, cancelled(booked, version=2))
    # Moved to another time: the old version's reminder is stale.
    moving = scheduled(DEC_10_1530_UTC, snapshot(phone="+33612345678"))
    apply(session_factory, handlers.on_appointment, moving)
    apply(
        session_factory,
        handlers.on_appointment,
        rescheduled(moving, DEC_10_1530_UTC + timedelta(days=2)),
    )

    for reminder in (to_quiet, due(booked), due(moving)):
        await dispatcher.reminder_due(reminder)

    assert sns.sent_sms() == []
    skipped = outbox_events(session_factory)
    assert all(isinstance(e, ReminderSkipped) for e in skipped)
    assert [(e.reminder_id, e.reason) for e in skipped] == [  # type: ignore[attr-defined]
        (to_quiet.reminder_id, "opted_out"),
        (due(booked).reminder_id, "cancelled"),
        (due(moving).reminder_id, "stale"),
    ]


async def test_opting_out_holds_for_the_patient_on_a_new_number_and_start_undoes_it(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    patient = snapshot(phone="+12025550143", version=1)
    stop_at = datetime.now(UTC)
    apply(
        session_factory,
        handlers.on_opt,
        opted(patient.phone, patient.patient_id, out=True, received_at=stop_at),
    )
    # The clinic records a new number afterwards; the patient is still opted out.
    apply(
        session_factory,
        handlers.on_patient,
        PatientUpdated(
            patient_id=patient.patient_id,
            version=2,
            name=patient.name,
            phone="+12025550178",
            language="en",
            timezone="America/New_York",
        ),
    )
    await make_dispatcher().reminder_due(reminder_for(patient))
    assert sns.sent_sms() == []
    # START from the new number (a later reply) opts the patient back in.
    apply(
        session_factory,
        handlers.on_opt,
        opted(
            "+12025550178",
            patient.patient_id,
            out=False,
            received_at=stop_at + timedelta(minutes=1),
        ),
    )
    await make_dispatcher().reminder_due(reminder_for(patient))
    [sms] = sns.sent_sms()
    assert sms.phone_number == "+12025550178"  # the current number, not the snapshot's


async def test_the_patients_current_phone_and_language_win_over_a_stale_snapshot(
    make_dispatcher: Callable[..., Dispatcher],
    sns: SnsServer,
    session_factory: sessionmaker[Session],
) -> None:
    patient = snapshot(phone="+12025550143", language="en", version=1)
    apply(
        session_factory,
        handlers.on_patient,
        PatientUpdated(
            patient_id=patient.patient_id,
            version=3,
            name="Ana Lopez",
            phone="+34612345678",
            language="es",
            timezone="Europe/Madrid",
        ),
    )
    await make_dispatcher().reminder_due(reminder_for(patient))  # snapshot still says v1, en
    [sms] = sns.sent_sms()
    assert sms.phone_number == "+34612345678"
    assert sms.message.startswith("Riverside Family Clinic: Hola Ana")


async def test_a_number_sns_refuses_fails_without_retry_and_the_next_reminder_goes(
    make_dispatcher: Callable[..., Dispatcher],
    gateway: SnsSmsGateway,
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    good = reminder_for(snapshot(phone="+12025550143"))
    refused = reminder_for(snapshot(phone="+33612345678"))
    # A number SNS answers InvalidParameter for (the contracts would not let a
    # malformed number through, so it is put in after validation, as AWS may refuse
    # numbers libphonenumber accepts).
    refused = refused.model_copy(
        update={"patient": refused.patient.model_copy(update={"phone": "+3361234567812345"})}
    )
    counting = CountingGateway(gateway)
    dispatcher = make_dispatcher(gateway=counting)
    await dispatcher.reminder_due(refused)
    await dispatcher.reminder_due(good)

    assert counting.calls == 2  # one each: InvalidParameter is not retried
    [sms] = sns.sent_sms()
    assert sms.phone_number == "+12025550143"
    failed, sent = outbox_events(session_factory)
    assert isinstance(failed, ReminderFailed)
    assert (failed.reminder_id, failed.error_code, failed.retryable) == (
        refused.reminder_id,
        "InvalidParameter",
        False,
    )
    assert "3361234567812345" not in failed.error  # no phone number in the event's text
    assert isinstance(sent, ReminderSent)


def stubbed_gateway(
    *errors: tuple[str, int], message_id: str | None = "stub-msg-1"
) -> tuple[SnsSmsGateway, Stubber]:
    client = make_sns_client(5, 1)
    stubber = Stubber(client)
    for code, status in errors:
        stubber.add_client_error(
            "publish",
            service_error_code=code,
            http_status_code=status,
            service_message="Rate exceeded",
        )
    if message_id is not None:
        stubber.add_response("publish", {"MessageId": message_id})
    stubber.activate()
    return SnsSmsGateway(client, SmsOptions(LONG_CODE, None), threads=1), stubber


async def test_throttling_is_retried_with_backoff_then_succeeds(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
) -> None:
    gateway, stubber = stubbed_gateway(
        ("Throttling", 400), ("Throttling", 400), ("InternalError", 500)
    )
    reminder = reminder_for()
    await make_dispatcher(gateway=gateway, max_attempts=4).reminder_due(reminder)
    stubber.assert_no_pending_responses()  # three refusals, then the publish that worked
    [sent] = outbox_events(session_factory)
    assert isinstance(sent, ReminderSent)
    assert sent.sns_message_id == "stub-msg-1"
    with transaction(session_factory) as session:
        attempts = session.execute(select(sms_deliveries.c.attempts)).scalar_one()
    assert attempts == 4
    gateway.close()


async def test_throttling_that_never_ends_fails_as_retryable_after_the_last_attempt(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
) -> None:
    gateway, stubber = stubbed_gateway(*[("Throttling", 400)] * 3, message_id=None)
    await make_dispatcher(gateway=gateway, max_attempts=3).reminder_due(reminder_for())
    stubber.assert_no_pending_responses()
    [failed] = outbox_events(session_factory)
    assert isinstance(failed, ReminderFailed)
    assert (failed.error_code, failed.retryable) == ("Throttling", True)
    gateway.close()


async def test_a_crash_between_publish_and_record_is_reported_never_resent(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    reminder = reminder_for()
    config = SenderConfig(load_templates(), Clinic("Riverside Family Clinic", "+12025550100"))
    # The worker claimed the reminder ('sending'), published, and died before recording.
    with transaction(session_factory) as session:
        handlers.claim_reminder(session, reminder, config, datetime.now(UTC))

    # Redelivered while the attempt is young: it may still be in flight on another
    # replica, so nothing happens yet.
    await make_dispatcher(stale_after=timedelta(minutes=5)).reminder_due(reminder)
    assert sns.sent_sms() == []
    assert outbox_events(session_factory) == []

    # Once it is older than any publish can take, it is closed as unknown_outcome.
    later = make_dispatcher(stale_after=timedelta(seconds=0))
    assert await later.close_abandoned() == 1
    [failed] = outbox_events(session_factory)
    assert isinstance(failed, ReminderFailed)
    assert (failed.reminder_id, failed.error_code, failed.retryable) == (
        reminder.reminder_id,
        "unknown_outcome",
        False,
    )
    # ... and a later redelivery sends nothing either.
    await later.reminder_due(reminder)
    assert sns.sent_sms() == []
    assert len(outbox_events(session_factory)) == 1


async def test_help_is_answered_once_and_acknowledgements_follow_the_setting(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    now = datetime.now(UTC)
    help_es = HelpRequested(
        reply_id=reminder_for().reminder_id,
        inbound_message_id="in-1",
        phone="+34612345678",
        received_at=now,
        keyword="AYUDA",
        language="es",
        patient_id=None,
    )
    yes = AppointmentConfirmed(
        reply_id=reminder_for().reminder_id,
        inbound_message_id="in-2",
        phone="+12025550143",
        received_at=now,
        keyword="YES",
        language="en",
        appointment_id=reminder_for().appointment_id,
        patient_id=reminder_for().patient_id,
    )
    dispatcher = make_dispatcher()
    for _ in range(2):
        await dispatcher.reply(help_es)
        await dispatcher.reply(yes)
    messages = sorted((s.phone_number, s.message) for s in sns.sent_sms())
    assert messages == [
        (
            "+12025550143",
            "Riverside Family Clinic: Thank you, your appointment is confirmed. See you soon!",
        ),
        (
            "+34612345678",
            "Riverside Family Clinic: recordatorios de citas. ¿Dudas? Llame al +12025550100. "
            "Responda STOP para no recibir mas mensajes, START para volver a recibirlos.",
        ),
    ]
    kinds = sorted(e.kind for e in outbox_events(session_factory) if isinstance(e, AutoReplySent))
    assert kinds == ["confirmed", "help"]

    quiet = make_dispatcher(
        config=SenderConfig(
            load_templates(), Clinic("Riverside Family Clinic", "+1"), send_acknowledgements=False
        )
    )
    await quiet.reply(yes.model_copy(update={"reply_id": reminder_for().reminder_id}))
    assert len(sns.sent_sms()) == 2  # acknowledgements off: nothing more

    # A number that opted out gets no acknowledgement, but HELP is still answered.
    apply(session_factory, handlers.on_opt, opted("+12025550143", None, out=True))
    await dispatcher.reply(yes.model_copy(update={"reply_id": reminder_for().reminder_id}))
    assert len(sns.sent_sms()) == 2
    await dispatcher.reply(
        help_es.model_copy(update={"reply_id": reminder_for().reminder_id, "phone": "+12025550143"})
    )
    assert len(sns.sent_sms()) == 3


class HeldGateway:
    """Publishes through moto once released: a send caught in the middle of a shutdown."""

    def __init__(self, inner: SnsSmsGateway) -> None:
        self.inner = inner
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, phone: str, text: str) -> str:
        self.called.set()
        await self.release.wait()
        return await self.inner.publish(phone, text)


async def test_a_shutdown_mid_send_still_records_the_outcome_and_claims_nothing_new(
    make_dispatcher: Callable[..., Dispatcher],
    gateway: SnsSmsGateway,
    session_factory: sessionmaker[Session],
    sns: SnsServer,
) -> None:
    held = HeldGateway(gateway)
    dispatcher = make_dispatcher(gateway=held)
    in_flight = reminder_for()
    consumer = asyncio.create_task(dispatcher.reminder_due(in_flight))
    await asyncio.wait_for(held.called.wait(), timeout=10)
    # Shutdown: the consumer is cancelled while SNS is being called.
    consumer.cancel()
    draining = asyncio.create_task(dispatcher.drain())
    held.release.set()
    await asyncio.wait_for(draining, timeout=10)

    [sent] = outbox_events(session_factory)
    assert isinstance(sent, ReminderSent)
    assert sent.reminder_id == in_flight.reminder_id
    assert len(sns.sent_sms()) == 1

    # While stopping, a new reminder is not claimed: it stays for the next process.
    late = asyncio.create_task(dispatcher.reminder_due(reminder_for()))
    await asyncio.sleep(0.3)
    late.cancel()
    with transaction(session_factory) as session:
        states = session.execute(select(sms_deliveries.c.state)).scalars().all()
    assert states == ["sent"]


async def test_a_max_price_is_passed_to_sns_when_set(
    make_dispatcher: Callable[..., Dispatcher], sns: SnsServer
) -> None:
    priced = SnsSmsGateway(make_sns_client(5, 1), SmsOptions(LONG_CODE, Decimal("0.05")), threads=1)
    await make_dispatcher(gateway=priced).reminder_due(reminder_for())
    priced.close()
    [sms] = sns.sent_sms()
    assert sms.raw["message_attributes"]["AWS.SNS.SMS.MaxPrice"] == "0.05"
    assert sms.origination_number == LONG_CODE


async def test_a_database_blip_after_the_publish_does_not_lose_the_outcome(
    make_dispatcher: Callable[..., Dispatcher],
    session_factory: sessionmaker[Session],
    sns: SnsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_record = handlers.record_sent
    failures = iter([True, True])

    def flaky_record(session: Session, **kwargs: Any) -> bool:
        if next(failures, False):
            raise OperationalError("UPDATE sms_deliveries", {}, Exception("server has gone away"))
        return real_record(session, **kwargs)

    monkeypatch.setattr(handlers, "record_sent", flaky_record)
    reminder = reminder_for()
    await make_dispatcher().reminder_due(reminder)
    [sms] = sns.sent_sms()
    [sent] = outbox_events(session_factory)
    assert isinstance(sent, ReminderSent)
    assert sent.sns_message_id == sms.message_id
