"""SQL for the inbound service's own tables (SQLAlchemy Core, MySQL/MariaDB and SQLite).

Datetimes are written as naive UTC and read back as aware UTC: MySQL's DATETIME keeps
no time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from inbound.adapters.tables import (
    appointments,
    auto_replies_sent,
    patients,
    reminders_sent,
    replies,
)
from inbound.domain.matching import AppointmentView, NamedReminder, PatientView

#: How far back a past appointment is still looked at, to tell staff which one a late
#: reply most likely concerns.
LATE_REPLY_WINDOW = timedelta(days=7)


def to_db(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --------------------------------------------------------------------------- replies


def reply_already_recorded(session: Session, inbound_message_id: str, sns_message_id: str) -> bool:
    row = session.execute(
        select(replies.c.reply_id)
        .where(
            or_(
                replies.c.inbound_message_id == inbound_message_id,
                replies.c.sns_message_id == sns_message_id,
            )
        )
        .limit(1)
    ).first()
    return row is not None


def add_reply(session: Session, **values: Any) -> None:
    values["received_at"] = to_db(values["received_at"])
    values["recorded_at"] = to_db(datetime.now(UTC))
    session.execute(insert(replies).values(**values))


def record_answer(
    session: Session, appointment_id: UUID, answer: str, received_at: datetime
) -> None:
    """Keep the latest answer by `received_at`: SMS can arrive out of order."""
    at = to_db(received_at)
    session.execute(
        update(appointments)
        .where(
            appointments.c.appointment_id == appointment_id,
            or_(appointments.c.answered_at.is_(None), appointments.c.answered_at <= at),
        )
        .values(answer=answer, answered_at=at)
    )


# --------------------------------------------------------------------------- matching


def patients_with_phone(session: Session, phone: str) -> list[PatientView]:
    rows = session.execute(
        select(patients.c.patient_id, patients.c.language).where(patients.c.phone == phone)
    ).all()
    return [PatientView(r.patient_id, r.language) for r in rows]


def named_reminder(session: Session, sns_message_id: str | None) -> NamedReminder | None:
    """The reminder, or the auto-reply about an appointment, with this SNS MessageId."""
    if sns_message_id is None:
        return None
    row = session.execute(
        select(reminders_sent).where(reminders_sent.c.sns_message_id == sns_message_id)
    ).first()
    if row is not None:
        return NamedReminder(row.reminder_id, row.appointment_id, row.patient_id)
    auto = session.execute(
        select(auto_replies_sent).where(auto_replies_sent.c.sns_message_id == sns_message_id)
    ).first()
    if auto is not None:
        return NamedReminder(None, auto.appointment_id, auto.patient_id)
    return None


def candidate_appointments(
    session: Session,
    patient_ids: Iterable[UUID],
    received_at: datetime,
    also: UUID | None = None,
) -> list[AppointmentView]:
    """Upcoming and recently past appointments of these patients (and `also`)."""
    ids = list(patient_ids)
    if not ids:
        return []
    recent = to_db(received_at - LATE_REPLY_WINDOW)
    conditions: list[ColumnElement[bool]] = [
        appointments.c.patient_id.in_(ids) & (appointments.c.starts_at > recent)
    ]
    if also is not None:
        conditions.append(appointments.c.appointment_id == also)
    rows = session.execute(select(appointments).where(or_(*conditions))).all()
    if not rows:
        return []
    latest_reminder: dict[UUID, tuple[datetime, UUID]] = {}
    for reminder in session.execute(
        select(
            reminders_sent.c.appointment_id, reminders_sent.c.reminder_id, reminders_sent.c.sent_at
        ).where(reminders_sent.c.appointment_id.in_([r.appointment_id for r in rows]))
    ).all():
        sent_at = from_db(reminder.sent_at)
        assert sent_at is not None
        known = latest_reminder.get(reminder.appointment_id)
        if known is None or sent_at > known[0]:
            latest_reminder[reminder.appointment_id] = (sent_at, reminder.reminder_id)
    return [
        AppointmentView(
            appointment_id=r.appointment_id,
            patient_id=r.patient_id,
            starts_at=from_db(r.starts_at),
            cancelled=bool(r.cancelled),
            last_reminder_id=(
                latest_reminder[r.appointment_id][1]
                if r.appointment_id in latest_reminder
                else None
            ),
            answered_at=from_db(r.answered_at),
        )
        for r in rows
    ]


# --------------------------------------------------------------------------- projections


def upsert_patient(
    session: Session, patient_id: UUID, version: int, phone: str, language: str
) -> None:
    """Keep the highest version of a patient's phone and language."""
    stored = session.execute(
        select(patients.c.version).where(patients.c.patient_id == patient_id).with_for_update()
    ).scalar_one_or_none()
    if stored is None:
        session.execute(
            insert(patients).values(
                patient_id=patient_id, version=version, phone=phone, language=language
            )
        )
    elif version > stored:
        session.execute(
            update(patients)
            .where(patients.c.patient_id == patient_id)
            .values(version=version, phone=phone, language=language)
        )


def upsert_appointment(
    session: Session,
    appointment_id: UUID,
    patient_id: UUID,
    version: int,
    starts_at: datetime,
    *,
    reset_answer: bool,
) -> None:
    """Keep the highest version; a new time needs a new answer."""
    stored = session.execute(
        select(appointments.c.version)
        .where(appointments.c.appointment_id == appointment_id)
        .with_for_update()
    ).scalar_one_or_none()
    values: dict[str, Any] = {
        "patient_id": patient_id,
        "version": version,
        "starts_at": to_db(starts_at),
        "cancelled": False,
    }
    if stored is None:
        session.execute(insert(appointments).values(appointment_id=appointment_id, **values))
    elif version > stored:
        if reset_answer:
            values.update(answer=None, answered_at=None)
        session.execute(
            update(appointments)
            .where(appointments.c.appointment_id == appointment_id)
            .values(**values)
        )


def cancel_appointment(
    session: Session, appointment_id: UUID, patient_id: UUID, version: int
) -> None:
    stored = session.execute(
        select(appointments.c.version)
        .where(appointments.c.appointment_id == appointment_id)
        .with_for_update()
    ).scalar_one_or_none()
    if stored is None:  # the cancellation overtook the scheduling: remember it
        session.execute(
            insert(appointments).values(
                appointment_id=appointment_id,
                patient_id=patient_id,
                version=version,
                starts_at=None,
                cancelled=True,
            )
        )
    elif version > stored:
        session.execute(
            update(appointments)
            .where(appointments.c.appointment_id == appointment_id)
            .values(version=version, cancelled=True)
        )


def add_reminder_sent(
    session: Session,
    sns_message_id: str,
    reminder_id: UUID,
    appointment_id: UUID,
    patient_id: UUID,
    sent_at: datetime,
) -> None:
    exists = session.execute(
        select(reminders_sent.c.sns_message_id).where(
            reminders_sent.c.sns_message_id == sns_message_id
        )
    ).first()
    if exists is None:
        session.execute(
            insert(reminders_sent).values(
                sns_message_id=sns_message_id,
                reminder_id=reminder_id,
                appointment_id=appointment_id,
                patient_id=patient_id,
                sent_at=to_db(sent_at),
            )
        )


def add_auto_reply_sent(
    session: Session,
    sns_message_id: str,
    appointment_id: UUID,
    patient_id: UUID | None,
    sent_at: datetime,
) -> None:
    exists = session.execute(
        select(auto_replies_sent.c.sns_message_id).where(
            auto_replies_sent.c.sns_message_id == sns_message_id
        )
    ).first()
    if exists is None:
        session.execute(
            insert(auto_replies_sent).values(
                sns_message_id=sns_message_id,
                appointment_id=appointment_id,
                patient_id=patient_id,
                sent_at=to_db(sent_at),
            )
        )
