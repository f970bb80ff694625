"""Builders of the events the scheduler consumes, for its tests and benchmarks."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from reminder_contracts.events import (
    AppointmentCancelled,
    AppointmentRescheduled,
    AppointmentScheduled,
    PatientSnapshot,
)


def snapshot(
    patient_id: UUID | None = None,
    *,
    version: int = 1,
    timezone: str = "America/New_York",
    name: str = "Ada Lovelace",
    phone: str = "+12025550143",
) -> PatientSnapshot:
    return PatientSnapshot(
        patient_id=patient_id or uuid4(),
        patient_version=version,
        name=name,
        phone=phone,
        language="en",
        timezone=timezone,
    )


def scheduled(
    starts_at: datetime,
    *,
    appointment_id: UUID | None = None,
    patient: PatientSnapshot | None = None,
    offsets: tuple[int, ...] | None = None,
    version: int = 1,
) -> AppointmentScheduled:
    patient = patient or snapshot()
    return AppointmentScheduled(
        appointment_id=appointment_id or uuid4(),
        patient_id=patient.patient_id,
        version=version,
        starts_at=starts_at,
        location="Clinic A, room 3",
        provider="Dr. Grace Hopper",
        reminder_offsets_minutes=offsets,
        patient=patient,
    )


def rescheduled(
    first: AppointmentScheduled | AppointmentRescheduled, starts_at: datetime, version: int
) -> AppointmentRescheduled:
    return AppointmentRescheduled(
        appointment_id=first.appointment_id,
        patient_id=first.patient_id,
        version=version,
        previous_starts_at=first.starts_at,
        starts_at=starts_at,
        location=first.location,
        provider=first.provider,
        reminder_offsets_minutes=first.reminder_offsets_minutes,
        patient=first.patient,
    )


def cancelled(first: AppointmentScheduled, version: int) -> AppointmentCancelled:
    return AppointmentCancelled(
        appointment_id=first.appointment_id,
        patient_id=first.patient_id,
        version=version,
        reason="patient called",
    )
