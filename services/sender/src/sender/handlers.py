"""The service layer: one unit of work per step, each in ONE transaction (state + outbox).

Sending one SMS takes three steps (see `sender.dispatcher`): `claim_*` records the attempt
('sending') or the skip, the SNS publish happens outside any transaction, `record_*`
writes the outcome and its event. The delivery row's primary key (reminder_id or
reply_id) is what makes it once-only, whatever Kafka redelivers and however many
replicas run.

Crash between publish and record -- the policy: an attempt found still 'sending' after
`SENDING_STALE_AFTER_SECONDS` is NOT sent again; it is closed as
`ReminderFailed(error_code="unknown_outcome", retryable=False)`. Why: the attempt is
recorded only after the send slot was granted, right before the publish call, so a row
left 'sending' almost always means the publish was under way -- the SMS most likely went.
Re-sending would then surely text the patient twice; not re-sending risks a missing
reminder only in the rare case the crash hit before SNS got the request, and that case
is not silent: staff see the failed reminder in the admin view (and the appointment's
other reminder offsets still go). A twice-sent SMS cannot be undone; a missing one can
be covered by a phone call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from reminder_contracts.events import (
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    AutoReplySent,
    Event,
    HelpRequested,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientUpdated,
    ReminderDue,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
)

from .adapters.tables import appointments, messaging, opt_outs, patients, sms_deliveries
from .domain.delivery import (
    UNKNOWN_OUTCOME,
    KnownAppointment,
    KnownPatient,
    OptState,
    Send,
    Skip,
    apply_opt,
    current_patient,
    decide,
)
from .domain.messages import (
    Clinic,
    ComposedSms,
    ReplyKind,
    TemplateBook,
    compose_reminder,
    compose_reply,
)

log = logging.getLogger(__name__)

SENT = Counter("sender_sms_sent_total", "SMS accepted by SNS", ["kind"])
FAILED = Counter("sender_sms_failed_total", "SMS that could not be sent", ["kind", "error_code"])
SKIPPED = Counter("sender_reminders_skipped_total", "Reminders not sent", ["reason"])

DeliveryKind = Literal["reminder", "help", "confirmed", "declined"]
ReplyEvent = HelpRequested | AppointmentConfirmed | AppointmentDeclined


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """MySQL hands DATETIME back without tzinfo; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SenderConfig:
    """What the handlers need besides a session: the texts and the clinic's details."""

    templates: TemplateBook
    clinic: Clinic
    send_acknowledgements: bool = True


@dataclass(frozen=True)
class SmsJob:
    """A claimed SMS: recorded as 'sending', to be published once. Holds PHI (phone, text)
    in memory only."""

    delivery_id: UUID
    kind: DeliveryKind
    phone: str
    sms: ComposedSms


# ------------------------------------------------------------------ what the sender knows


def _load_patient(session: Session, patient_id: UUID) -> KnownPatient | None:
    row = session.execute(select(patients).where(patients.c.patient_id == patient_id)).first()
    if row is None:
        return None
    return KnownPatient(
        patient_id=row.patient_id,
        version=row.version,
        name=row.name,
        phone=row.phone,
        language=row.language,
        timezone=row.timezone,
    )


def _save_patient(session: Session, patient: KnownPatient) -> None:
    """Keep the highest version (a row lock makes concurrent writers take turns)."""
    current = session.execute(
        select(patients.c.version)
        .where(patients.c.patient_id == patient.patient_id)
        .with_for_update()
    ).scalar_one_or_none()
    values: dict[str, Any] = {
        "version": patient.version,
        "name": patient.name,
        "phone": patient.phone,
        "language": patient.language,
        "timezone": patient.timezone,
    }
    if current is None:
        session.execute(insert(patients).values(patient_id=patient.patient_id, **values))
    elif patient.version > current:
        session.execute(
            update(patients).where(patients.c.patient_id == patient.patient_id).values(**values)
        )


def on_patient(session: Session, event: PatientRegistered | PatientUpdated) -> None:
    _save_patient(
        session,
        KnownPatient(
            patient_id=event.patient_id,
            version=event.version,
            name=event.name,
            phone=event.phone,
            language=event.language,
            timezone=event.timezone,
        ),
    )


def _load_appointment(session: Session, appointment_id: UUID) -> KnownAppointment | None:
    row = session.execute(
        select(appointments).where(appointments.c.appointment_id == appointment_id)
    ).first()
    if row is None:
        return None
    return KnownAppointment(
        appointment_id=row.appointment_id,
        version=row.version,
        starts_at=_aware(row.starts_at),
        cancelled=row.cancelled,
    )


AppointmentEvent = (
    AppointmentScheduled | AppointmentRescheduled | AppointmentCancelled | AttendanceRecorded
)


def on_appointment(session: Session, event: AppointmentEvent) -> None:
    """Keep the highest version of each appointment: its time, and whether it is cancelled."""
    if isinstance(event, AppointmentScheduled | AppointmentRescheduled):
        _save_patient(session, KnownPatient.from_snapshot(event.patient))
    current = session.execute(
        select(appointments)
        .where(appointments.c.appointment_id == event.appointment_id)
        .with_for_update()
    ).first()
    if current is not None and event.version <= current.version:
        return  # an older or repeated event: what we know is newer
    starts_at = _aware(current.starts_at) if current is not None else None
    cancelled = bool(current.cancelled) if current is not None else False
    if isinstance(event, AppointmentScheduled | AppointmentRescheduled):
        starts_at, cancelled = event.starts_at.astimezone(UTC), False
    elif isinstance(event, AppointmentCancelled):
        cancelled = True
    values = {"version": event.version, "starts_at": starts_at, "cancelled": cancelled}
    if current is None:
        session.execute(insert(appointments).values(appointment_id=event.appointment_id, **values))
    else:
        session.execute(
            update(appointments)
            .where(appointments.c.appointment_id == event.appointment_id)
            .values(**values)
        )


def _save_opt(session: Session, kind: str, subject: str, change: OptState) -> None:
    row = session.execute(
        select(opt_outs.c.opted_out, opt_outs.c.changed_at)
        .where(opt_outs.c.subject_kind == kind, opt_outs.c.subject == subject)
        .with_for_update()
    ).first()
    current = None if row is None else OptState(row.opted_out, _aware(row.changed_at))  # type: ignore[arg-type]
    new = apply_opt(current, change)
    if current is None:
        session.execute(
            insert(opt_outs).values(
                subject_kind=kind,
                subject=subject,
                opted_out=new.opted_out,
                changed_at=new.changed_at,
            )
        )
    elif new != current:
        session.execute(
            update(opt_outs)
            .where(opt_outs.c.subject_kind == kind, opt_outs.c.subject == subject)
            .values(opted_out=new.opted_out, changed_at=new.changed_at)
        )


def on_opt(session: Session, event: PatientOptedOut | PatientOptedIn) -> None:
    """Track opt-out by phone number AND by patient (so a new number stays silenced)."""
    change = OptState(
        opted_out=isinstance(event, PatientOptedOut), changed_at=event.received_at.astimezone(UTC)
    )
    _save_opt(session, "phone", event.phone, change)
    if event.patient_id is not None:
        _save_opt(session, "patient", str(event.patient_id), change)


def is_opted_out(session: Session, phone: str, patient_id: UUID | None) -> bool:
    subjects = [and_(opt_outs.c.subject_kind == "phone", opt_outs.c.subject == phone)]
    if patient_id is not None:
        subjects.append(
            and_(opt_outs.c.subject_kind == "patient", opt_outs.c.subject == str(patient_id))
        )
    found = session.execute(
        select(opt_outs.c.subject_kind).where(or_(*subjects), opt_outs.c.opted_out.is_(True))
    ).first()
    return found is not None


# ------------------------------------------------------------------ reminders


@dataclass(frozen=True)
class AlreadyHandled:
    """This reminder (or reply) already has a delivery row: nothing more to do here."""

    state: str


def plan_reminder(
    session: Session, event: ReminderDue, config: SenderConfig
) -> AlreadyHandled | Skip | SmsJob:
    """What would happen to this reminder now; reads only."""
    state = session.execute(
        select(sms_deliveries.c.state).where(sms_deliveries.c.delivery_id == event.reminder_id)
    ).scalar_one_or_none()
    if state is not None:
        return AlreadyHandled(state)
    patient = current_patient(event, _load_patient(session, event.patient_id))
    decision = decide(
        event,
        _load_appointment(session, event.appointment_id),
        patient,
        opted_out=is_opted_out(session, patient.phone, patient.patient_id),
    )
    if isinstance(decision, Skip):
        return decision
    assert isinstance(decision, Send)
    sms = compose_reminder(
        config.templates,
        config.clinic,
        name=patient.name,
        language=patient.language,
        timezone=patient.timezone,
        starts_at=event.starts_at,
        location=event.location,
        provider=event.provider,
    )
    return SmsJob(event.reminder_id, "reminder", patient.phone, sms)


def _delivery_row(
    event: Event, delivery_id: UUID, kind: DeliveryKind, state: str, now: datetime
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "kind": kind,
        "state": state,
        "appointment_id": getattr(event, "appointment_id", None),
        "patient_id": getattr(event, "patient_id", None),
        "appointment_version": getattr(event, "appointment_version", None),
        "cause_event_id": event.event_id,
        "correlation_id": event.correlation_id,
        "attempts": 0,
        "started_at": now,
    }


def claim_reminder(
    session: Session, event: ReminderDue, config: SenderConfig, now: datetime
) -> AlreadyHandled | Skip | SmsJob:
    """Decide again (an opt-out may have come in meanwhile) and record the outcome of the
    decision: the skip with its event, or the attempt as 'sending'.

    Raises IntegrityError when another worker claimed the same reminder first.
    """
    plan = plan_reminder(session, event, config)
    if isinstance(plan, AlreadyHandled):
        return plan
    if isinstance(plan, Skip):
        row = _delivery_row(event, event.reminder_id, "reminder", "skipped", now)
        session.execute(
            insert(sms_deliveries).values(**row, error_code=plan.reason, finished_at=now)
        )
        messaging.outbox.add(
            session,
            ReminderSkipped(
                reminder_id=event.reminder_id,
                appointment_id=event.appointment_id,
                patient_id=event.patient_id,
                appointment_version=event.appointment_version,
                reason=plan.reason,
                **event.caused(),
            ),
        )
        SKIPPED.labels(plan.reason).inc()
        return plan
    row = _delivery_row(event, event.reminder_id, "reminder", "sending", now)
    session.execute(
        insert(sms_deliveries).values(
            **row,
            language=plan.sms.language,
            segments=plan.sms.segments,
            encoding=plan.sms.encoding,
        )
    )
    return plan


# ------------------------------------------------------------------ replies the sender owes


def _reply_kind(event: ReplyEvent) -> ReplyKind:
    if isinstance(event, HelpRequested):
        return "help"
    return "confirmed" if isinstance(event, AppointmentConfirmed) else "declined"


def plan_reply(
    session: Session, event: ReplyEvent, config: SenderConfig
) -> AlreadyHandled | Skip | SmsJob | None:
    """The HELP text is owed to anyone who asks (even after STOP, as carriers require);
    acknowledgements only when enabled and the number has not opted out. None: nothing owed."""
    kind = _reply_kind(event)
    if kind != "help" and not config.send_acknowledgements:
        return None
    state = session.execute(
        select(sms_deliveries.c.state).where(sms_deliveries.c.delivery_id == event.reply_id)
    ).scalar_one_or_none()
    if state is not None:
        return AlreadyHandled(state)
    if kind != "help" and is_opted_out(session, event.phone, getattr(event, "patient_id", None)):
        return Skip("opted_out")
    sms = compose_reply(config.templates, config.clinic, kind, event.language)
    return SmsJob(event.reply_id, kind, event.phone, sms)


def claim_reply(
    session: Session, event: ReplyEvent, config: SenderConfig, now: datetime
) -> AlreadyHandled | Skip | SmsJob | None:
    plan = plan_reply(session, event, config)
    if plan is None or isinstance(plan, AlreadyHandled):
        return plan
    row = _delivery_row(event, event.reply_id, _reply_kind(event), "sending", now)
    row["appointment_version"] = None
    if isinstance(plan, Skip):
        row |= {"state": "skipped", "error_code": plan.reason, "finished_at": now}
        session.execute(insert(sms_deliveries).values(**row))
        return plan
    session.execute(
        insert(sms_deliveries).values(
            **row,
            language=plan.sms.language,
            segments=plan.sms.segments,
            encoding=plan.sms.encoding,
        )
    )
    return plan


# ------------------------------------------------------------------ outcomes


def _sending_row(session: Session, delivery_id: UUID) -> Any:
    return session.execute(
        select(sms_deliveries)
        .where(sms_deliveries.c.delivery_id == delivery_id, sms_deliveries.c.state == "sending")
        .with_for_update()
    ).first()


def _envelope(row: Any) -> dict[str, Any]:
    return {"correlation_id": row.correlation_id, "causation_id": row.cause_event_id}


def record_sent(
    session: Session, *, delivery_id: UUID, message_id: str, attempts: int, now: datetime
) -> bool:
    """The SMS went: state 'sent' and ReminderSent / AutoReplySent. False if the row was
    no longer 'sending' (closed by the sweeper meanwhile: nothing to add)."""
    row = _sending_row(session, delivery_id)
    if row is None:
        return False
    session.execute(
        update(sms_deliveries)
        .where(sms_deliveries.c.delivery_id == delivery_id)
        .values(state="sent", sns_message_id=message_id, attempts=attempts, finished_at=now)
    )
    event: Event
    if row.kind == "reminder":
        event = ReminderSent(
            reminder_id=delivery_id,
            appointment_id=row.appointment_id,
            patient_id=row.patient_id,
            appointment_version=row.appointment_version,
            sns_message_id=message_id,
            segments=row.segments,
            encoding=row.encoding,
            language=row.language,
            **_envelope(row),
        )
    else:
        event = AutoReplySent(
            reply_id=delivery_id,
            kind=row.kind,
            patient_id=row.patient_id,
            appointment_id=row.appointment_id,
            sns_message_id=message_id,
            segments=row.segments,
            language=row.language,
            **_envelope(row),
        )
    messaging.outbox.add(session, event)
    SENT.labels(row.kind).inc()
    return True


def record_failed(
    session: Session,
    *,
    delivery_id: UUID,
    error_code: str,
    error: str,
    retryable: bool,
    attempts: int,
    now: datetime,
) -> bool:
    """The SMS did not go (or may not have): state 'failed' and, for a reminder,
    ReminderFailed. `error` must carry no phone number or text."""
    row = _sending_row(session, delivery_id)
    if row is None:
        return False
    session.execute(
        update(sms_deliveries)
        .where(sms_deliveries.c.delivery_id == delivery_id)
        .values(state="failed", error_code=error_code[:64], attempts=attempts, finished_at=now)
    )
    if row.kind == "reminder":
        messaging.outbox.add(
            session,
            ReminderFailed(
                reminder_id=delivery_id,
                appointment_id=row.appointment_id,
                patient_id=row.patient_id,
                appointment_version=row.appointment_version,
                error_code=error_code,
                error=error,
                retryable=retryable,
                **_envelope(row),
            ),
        )
    FAILED.labels(row.kind, error_code).inc()
    log.warning(
        "sms failed",
        extra={"delivery_id": str(delivery_id), "kind": row.kind, "error_code": error_code},
    )
    return True


def close_abandoned(session: Session, *, now: datetime, stale_after: timedelta) -> int:
    """Close attempts left 'sending' by a crashed worker as unknown_outcome (see the
    module docstring for why they are not sent again). Returns how many were closed."""
    cutoff = now - stale_after
    ids = session.execute(
        select(sms_deliveries.c.delivery_id)
        .where(sms_deliveries.c.state == "sending", sms_deliveries.c.started_at < cutoff)
        .limit(500)
    ).scalars()
    closed = 0
    for delivery_id in list(ids):
        closed += record_failed(
            session,
            delivery_id=delivery_id,
            error_code=UNKNOWN_OUTCOME,
            error="the sender stopped while this SMS was being published; it may or may not "
            "have been sent, and is not sent again",
            retryable=False,
            attempts=1,
            now=now,
        )
    return closed
