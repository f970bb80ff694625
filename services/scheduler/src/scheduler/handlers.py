"""The service layer: one function per event, and the firing of due timers.

Each runs inside ONE transaction (the caller's `Session`): the inbox check, the changes to
the scheduler's own tables and the outgoing events (outbox) commit together or not at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import Session

from reminder_contracts.events import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    Event,
    PatientRegistered,
    PatientSnapshot,
    PatientUpdated,
    ReminderDue,
)

from .adapters.repository import (
    ACTIVE,
    APPOINTMENT_CANCELLED,
    CLOSED,
    SchedulerRepository,
    StoredAppointment,
    StoredPatient,
)
from .adapters.tables import messaging
from .domain import ReminderPolicy, effective_offsets, is_newer, plan_reminders

log = logging.getLogger(__name__)

#: Inbox consumer name (one per service).
CONSUMER = "scheduler"

#: Event types this service acts on; anything else on its topics is committed past.
HANDLED = (
    AppointmentScheduled,
    AppointmentRescheduled,
    AppointmentCancelled,
    AttendanceRecorded,
    PatientRegistered,
    PatientUpdated,
)


def handle_event(
    session: Session, event: Event, policy: ReminderPolicy, now: datetime
) -> datetime | None:
    """Apply one consumed event; returns the earliest due time of any timer it (re)set.

    A redelivered event (same `event_id`) has no second effect.
    """
    if not isinstance(event, HANDLED):
        return None
    if not messaging.inbox.first_time(session, CONSUMER, event.event_id):
        log.info("duplicate event ignored", extra={"event_id": str(event.event_id)})
        return None
    repo = SchedulerRepository(session)
    if isinstance(event, AppointmentScheduled | AppointmentRescheduled):
        return schedule(repo, event, policy, now)
    if isinstance(event, AppointmentCancelled):
        close(repo, event, APPOINTMENT_CANCELLED, now)
        return None
    if isinstance(event, AttendanceRecorded):
        close(repo, event, CLOSED, now)
        return None
    return patient_changed(repo, event, policy, now)


# --------------------------------------------------------------------------- appointments


def schedule(
    repo: SchedulerRepository,
    event: AppointmentScheduled | AppointmentRescheduled,
    policy: ReminderPolicy,
    now: datetime,
) -> datetime | None:
    """(Re)plan an appointment's reminders from its newest version.

    The old version's pending timers are cancelled; new ones get ids of the new version,
    so a reminder already sent for the old time does not block one for the new time.
    """
    stored = repo.appointment(event.appointment_id, lock=True)
    if stored is not None and not is_newer(event.version, stored.version):
        _ignore_old(event, event.version, stored.version)
        return None
    patient, timezone_changed = remember_patient(repo, event.patient)
    repo.cancel_pending(event.appointment_id)
    appointment = StoredAppointment(
        appointment_id=event.appointment_id,
        patient_id=event.patient_id,
        version=event.version,
        status=ACTIVE,
        starts_at=event.starts_at,
        location=event.location,
        provider=event.provider,
        offsets_override=event.reminder_offsets_minutes,
    )
    repo.save_appointment(appointment, now=now, exists=stored is not None)
    earliest = _plan_new(repo, appointment, patient, policy, now, event)
    if timezone_changed:
        others = replan_patient(repo, patient, policy, now, skip=event.appointment_id)
        earliest = _min(earliest, others)
    return earliest


def close(
    repo: SchedulerRepository,
    event: AppointmentCancelled | AttendanceRecorded,
    status: str,
    now: datetime,
) -> None:
    """Cancelled, or attendance recorded: no pending reminder goes out any more."""
    stored = repo.appointment(event.appointment_id, lock=True)
    if stored is not None and not is_newer(event.version, stored.version):
        _ignore_old(event, event.version, stored.version)
        return
    cancelled = repo.cancel_pending(event.appointment_id)
    # Kept even when first seen: a late, older AppointmentScheduled must not revive it.
    repo.save_appointment(
        StoredAppointment(
            appointment_id=event.appointment_id,
            patient_id=event.patient_id,
            version=event.version,
            status=status,
            starts_at=stored.starts_at if stored else None,
            location=stored.location if stored else None,
            provider=stored.provider if stored else None,
            offsets_override=stored.offsets_override if stored else None,
        ),
        now=now,
        exists=stored is not None,
    )
    log.info(
        "appointment closed",
        extra={
            "appointment_id": str(event.appointment_id),
            "status": status,
            "timers_cancelled": cancelled,
        },
    )


def _plan_new(
    repo: SchedulerRepository,
    appointment: StoredAppointment,
    patient: StoredPatient,
    policy: ReminderPolicy,
    now: datetime,
    cause: Event,
) -> datetime | None:
    assert appointment.starts_at is not None
    plan = plan_reminders(
        appointment_id=appointment.appointment_id,
        appointment_version=appointment.version,
        starts_at=appointment.starts_at,
        timezone=patient.timezone,
        offsets_minutes=effective_offsets(appointment.offsets_override, policy),
        quiet_hours=policy.quiet_hours,
        now=now,
    )
    repo.add_timers(
        appointment.appointment_id,
        appointment.version,
        plan.due,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
    )
    log.info(
        "reminders planned",
        extra={
            "appointment_id": str(appointment.appointment_id),
            "version": appointment.version,
            "due": len(plan.due),
            "skipped": dict(Counter(s.reason.value for s in plan.skipped)),
        },
    )
    return min((r.due_at for r in plan.due), default=None)


# --------------------------------------------------------------------------- patients


def remember_patient(
    repo: SchedulerRepository, snapshot: PatientSnapshot
) -> tuple[StoredPatient, bool]:
    """Keep the newest patient snapshot; returns it and whether the time zone changed."""
    return _upsert_patient(
        repo,
        StoredPatient(
            snapshot.patient_id,
            snapshot.patient_version,
            snapshot.name,
            snapshot.phone,
            snapshot.language,
            snapshot.timezone,
        ),
    )


def _upsert_patient(
    repo: SchedulerRepository, incoming: StoredPatient
) -> tuple[StoredPatient, bool]:
    stored = repo.patient(incoming.patient_id)
    if stored is not None and stored.version >= incoming.version:
        return stored, False
    repo.save_patient(incoming, exists=stored is not None)
    return incoming, stored is not None and stored.timezone != incoming.timezone


def patient_changed(
    repo: SchedulerRepository,
    event: PatientRegistered | PatientUpdated,
    policy: ReminderPolicy,
    now: datetime,
) -> datetime | None:
    """A newer patient state: later reminders carry it; a new time zone re-applies quiet hours."""
    patient, timezone_changed = _upsert_patient(
        repo,
        StoredPatient(
            event.patient_id, event.version, event.name, event.phone, event.language, event.timezone
        ),
    )
    if not timezone_changed:
        return None
    return replan_patient(repo, patient, policy, now)


def replan_patient(
    repo: SchedulerRepository,
    patient: StoredPatient,
    policy: ReminderPolicy,
    now: datetime,
    skip: UUID | None = None,
) -> datetime | None:
    """Move the pending timers of a patient's active appointments to the new time zone's
    allowed hours (or cancel them if none is left before the appointment).

    Only pending timers move: a reminder already sent, or one collapsed into another at
    planning time, is not brought back.
    """
    earliest: datetime | None = None
    for appointment in repo.active_appointments_of(patient.patient_id):
        if appointment.appointment_id == skip or appointment.starts_at is None:
            continue
        pending = repo.pending_timers(appointment.appointment_id)
        if not pending:
            continue
        plan = plan_reminders(
            appointment_id=appointment.appointment_id,
            appointment_version=appointment.version,
            starts_at=appointment.starts_at,
            timezone=patient.timezone,
            offsets_minutes=pending.keys(),
            quiet_hours=policy.quiet_hours,
            now=now,
        ).by_offset()
        for offset, reminder_id in pending.items():
            planned = plan.get(offset)
            if planned is None:
                repo.cancel_timer(reminder_id)
            else:
                repo.move_timer(reminder_id, planned.due_at)
                earliest = _min(earliest, planned.due_at)
    return earliest


# --------------------------------------------------------------------------- firing


@dataclass(frozen=True)
class Fired:
    #: Due times of the timers whose ReminderDue was written.
    emitted: tuple[datetime, ...]
    dropped: int

    @property
    def claimed(self) -> int:
        return len(self.emitted) + self.dropped


def fire_due(session: Session, now: datetime, limit: int) -> Fired:
    """Claim up to `limit` due timers, queue their ReminderDue and mark them emitted.

    All in the caller's transaction: a crash before the commit leaves the timers pending
    (the database drops the locks), so another replica or the restarted one fires them.
    """
    repo = SchedulerRepository(session)
    claimed = repo.claim_due(now, limit)
    if not claimed:
        return Fired((), 0)
    context = repo.appointments_with_patients(t.appointment_id for t in claimed)
    events: list[ReminderDue] = []
    emitted, dropped = [], []
    for timer in claimed:
        appointment, patient = context.get(timer.appointment_id, (None, None))
        if (
            appointment is None
            or patient is None
            or appointment.starts_at is None
            or appointment.status != ACTIVE
            or appointment.version != timer.appointment_version
        ):
            # Cannot happen through the handlers (they cancel timers in the same
            # transaction); kept so an inconsistent row never sends a stale reminder.
            dropped.append(timer.reminder_id)
            continue
        events.append(
            ReminderDue(
                appointment_id=timer.appointment_id,
                patient_id=appointment.patient_id,
                reminder_id=timer.reminder_id,
                appointment_version=timer.appointment_version,
                offset_minutes=timer.offset_minutes,
                due_at=timer.due_at,
                starts_at=appointment.starts_at,
                location=appointment.location,
                provider=appointment.provider,
                patient=PatientSnapshot(
                    patient_id=patient.patient_id,
                    patient_version=patient.version,
                    name=patient.name,
                    phone=patient.phone,
                    language=patient.language,
                    timezone=patient.timezone,
                ),
                correlation_id=timer.correlation_id,
                causation_id=timer.causation_id,
                occurred_at=now,
            )
        )
        emitted.append(timer.reminder_id)
    messaging.outbox.add(session, *events)
    repo.mark_emitted(emitted, now)
    repo.mark_cancelled(dropped)
    return Fired(tuple(e.due_at for e in events), len(dropped))


def purge_finished(session: Session, before: datetime, limit: int = 5_000) -> int:
    """Forget sent and cancelled timers due before `before` (one batch)."""
    return SchedulerRepository(session).purge_finished(before, limit)


def next_due(session: Session) -> datetime | None:
    return SchedulerRepository(session).next_due()


# --------------------------------------------------------------------------- helpers


def _ignore_old(event: Event, incoming: int, stored: int) -> None:
    log.info(
        "older appointment version ignored",
        extra={"event_type": event.event_type, "version": incoming, "stored_version": stored},
    )


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
