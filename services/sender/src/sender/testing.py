"""Event builders for the sender's tests and benchmarks (realistic, valid values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from reminder_contracts.events import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    PatientOptedIn,
    PatientOptedOut,
    PatientSnapshot,
    ReminderDue,
    reminder_id_for,
)


def snapshot(
    *,
    phone: str = "+12025550143",
    name: str = "Ana Lopez",
    language: str = "en",
    timezone: str = "America/New_York",
    version: int = 1,
    patient_id: UUID | None = None,
) -> PatientSnapshot:
    return PatientSnapshot(
        patient_id=patient_id or uuid4(),
        patient_version=version,
        name=name,
        phone=phone,
        language=language,
        timezone=timezone,
    )


def scheduled(
    starts_at: datetime, patient: PatientSnapshot | None = None, location: str | None = None
) -> AppointmentScheduled:
    patient = patient or snapshot()
    return AppointmentScheduled(
        appointment_id=uuid4(),
        patient_id=patient.patient_id,
        starts_at=starts_at,
        location=location,
        patient=patient,
    )


def rescheduled(
    appointment: AppointmentScheduled, starts_at: datetime, version: int = 2
) -> AppointmentRescheduled:
    return AppointmentRescheduled(
        appointment_id=appointment.appointment_id,
        patient_id=appointment.patient_id,
        version=version,
        previous_starts_at=appointment.starts_at,
        starts_at=starts_at,
        location=appointment.location,
        patient=appointment.patient,
    )


def cancelled(appointment: AppointmentScheduled, version: int = 2) -> AppointmentCancelled:
    return AppointmentCancelled(
        appointment_id=appointment.appointment_id,
        patient_id=appointment.patient_id,
        version=version,
    )


def due(
    appointment: AppointmentScheduled | AppointmentRescheduled, offset_minutes: int = 1440
) -> ReminderDue:
    return ReminderDue(
        reminder_id=reminder_id_for(
            appointment.appointment_id, appointment.version, offset_minutes
        ),
        appointment_id=appointment.appointment_id,
        patient_id=appointment.patient_id,
        appointment_version=appointment.version,
        offset_minutes=offset_minutes,
        due_at=appointment.starts_at - timedelta(minutes=offset_minutes),
        starts_at=appointment.starts_at,
        location=appointment.location,
        patient=appointment.patient,
    )


def reminder_for(
    patient: PatientSnapshot | None = None,
    starts_at: datetime | None = None,
    location: str | None = "12 Main Street",
) -> ReminderDue:
    """A ReminderDue for a new appointment (version 1) of `patient`."""
    starts = starts_at or datetime(2026, 12, 10, 15, 30, tzinfo=UTC)
    return due(scheduled(starts, patient, location))


def opted(
    phone: str, patient_id: UUID | None, *, out: bool, received_at: datetime | None = None
) -> PatientOptedOut | PatientOptedIn:
    received = received_at or datetime.now(UTC)
    inbound_id = uuid4().hex
    cls = PatientOptedOut if out else PatientOptedIn
    return cls(
        reply_id=uuid4(),
        inbound_message_id=inbound_id,
        phone=phone,
        received_at=received,
        keyword="STOP" if out else "START",
        language="en",
        patient_id=patient_id,
    )
