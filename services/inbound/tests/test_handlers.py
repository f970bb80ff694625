"""The service layer against the real database: replies become records and outbox events,
consumed events keep the projections, duplicates have no second effect."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from inbound.adapters.tables import appointments, messaging, replies
from inbound.domain.sns import InboundSms
from inbound.handlers import ReceivedReply, apply_event, record_reply
from reminder_contracts import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    AutoReplySent,
    Event,
    PatientRegistered,
    PatientSnapshot,
    PatientUpdated,
    ReminderSent,
    decode,
    reminder_id_for,
    reply_id_for,
)

pytestmark = pytest.mark.integration

LONG_CODE = "+12025550178"
SHARED = "+34612345678"
NOW = datetime.now(UTC).replace(microsecond=0)


class Clinic:
    """Feeds the projections the way the consumers do, and reads the outbox back."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.sf = session_factory

    def patient(self, phone: str, language: str = "en") -> UUID:
        patient_id = uuid4()
        apply_event(
            self.sf,
            PatientRegistered(
                patient_id=patient_id,
                name="Ana Ruiz",
                phone=phone,
                language=language,
                timezone="Europe/Madrid",
            ),
        )
        return patient_id

    def appointment(
        self,
        patient_id: UUID,
        phone: str,
        in_hours: float,
        *,
        reminded: bool = True,
        language: str = "en",
    ) -> tuple[UUID, str | None]:
        appointment_id = uuid4()
        apply_event(
            self.sf,
            AppointmentScheduled(
                appointment_id=appointment_id,
                patient_id=patient_id,
                starts_at=NOW + timedelta(hours=in_hours),
                patient=PatientSnapshot(
                    patient_id=patient_id,
                    patient_version=1,
                    name="Ana Ruiz",
                    phone=phone,
                    language=language,
                    timezone="Europe/Madrid",
                ),
            ),
        )
        sns_id = None
        if reminded:
            sns_id = f"sns-{uuid4()}"
            apply_event(
                self.sf,
                ReminderSent(
                    appointment_id=appointment_id,
                    patient_id=patient_id,
                    reminder_id=reminder_id_for(appointment_id, 1, 1440),
                    appointment_version=1,
                    sns_message_id=sns_id,
                    segments=1,
                    encoding="GSM-7",
                    language=language,
                ),
            )
        return appointment_id, sns_id

    def reply(
        self,
        phone: str,
        body: str,
        *,
        previous: str | None = None,
        inbound_id: str | None = None,
        sns_id: str | None = None,
        at: datetime = NOW,
    ) -> tuple[UUID, bool]:
        recorded = record_reply(
            self.sf,
            ReceivedReply(
                sms=InboundSms(phone, LONG_CODE, body, inbound_id or str(uuid4()), previous),
                sns_message_id=sns_id or str(uuid4()),
                received_at=at,
            ),
        )
        return recorded.reply_id, recorded.duplicate

    def events(self, reply_id: UUID | None = None) -> list[Event]:
        with self.sf() as session:
            rows = session.execute(
                select(messaging.outbox.table.c.payload).order_by(messaging.outbox.table.c.id)
            ).all()
        found = [decode(r.payload) for r in rows]
        return [e for e in found if reply_id is None or getattr(e, "reply_id", None) == reply_id]

    def answer(self, appointment_id: UUID) -> str | None:
        with self.sf() as session:
            value: str | None = session.execute(
                select(appointments.c.answer).where(appointments.c.appointment_id == appointment_id)
            ).scalar_one()
            return value


@pytest.fixture
def clinic(session_factory: sessionmaker[Session]) -> Clinic:
    return Clinic(session_factory)


def summary(events: list[Event]) -> list[tuple[str, object, object]]:
    return [
        (e.event_type, getattr(e, "patient_id", None), getattr(e, "appointment_id", None))
        for e in events
    ]


def test_yes_confirms_by_phone_with_every_reply_field(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    appointment, _ = clinic.appointment(patient, "+12025550143", 24)
    reply_id, duplicate = clinic.reply("+12025550143", "  Yes!!! 👍", inbound_id="in-1")
    assert not duplicate
    assert reply_id == reply_id_for("in-1")
    [event] = clinic.events(reply_id)
    assert event.event_type == "AppointmentConfirmed"
    data = json.loads(event.model_dump_json())
    assert data["appointment_id"] == str(appointment)
    assert data["patient_id"] == str(patient)
    assert data["reminder_id"] == str(reminder_id_for(appointment, 1, 1440))
    assert (data["inbound_message_id"], data["phone"], data["keyword"], data["language"]) == (
        "in-1",
        "+12025550143",
        "YES",
        "en",
    )
    assert datetime.fromisoformat(data["received_at"]) == NOW
    assert event.key() == str(appointment)
    assert clinic.answer(appointment) == "confirmed"


def test_previous_published_message_id_names_the_reminder(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143", "fr")
    soon, _ = clinic.appointment(patient, "+12025550143", 24, language="fr")
    later, later_sns = clinic.appointment(patient, "+12025550143", 96, language="fr")
    reply_id, _ = clinic.reply("+12025550143", "Non", previous=later_sns)
    assert summary(clinic.events(reply_id)) == [("AppointmentDeclined", patient, later)]
    assert clinic.answer(later) == "declined"
    assert clinic.answer(soon) is None


def test_yes_then_no_ends_declined(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    appointment, _ = clinic.appointment(patient, "+12025550143", 24)
    clinic.reply("+12025550143", "yes", at=NOW)
    reply_id, _ = clinic.reply("+12025550143", "no", at=NOW + timedelta(minutes=2))
    assert summary(clinic.events(reply_id)) == [("AppointmentDeclined", patient, appointment)]
    assert clinic.answer(appointment) == "declined"


def test_an_older_answer_arriving_late_does_not_replace_the_newer(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    appointment, _ = clinic.appointment(patient, "+12025550143", 24)
    clinic.reply("+12025550143", "no", at=NOW)
    clinic.reply("+12025550143", "yes", at=NOW - timedelta(minutes=5))
    assert clinic.answer(appointment) == "declined"


def test_a_late_reply_is_unmatched_and_kept_for_staff(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    past, sns_id = clinic.appointment(patient, "+12025550143", -3)
    reply_id, _ = clinic.reply("+12025550143", "Yes sorry I forgot", previous=sns_id)
    [event] = clinic.events(reply_id)
    data = json.loads(event.model_dump_json())
    assert (event.event_type, data["reason"], data["appointment_id"], data["body"]) == (
        "ReplyUnmatched",
        "no_upcoming_appointment",
        str(past),
        "Yes sorry I forgot",
    )
    assert clinic.answer(past) is None


def test_unknown_number_is_unmatched_without_patient(clinic: Clinic) -> None:
    reply_id, _ = clinic.reply("+33612345678", "oui")
    [event] = clinic.events(reply_id)
    data = json.loads(event.model_dump_json())
    assert (event.event_type, data["reason"], data["patient_id"], data["language"]) == (
        "ReplyUnmatched",
        "unknown_number",
        None,
        "fr",
    )


def test_free_text_is_unmatched_with_its_body(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    clinic.appointment(patient, "+12025550143", 24)
    reply_id, _ = clinic.reply("+12025550143", "not yet, can I call you?")
    [event] = clinic.events(reply_id)
    data = json.loads(event.model_dump_json())
    assert (data["reason"], data["body"], data["keyword"]) == (
        "not_understood",
        "not yet, can I call you?",
        "NOT",
    )


def test_shared_phone_stop_opts_out_every_patient_and_yes_picks_the_soonest(
    clinic: Clinic,
) -> None:
    mother = clinic.patient(SHARED, "es")
    child = clinic.patient(SHARED, "es")
    childs, _ = clinic.appointment(child, SHARED, 20, language="es")
    mothers, _ = clinic.appointment(mother, SHARED, 50, language="es")

    first, _ = clinic.reply(SHARED, "sí")
    assert summary(clinic.events(first)) == [("AppointmentConfirmed", child, childs)]
    second, _ = clinic.reply(SHARED, "Sí", at=NOW + timedelta(minutes=1))
    assert summary(clinic.events(second)) == [("AppointmentConfirmed", mother, mothers)]

    stop, _ = clinic.reply(SHARED, "Arrêt")
    opted = clinic.events(stop)
    assert {(e.event_type, getattr(e, "patient_id", None)) for e in opted} == {
        ("PatientOptedOut", mother),
        ("PatientOptedOut", child),
    }
    assert len({e.event_id for e in opted}) == 2


def test_patient_phone_change_moves_matching_to_the_new_number(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    apply_event(
        clinic.sf,
        PatientUpdated(
            patient_id=patient,
            version=2,
            name="Ana Ruiz",
            phone="+12025550178",
            language="en",
            timezone="America/New_York",
        ),
    )
    old, _ = clinic.reply("+12025550143", "help")
    new, _ = clinic.reply("+12025550178", "help")
    assert summary(clinic.events(old)) == [("HelpRequested", None, None)]
    assert summary(clinic.events(new)) == [("HelpRequested", patient, None)]


def test_cancelled_appointments_are_not_matched_even_when_cancelled_first(
    clinic: Clinic,
) -> None:
    patient = clinic.patient("+12025550143")
    appointment_id = uuid4()
    apply_event(
        clinic.sf,
        AppointmentCancelled(appointment_id=appointment_id, patient_id=patient, version=2),
    )
    apply_event(
        clinic.sf,
        AppointmentScheduled(
            appointment_id=appointment_id,
            patient_id=patient,
            starts_at=NOW + timedelta(days=1),
            patient=PatientSnapshot(
                patient_id=patient,
                patient_version=1,
                name="Ana Ruiz",
                phone="+12025550143",
                language="en",
                timezone="America/New_York",
            ),
        ),
    )
    apply_event(
        clinic.sf,
        ReminderSent(
            appointment_id=appointment_id,
            patient_id=patient,
            reminder_id=reminder_id_for(appointment_id, 1, 60),
            appointment_version=1,
            sns_message_id="m-cancelled",
            segments=1,
            encoding="GSM-7",
            language="en",
        ),
    )
    reply_id, _ = clinic.reply("+12025550143", "yes", previous="m-cancelled")
    [event] = clinic.events(reply_id)
    assert event.event_type == "ReplyUnmatched"


def test_a_reschedule_asks_for_a_new_answer(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    appointment, _ = clinic.appointment(patient, "+12025550143", 24)
    clinic.reply("+12025550143", "yes")
    assert clinic.answer(appointment) == "confirmed"
    apply_event(
        clinic.sf,
        AppointmentRescheduled(
            appointment_id=appointment,
            patient_id=patient,
            version=2,
            previous_starts_at=NOW + timedelta(hours=24),
            starts_at=NOW + timedelta(hours=48),
            patient=PatientSnapshot(
                patient_id=patient,
                patient_version=1,
                name="Ana Ruiz",
                phone="+12025550143",
                language="en",
                timezone="America/New_York",
            ),
        ),
    )
    assert clinic.answer(appointment) is None


def test_duplicate_deliveries_have_no_second_effect(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    clinic.appointment(patient, "+12025550143", 24)
    first, duplicate = clinic.reply("+12025550143", "yes", inbound_id="in-7", sns_id="sns-7")
    assert not duplicate
    # the same SNS message again, and the same SMS in another SNS message
    again, duplicate_sns = clinic.reply("+12025550143", "yes", inbound_id="in-7", sns_id="sns-7")
    rewrapped, duplicate_sms = clinic.reply("+12025550143", "yes", inbound_id="in-7")
    assert (duplicate_sns, duplicate_sms) == (True, True)
    assert first == again == rewrapped
    assert len(clinic.events()) == 1
    with clinic.sf() as session:
        assert len(session.execute(select(replies.c.reply_id)).all()) == 1


def test_consumed_events_are_applied_once(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    event = AppointmentScheduled(
        appointment_id=uuid4(),
        patient_id=patient,
        starts_at=NOW + timedelta(days=2),
        patient=PatientSnapshot(
            patient_id=patient,
            patient_version=1,
            name="Ana Ruiz",
            phone="+12025550143",
            language="en",
            timezone="America/New_York",
        ),
    )
    apply_event(clinic.sf, event)
    clinic.reply("+12025550143", "yes")  # not reminded: unmatched, answer untouched
    apply_event(clinic.sf, event)  # redelivered
    with clinic.sf() as session:
        rows = session.execute(select(appointments.c.appointment_id)).all()
    assert len(rows) == 1


def test_two_deliveries_racing_record_the_reply_once(clinic: Clinic) -> None:
    patient = clinic.patient("+12025550143")
    clinic.appointment(patient, "+12025550143", 24)
    barrier = threading.Barrier(4)

    def deliver(sns_id: str) -> bool:
        barrier.wait()
        return clinic.reply("+12025550143", "yes", inbound_id="in-race", sns_id=sns_id)[1]

    with ThreadPoolExecutor(4) as pool:
        duplicates = list(pool.map(deliver, ["a", "b", "a", "c"]))
    assert sorted(duplicates) == [False, True, True, True]
    assert len(clinic.events()) == 1


def test_no_after_our_confirmation_ack_declines_that_appointment_on_a_shared_phone(
    clinic: Clinic,
) -> None:
    mother = clinic.patient(SHARED, "es")
    child = clinic.patient(SHARED, "es")
    childs, _ = clinic.appointment(child, SHARED, 20, language="es")
    mothers, _ = clinic.appointment(mother, SHARED, 50, language="es")
    first, _ = clinic.reply(SHARED, "sí")
    assert summary(clinic.events(first)) == [("AppointmentConfirmed", child, childs)]
    apply_event(
        clinic.sf,
        AutoReplySent(
            reply_id=first,
            kind="confirmed",
            patient_id=child,
            appointment_id=childs,
            sns_message_id="sns-ack-1",
            segments=1,
            language="es",
        ),
    )
    second, _ = clinic.reply(SHARED, "No", previous="sns-ack-1", at=NOW + timedelta(minutes=1))
    assert summary(clinic.events(second)) == [("AppointmentDeclined", child, childs)]
    assert (clinic.answer(childs), clinic.answer(mothers)) == ("declined", None)
