"""SQL access to the scheduler's tables, within the caller's transaction (a `Session`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..domain import PlannedReminder
from .tables import appointments, patients, timers

PENDING, EMITTED, CANCELLED = "pending", "emitted", "cancelled"
ACTIVE, APPOINTMENT_CANCELLED, CLOSED = "active", "cancelled", "closed"


def to_db(value: datetime) -> datetime:
    """Aware -> naive UTC, as stored."""
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime) -> datetime:
    """Stored naive UTC -> aware UTC (MySQL drops the offset, SQLite too)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class StoredAppointment:
    appointment_id: UUID
    patient_id: UUID
    version: int
    status: str
    starts_at: datetime | None
    location: str | None
    provider: str | None
    offsets_override: tuple[int, ...] | None


@dataclass(frozen=True)
class StoredPatient:
    patient_id: UUID
    version: int
    name: str
    phone: str
    language: str
    timezone: str


@dataclass(frozen=True)
class DueTimer:
    """A claimed timer with what its ReminderDue needs."""

    reminder_id: UUID
    appointment_id: UUID
    appointment_version: int
    offset_minutes: int
    due_at: datetime
    correlation_id: UUID
    causation_id: UUID


def _offsets_to_db(offsets: Sequence[int] | None) -> str | None:
    return None if offsets is None else ",".join(str(o) for o in offsets)


def _offsets_from_db(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    return tuple(int(o) for o in text.split(",") if o)


class SchedulerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ----------------------------------------------------------------- appointments

    def appointment(self, appointment_id: UUID, *, lock: bool = False) -> StoredAppointment | None:
        query = select(appointments).where(appointments.c.appointment_id == str(appointment_id))
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).first()
        if row is None:
            return None
        return StoredAppointment(
            appointment_id=UUID(row.appointment_id),
            patient_id=UUID(row.patient_id),
            version=row.version,
            status=row.status,
            starts_at=from_db(row.starts_at) if row.starts_at is not None else None,
            location=row.location,
            provider=row.provider,
            offsets_override=_offsets_from_db(row.offsets_override),
        )

    def save_appointment(self, a: StoredAppointment, *, now: datetime, exists: bool) -> None:
        values = {
            "patient_id": str(a.patient_id),
            "version": a.version,
            "status": a.status,
            "starts_at": to_db(a.starts_at) if a.starts_at is not None else None,
            "location": a.location,
            "provider": a.provider,
            "offsets_override": _offsets_to_db(a.offsets_override),
            "updated_at": to_db(now),
        }
        if exists:
            self.session.execute(
                update(appointments)
                .where(appointments.c.appointment_id == str(a.appointment_id))
                .values(**values)
            )
        else:
            self.session.execute(
                insert(appointments).values(appointment_id=str(a.appointment_id), **values)
            )

    def active_appointments_of(self, patient_id: UUID) -> list[StoredAppointment]:
        ids = self.session.scalars(
            select(appointments.c.appointment_id).where(
                appointments.c.patient_id == str(patient_id), appointments.c.status == ACTIVE
            )
        ).all()
        found = (self.appointment(UUID(i), lock=True) for i in ids)
        return [a for a in found if a is not None]

    # ----------------------------------------------------------------- patients

    def patient(self, patient_id: UUID) -> StoredPatient | None:
        row = self.session.execute(
            select(patients).where(patients.c.patient_id == str(patient_id))
        ).first()
        if row is None:
            return None
        return StoredPatient(
            UUID(row.patient_id), row.version, row.name, row.phone, row.language, row.timezone
        )

    def save_patient(self, p: StoredPatient, *, exists: bool) -> None:
        values = {
            "version": p.version,
            "name": p.name,
            "phone": p.phone,
            "language": p.language,
            "timezone": p.timezone,
        }
        if exists:
            self.session.execute(
                update(patients).where(patients.c.patient_id == str(p.patient_id)).values(**values)
            )
        else:
            self.session.execute(insert(patients).values(patient_id=str(p.patient_id), **values))

    # ----------------------------------------------------------------- timers

    def add_timers(
        self,
        appointment_id: UUID,
        version: int,
        reminders: Sequence[PlannedReminder],
        *,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        if not reminders:
            return
        self.session.execute(
            insert(timers),
            [
                {
                    "reminder_id": str(r.reminder_id),
                    "appointment_id": str(appointment_id),
                    "appointment_version": version,
                    "offset_minutes": r.offset_minutes,
                    "due_at": to_db(r.due_at),
                    "status": PENDING,
                    "emitted_at": None,
                    "correlation_id": str(correlation_id),
                    "causation_id": str(causation_id),
                }
                for r in reminders
            ],
        )

    def cancel_pending(self, appointment_id: UUID) -> int:
        result = self.session.execute(
            update(timers)
            .where(timers.c.appointment_id == str(appointment_id), timers.c.status == PENDING)
            .values(status=CANCELLED)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def pending_timers(self, appointment_id: UUID) -> dict[int, UUID]:
        """offset -> reminder_id of the appointment's pending timers."""
        rows = self.session.execute(
            select(timers.c.reminder_id, timers.c.offset_minutes).where(
                timers.c.appointment_id == str(appointment_id), timers.c.status == PENDING
            )
        ).all()
        return {r.offset_minutes: UUID(r.reminder_id) for r in rows}

    def move_timer(self, reminder_id: UUID, due_at: datetime) -> None:
        self.session.execute(
            update(timers)
            .where(timers.c.reminder_id == str(reminder_id), timers.c.status == PENDING)
            .values(due_at=to_db(due_at))
        )

    def cancel_timer(self, reminder_id: UUID) -> None:
        self.session.execute(
            update(timers)
            .where(timers.c.reminder_id == str(reminder_id), timers.c.status == PENDING)
            .values(status=CANCELLED)
        )

    def claim_due(self, now: datetime, limit: int) -> list[DueTimer]:
        """Lock up to `limit` due timers that no other transaction holds.

        `SKIP LOCKED`: replicas firing at once take disjoint batches instead of waiting on
        each other (MySQL 8, MariaDB 10.6+; SQLite has one writer and ignores it).
        """
        rows = self.session.execute(
            select(
                timers.c.reminder_id,
                timers.c.appointment_id,
                timers.c.appointment_version,
                timers.c.offset_minutes,
                timers.c.due_at,
                timers.c.correlation_id,
                timers.c.causation_id,
            )
            .where(timers.c.status == PENDING, timers.c.due_at <= to_db(now))
            .order_by(timers.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        return [
            DueTimer(
                reminder_id=UUID(r.reminder_id),
                appointment_id=UUID(r.appointment_id),
                appointment_version=r.appointment_version,
                offset_minutes=r.offset_minutes,
                due_at=from_db(r.due_at),
                correlation_id=UUID(r.correlation_id),
                causation_id=UUID(r.causation_id),
            )
            for r in rows
        ]

    def appointments_with_patients(
        self, appointment_ids: Iterable[UUID]
    ) -> dict[UUID, tuple[StoredAppointment, StoredPatient | None]]:
        """What the ReminderDue of these appointments need, in one query (no locks)."""
        ids = {str(i) for i in appointment_ids}
        a, p = appointments, patients
        rows = self.session.execute(
            select(
                a,
                p.c.version.label("p_version"),
                p.c.name,
                p.c.phone,
                p.c.language,
                p.c.timezone,
            )
            .select_from(a.outerjoin(p, p.c.patient_id == a.c.patient_id))
            .where(a.c.appointment_id.in_(ids))
        ).all()
        found: dict[UUID, tuple[StoredAppointment, StoredPatient | None]] = {}
        for r in rows:
            appointment = StoredAppointment(
                appointment_id=UUID(r.appointment_id),
                patient_id=UUID(r.patient_id),
                version=r.version,
                status=r.status,
                starts_at=from_db(r.starts_at) if r.starts_at is not None else None,
                location=r.location,
                provider=r.provider,
                offsets_override=_offsets_from_db(r.offsets_override),
            )
            patient = (
                StoredPatient(
                    appointment.patient_id, r.p_version, r.name, r.phone, r.language, r.timezone
                )
                if r.p_version is not None
                else None
            )
            found[appointment.appointment_id] = (appointment, patient)
        return found

    def mark_emitted(self, reminder_ids: Sequence[UUID], now: datetime) -> None:
        if reminder_ids:
            self.session.execute(
                update(timers)
                .where(timers.c.reminder_id.in_([str(i) for i in reminder_ids]))
                .values(status=EMITTED, emitted_at=to_db(now))
            )

    def mark_cancelled(self, reminder_ids: Sequence[UUID]) -> None:
        if reminder_ids:
            self.session.execute(
                update(timers)
                .where(timers.c.reminder_id.in_([str(i) for i in reminder_ids]))
                .values(status=CANCELLED)
            )

    def purge_finished(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` emitted or cancelled timers due before `before`.

        The appointment rows stay: they keep late, older events from reviving anything.
        """
        ids = self.session.scalars(
            select(timers.c.reminder_id)
            .where(timers.c.status.in_([EMITTED, CANCELLED]), timers.c.due_at < to_db(before))
            .limit(limit)
        ).all()
        if ids:
            self.session.execute(delete(timers).where(timers.c.reminder_id.in_(ids)))
        return len(ids)

    def next_due(self) -> datetime | None:
        value = self.session.execute(
            select(func.min(timers.c.due_at)).where(timers.c.status == PENDING)
        ).scalar_one_or_none()
        return from_db(value) if value is not None else None
