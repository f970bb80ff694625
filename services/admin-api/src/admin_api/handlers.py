"""The service layer: one function per command and one entry point for every consumed event.

Each takes a unit of work (a SQLAlchemy `Session` inside `reminder_runtime.db.transaction`).
A command validates, emits its event to the outbox and projects that same event, all in
the caller's ONE transaction: the write and its event happen together or not at all, and
the projection reads its own writes at once. The consumer later meets the event again on
Kafka and the inbox drops it as already handled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import Row, insert, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from reminder_contracts import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    Event,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientSnapshot,
    PatientUpdated,
    decode,
    encode,
)
from reminder_contracts.events import _PhoneReply

from . import domain
from .adapters.tables import (
    appointment_events,
    appointment_locks,
    appointments,
    idempotency_keys,
    messaging,
    patient_consent,
    patients,
    phone_replies,
)
from .domain import AppointmentView, Conflict, InvalidInput, NotFound

CONSUMER = "admin-api"


def utcnow() -> datetime:
    return datetime.now(UTC)


# =========================================================================== projection


def project(session: Session, event: Event, zone: ZoneInfo) -> bool:
    """Apply one event to the projection, once: False if it was already applied."""
    if not messaging.inbox.first_time(session, consumer=CONSUMER, event_id=event.event_id):
        return False
    if isinstance(event, PatientRegistered | PatientUpdated):
        _project_patient(session, event)
    if isinstance(event, _PhoneReply):
        _project_phone_reply(session, event)
    appointment_id = getattr(event, "appointment_id", None)
    if isinstance(appointment_id, UUID):
        _project_appointment_event(session, appointment_id, event, zone)
    return True


def _project_patient(session: Session, event: PatientRegistered | PatientUpdated) -> None:
    stored = session.execute(
        select(patients.c.version).where(patients.c.id == event.patient_id).with_for_update()
    ).scalar_one_or_none()
    values = {
        "version": event.version,
        "name": event.name,
        "phone": event.phone,
        "language": event.language,
        "timezone": event.timezone,
        "updated_at": event.occurred_at,
    }
    if stored is None:
        session.execute(
            insert(patients).values(id=event.patient_id, registered_at=event.occurred_at, **values)
        )
    elif event.version > stored:  # keep the newest state; an older one arriving late is moot
        session.execute(update(patients).where(patients.c.id == event.patient_id).values(values))


def _project_phone_reply(session: Session, event: _PhoneReply) -> None:
    _insert_ignore(
        session,
        phone_replies,
        reply_id=event.reply_id,
        event_type=event.event_type,
        patient_key=event.patient_id.hex if event.patient_id else "",
        patient_id=event.patient_id,
        received_at=event.received_at,
    )
    if event.patient_id is None or not isinstance(event, PatientOptedOut | PatientOptedIn):
        return
    out = isinstance(event, PatientOptedOut)
    changed = session.execute(
        update(patient_consent)
        .where(
            patient_consent.c.patient_id == event.patient_id,
            patient_consent.c.changed_at < event.received_at,
        )
        .values(opted_out=out, changed_at=event.received_at)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        # absent (insert) or already newer (the insert is ignored)
        _insert_ignore(
            session,
            patient_consent,
            patient_id=event.patient_id,
            opted_out=out,
            changed_at=event.received_at,
        )


def _project_appointment_event(
    session: Session, appointment_id: UUID, event: Event, zone: ZoneInfo
) -> None:
    lock_appointment(session, appointment_id)
    _insert_ignore(
        session,
        appointment_events,
        event_id=event.event_id,
        appointment_id=appointment_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        payload=encode(event).decode(),
    )
    view = load_appointment(session, appointment_id)
    if view is not None:
        _write_summary(session, view, zone)


def lock_appointment(session: Session, appointment_id: UUID) -> None:
    """Serialise every change to one appointment's projection (and its commands).

    An upsert takes the row's exclusive lock even when the row is new, where a
    SELECT ... FOR UPDATE of a missing row would lock nothing under READ COMMITTED.
    """
    dialect = session.get_bind().dialect.name
    table = appointment_locks
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table).values(appointment_id=appointment_id, events=1)
        session.execute(my.on_duplicate_key_update(events=table.c.events + 1))
    elif dialect == "sqlite":
        lite = sqlite.insert(table).values(appointment_id=appointment_id, events=1)
        session.execute(
            lite.on_conflict_do_update(
                index_elements=[table.c.appointment_id], set_={"events": table.c.events + 1}
            )
        )
    else:  # pragma: no cover - the two supported databases are above
        raise NotImplementedError(dialect)


def load_events(session: Session, appointment_id: UUID) -> list[Event]:
    payloads = session.execute(
        select(appointment_events.c.payload)
        .where(appointment_events.c.appointment_id == appointment_id)
        .order_by(appointment_events.c.occurred_at, appointment_events.c.event_id)
    ).scalars()
    events = [decode(payload) for payload in payloads]
    events.sort(key=domain.timeline_order)
    return events


def load_appointment(session: Session, appointment_id: UUID) -> AppointmentView | None:
    return domain.fold_appointment(load_events(session, appointment_id))


def summary_values(view: AppointmentView, zone: ZoneInfo) -> dict[str, Any]:
    """The `appointments` row of a folded appointment (also used by the benchmark loader)."""
    offsets = view.reminder_offsets_minutes
    return {
        "id": view.appointment_id,
        "patient_id": view.patient_id,
        "version": view.version,
        "starts_at": view.starts_at,
        "local_day": domain.local_day(view.starts_at, zone),
        "location": view.location,
        "provider": view.provider,
        "reminder_offsets": None if offsets is None else json.dumps(list(offsets)),
        "status": view.status,
        "confirmation": view.confirmation,
        "reminded": view.reminded,
        "reply_seconds": view.reply_seconds,
        "segments_sent": view.segments_sent,
        "failed_reminders": view.failed_reminders,
        "scheduled_at": view.scheduled_at,
        "updated_at": utcnow(),
    }


def _write_summary(session: Session, view: AppointmentView, zone: ZoneInfo) -> None:
    values = summary_values(view, zone)
    # The appointment's lock is held: update-or-insert cannot race another writer.
    updated = session.execute(
        update(appointments).where(appointments.c.id == view.appointment_id).values(values)
    ).rowcount  # type: ignore[attr-defined]
    if not updated:
        session.execute(insert(appointments).values(values))


def _insert_ignore(session: Session, table: Any, **values: Any) -> None:
    session.execute(
        insert(table)
        .values(**values)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )


# =========================================================================== commands


@dataclass(frozen=True)
class CommandContext:
    """What every command needs besides its arguments."""

    phone_region: str
    clinic_zone: ZoneInfo
    now: Callable[[], datetime] = utcnow


def _emit(session: Session, ctx: CommandContext, event: Event) -> None:
    messaging.outbox.add(session, event)
    project(session, event, ctx.clinic_zone)


def register_patient(
    session: Session,
    ctx: CommandContext,
    *,
    name: str,
    phone: str,
    language: str,
    timezone: str,
) -> UUID:
    event = PatientRegistered(
        patient_id=uuid4(),
        name=domain.clean_name(name),
        phone=domain.clean_phone(phone, ctx.phone_region),
        language=domain.clean_language(language),
        timezone=domain.clean_timezone(timezone),
        occurred_at=ctx.now(),
    )
    _emit(session, ctx, event)
    return event.patient_id


def update_patient(
    session: Session,
    ctx: CommandContext,
    patient_id: UUID,
    *,
    name: str | None = None,
    phone: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
) -> bool:
    """Change some of a patient's details; False (and no event) when nothing changed."""
    row = session.execute(
        select(patients).where(patients.c.id == patient_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("no patient with this id")
    new: dict[str, str] = {
        "name": row.name if name is None else domain.clean_name(name),
        "phone": row.phone if phone is None else domain.clean_phone(phone, ctx.phone_region),
        "language": row.language if language is None else domain.clean_language(language),
        "timezone": row.timezone if timezone is None else domain.clean_timezone(timezone),
    }
    if all(new[key] == getattr(row, key) for key in new):
        return False
    event = PatientUpdated(
        patient_id=patient_id,
        version=row.version + 1,
        occurred_at=ctx.now(),
        name=new["name"],
        phone=new["phone"],
        language=new["language"],
        timezone=new["timezone"],
    )
    _emit(session, ctx, event)
    return True


def _snapshot(session: Session, patient_id: UUID) -> PatientSnapshot:
    row = session.execute(select(patients).where(patients.c.id == patient_id)).one_or_none()
    if row is None:
        raise InvalidInput("patient_id: no patient with this id")
    return _snapshot_of(row)


def _snapshot_of(row: Row[Any]) -> PatientSnapshot:
    return PatientSnapshot(
        patient_id=row.id,
        patient_version=row.version,
        name=row.name,
        phone=row.phone,
        language=row.language,
        timezone=row.timezone,
    )


def schedule_appointment(
    session: Session,
    ctx: CommandContext,
    *,
    patient_id: UUID,
    starts_at: datetime,
    location: str | None = None,
    provider: str | None = None,
    reminder_offsets: list[str | int] | None = None,
) -> UUID:
    now = ctx.now()
    event = AppointmentScheduled(
        appointment_id=uuid4(),
        patient_id=patient_id,
        version=1,
        starts_at=domain.require_future(starts_at, now).astimezone(UTC),
        location=_clean_optional(location, "location"),
        provider=_clean_optional(provider, "provider"),
        reminder_offsets_minutes=domain.parse_offsets(reminder_offsets),
        patient=_snapshot(session, patient_id),
        occurred_at=now,
    )
    _emit(session, ctx, event)
    return event.appointment_id


def _clean_optional(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(value.split())
    if len(cleaned) > 200:
        raise InvalidInput(f"{field} must be at most 200 characters")
    return cleaned or None


def _current(session: Session, appointment_id: UUID) -> AppointmentView:
    lock_appointment(session, appointment_id)
    view = load_appointment(session, appointment_id)
    if view is None:
        raise NotFound("no appointment with this id")
    return view


def reschedule_appointment(
    session: Session, ctx: CommandContext, appointment_id: UUID, *, starts_at: datetime
) -> bool:
    """Move an appointment; False (and no event) when it already starts then."""
    view = _current(session, appointment_id)
    domain.require_changeable(view.cancelled_at is not None)
    if view.attendance is not None:
        raise Conflict("attendance is already recorded: the appointment has taken place")
    now = ctx.now()
    new_start = domain.require_future(starts_at, now).astimezone(UTC)
    if new_start == view.starts_at:
        return False
    event = AppointmentRescheduled(
        appointment_id=appointment_id,
        patient_id=view.patient_id,
        version=view.version + 1,
        previous_starts_at=view.starts_at,
        starts_at=new_start,
        location=view.location,
        provider=view.provider,
        reminder_offsets_minutes=view.reminder_offsets_minutes,
        patient=_current_snapshot(session, view),
        occurred_at=now,
    )
    _emit(session, ctx, event)
    return True


def _current_snapshot(session: Session, view: AppointmentView) -> PatientSnapshot:
    # The patient as now known (name, phone, language may have changed since scheduling).
    row = session.execute(select(patients).where(patients.c.id == view.patient_id)).one_or_none()
    return view.patient if row is None else _snapshot_of(row)


def cancel_appointment(
    session: Session, ctx: CommandContext, appointment_id: UUID, *, reason: str | None = None
) -> None:
    view = _current(session, appointment_id)
    if view.cancelled_at is not None:
        raise Conflict("the appointment is already cancelled")
    if view.attendance is not None:
        raise Conflict("attendance is already recorded: the appointment has taken place")
    event = AppointmentCancelled(
        appointment_id=appointment_id,
        patient_id=view.patient_id,
        version=view.version + 1,
        reason=_clean_reason(reason),
        occurred_at=ctx.now(),
    )
    _emit(session, ctx, event)


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    cleaned = reason.strip()
    if len(cleaned) > 500:
        raise InvalidInput("reason must be at most 500 characters")
    return cleaned or None


def record_attendance(
    session: Session,
    ctx: CommandContext,
    appointment_id: UUID,
    *,
    outcome: Literal["attended", "no_show"],
) -> None:
    view = _current(session, appointment_id)
    domain.require_changeable(view.cancelled_at is not None)
    event = AttendanceRecorded(
        appointment_id=appointment_id,
        patient_id=view.patient_id,
        version=view.version + 1,
        outcome=outcome,
        occurred_at=ctx.now(),
    )
    _emit(session, ctx, event)


# =========================================================================== idempotency


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


def recall_response(session: Session, key: str, fingerprint: str) -> StoredResponse | None:
    """The response first given for `key`, if any; a different request with it: 409."""
    row = session.execute(
        select(idempotency_keys).where(idempotency_keys.c.key == key)
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise Conflict("Idempotency-Key was already used for a different request")
    return StoredResponse(row.status_code, json.loads(row.response))


def remember_response(
    session: Session, key: str, fingerprint: str, response: StoredResponse
) -> None:
    """Store the response in the command's transaction: kept if and only if the command is.

    A concurrent first use of the same key fails here on the primary key, rolling its
    whole command back; the caller then recalls the winner's response.
    """
    session.execute(
        insert(idempotency_keys).values(
            key=key,
            request_hash=fingerprint,
            status_code=response.status_code,
            response=json.dumps(response.body, default=str),
            created_at=utcnow(),
        )
    )


__all__ = [
    "CONSUMER",
    "CommandContext",
    "StoredResponse",
    "cancel_appointment",
    "project",
    "recall_response",
    "record_attendance",
    "register_patient",
    "remember_response",
    "request_fingerprint",
    "reschedule_appointment",
    "schedule_appointment",
    "update_patient",
]
