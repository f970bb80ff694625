"""The service layer: a reply becomes a record and its events in ONE transaction; the
events the service consumes update its projections.

Handlers are synchronous (SQLAlchemy); async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from inbound.adapters import repository as repo
from inbound.adapters.tables import messaging
from inbound.domain.keywords import Intent, understand
from inbound.domain.matching import AppointmentView, Decision, Outcome, decide
from inbound.domain.sns import InboundSms
from reminder_contracts import (
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRescheduled,
    AppointmentScheduled,
    AutoReplySent,
    Event,
    HelpRequested,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientUpdated,
    ReminderSent,
    ReplyUnmatched,
    reply_id_for,
)
from reminder_runtime.db import transaction

CONSUMER = "inbound"
#: ReplyUnmatched.body holds at most this many characters (the contract's limit).
_MAX_BODY = 1600

_EVENT_CLASSES: dict[Outcome, type[Event]] = {
    Outcome.CONFIRMED: AppointmentConfirmed,
    Outcome.DECLINED: AppointmentDeclined,
    Outcome.OPTED_OUT: PatientOptedOut,
    Outcome.OPTED_IN: PatientOptedIn,
    Outcome.HELP: HelpRequested,
    Outcome.UNMATCHED: ReplyUnmatched,
}
_ANSWERS = {Outcome.CONFIRMED: "confirmed", Outcome.DECLINED: "declined"}


@dataclass(frozen=True, slots=True)
class ReceivedReply:
    """An inbound SMS whose SNS envelope has been verified."""

    sms: InboundSms
    sns_message_id: str
    #: When SNS published it (its signed Timestamp).
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyRecorded:
    reply_id: UUID
    duplicate: bool
    event_types: tuple[str, ...] = ()


def handle_reply(
    session: Session, reply: ReceivedReply, default_language: str = "en"
) -> ReplyRecorded:
    """Record one reply and queue its events in the caller's transaction."""
    sms = reply.sms
    reply_id = reply_id_for(sms.inbound_message_id)
    if repo.reply_already_recorded(session, sms.inbound_message_id, reply.sns_message_id):
        return ReplyRecorded(reply_id, duplicate=True)

    understood = understand(sms.body)
    patients = repo.patients_with_phone(session, sms.origination_number)
    named = None
    appointments: list[AppointmentView] = []
    if understood.intent in (Intent.CONFIRM, Intent.DECLINE) and patients:
        # Only answers concern an appointment: spare the other replies these queries.
        named = repo.named_reminder(session, sms.previous_published_message_id)
        appointments = repo.candidate_appointments(
            session,
            [p.patient_id for p in patients],
            reply.received_at,
            also=named.appointment_id if named else None,
        )
    decisions = decide(
        understood, patients, appointments, named, reply.received_at, default_language
    )
    events = [
        _event(decision, index, reply, reply_id, understood.keyword)
        for index, decision in enumerate(decisions)
    ]
    for decision in decisions:
        if decision.outcome in _ANSWERS and decision.appointment_id is not None:
            repo.record_answer(
                session, decision.appointment_id, _ANSWERS[decision.outcome], reply.received_at
            )
    first = decisions[0]
    repo.add_reply(
        session,
        reply_id=reply_id,
        inbound_message_id=sms.inbound_message_id,
        sns_message_id=reply.sns_message_id,
        phone=sms.origination_number,
        received_at=reply.received_at,
        keyword=understood.keyword,
        outcome=first.outcome.value,
        appointment_id=first.appointment_id,
    )
    messaging.outbox.add(session, *events)
    return ReplyRecorded(reply_id, duplicate=False, event_types=tuple(e.event_type for e in events))


def record_reply(
    session_factory: sessionmaker[Session], reply: ReceivedReply, default_language: str = "en"
) -> ReplyRecorded:
    """`handle_reply` in its own transaction. Two deliveries of the same reply racing each
    other: the loser's insert hits the unique keys, and it reports a duplicate."""
    try:
        with transaction(session_factory) as session:
            return handle_reply(session, reply, default_language)
    except IntegrityError:
        with transaction(session_factory) as session:
            if repo.reply_already_recorded(
                session, reply.sms.inbound_message_id, reply.sns_message_id
            ):
                return ReplyRecorded(reply_id_for(reply.sms.inbound_message_id), duplicate=True)
        raise


def _event(
    decision: Decision, index: int, reply: ReceivedReply, reply_id: UUID, keyword: str
) -> Event:
    common: dict[str, Any] = {
        # Deterministic ids: the same reply always yields the same events.
        "event_id": uuid5(reply_id, str(index)),
        "correlation_id": reply_id,
        "reply_id": reply_id,
        "inbound_message_id": reply.sms.inbound_message_id,
        "phone": reply.sms.origination_number,
        "received_at": reply.received_at,
        "keyword": keyword,
        "language": decision.language,
        "patient_id": decision.patient_id,
    }
    if decision.outcome in _ANSWERS:
        common["appointment_id"] = decision.appointment_id
        common["reminder_id"] = decision.reminder_id
    elif decision.outcome is Outcome.UNMATCHED:
        assert decision.reason is not None
        common["reason"] = decision.reason.value
        common["body"] = reply.sms.body[:_MAX_BODY]
        common["appointment_id"] = decision.appointment_id
    return _EVENT_CLASSES[decision.outcome](**common)


# --------------------------------------------------------------------------- projections


def handle_event(session: Session, event: Event) -> None:
    """Apply one consumed event to the projections, once (inbox), in the caller's
    transaction. Version checks make the outcome the same in any order."""
    if not messaging.inbox.first_time(session, consumer=CONSUMER, event_id=event.event_id):
        return
    match event:
        case PatientRegistered() | PatientUpdated():
            repo.upsert_patient(
                session, event.patient_id, event.version, event.phone, event.language
            )
        case AppointmentScheduled() | AppointmentRescheduled():
            snapshot = event.patient
            repo.upsert_patient(
                session,
                snapshot.patient_id,
                snapshot.patient_version,
                snapshot.phone,
                snapshot.language,
            )
            repo.upsert_appointment(
                session,
                event.appointment_id,
                event.patient_id,
                event.version,
                event.starts_at,
                reset_answer=isinstance(event, AppointmentRescheduled),
            )
        case AppointmentCancelled():
            repo.cancel_appointment(session, event.appointment_id, event.patient_id, event.version)
        case ReminderSent():
            repo.add_reminder_sent(
                session,
                event.sns_message_id,
                event.reminder_id,
                event.appointment_id,
                event.patient_id,
                event.occurred_at,
            )
        case AutoReplySent(appointment_id=UUID() as appointment_id):
            repo.add_auto_reply_sent(
                session, event.sns_message_id, appointment_id, event.patient_id, event.occurred_at
            )
        case _:
            pass  # other events on these topics do not concern replies


def apply_event(session_factory: sessionmaker[Session], event: Event) -> None:
    with transaction(session_factory) as session:
        handle_event(session, event)
