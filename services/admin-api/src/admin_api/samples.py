"""Made-up but valid event histories of one appointment, as the other services would emit
them: for the tests and the benchmark (which loads a million of them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

from reminder_contracts import (
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentScheduled,
    AttendanceRecorded,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientSnapshot,
    ReminderDue,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
    reminder_id_for,
    reply_id_for,
)


@dataclass
class Story:
    """One patient's appointment; each method returns the next event of its life."""

    starts_at: datetime
    phone: str = "+12025550143"
    name: str = "Ada Lovelace"
    language: str = "en"
    timezone: str = "America/New_York"
    patient_id: UUID = field(default_factory=uuid4)
    appointment_id: UUID = field(default_factory=uuid4)
    #: the latest version (cancel and attendance bump it) and that of the current time
    version: int = 1
    time_version: int = 1

    @property
    def snapshot(self) -> PatientSnapshot:
        return PatientSnapshot(
            patient_id=self.patient_id,
            patient_version=1,
            name=self.name,
            phone=self.phone,
            language=self.language,
            timezone=self.timezone,
        )

    def registered(self, at: datetime) -> PatientRegistered:
        return PatientRegistered(
            patient_id=self.patient_id,
            name=self.name,
            phone=self.phone,
            language=self.language,
            timezone=self.timezone,
            occurred_at=at,
        )

    def scheduled(self, at: datetime) -> AppointmentScheduled:
        return AppointmentScheduled(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            starts_at=self.starts_at,
            location="Main St clinic",
            provider="Dr. Who",
            patient=self.snapshot,
            occurred_at=at,
        )

    def reminder_id(self, offset_minutes: int = 1440, version: int | None = None) -> UUID:
        return reminder_id_for(self.appointment_id, version or self.time_version, offset_minutes)

    def due(self, offset_minutes: int = 1440, version: int | None = None) -> ReminderDue:
        return ReminderDue(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            reminder_id=self.reminder_id(offset_minutes, version),
            appointment_version=version or self.time_version,
            offset_minutes=offset_minutes,
            due_at=self.starts_at - timedelta(minutes=offset_minutes),
            starts_at=self.starts_at,
            patient=self.snapshot,
            occurred_at=self.starts_at - timedelta(minutes=offset_minutes),
        )

    def sent(
        self,
        at: datetime,
        offset_minutes: int = 1440,
        segments: int = 1,
        version: int | None = None,
    ) -> ReminderSent:
        return ReminderSent(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            reminder_id=self.reminder_id(offset_minutes, version),
            appointment_version=version or self.time_version,
            sns_message_id=f"msg-{uuid4().hex[:12]}",
            segments=segments,
            encoding="GSM-7",
            language=self.language,
            occurred_at=at,
        )

    def failed(
        self, at: datetime, offset_minutes: int = 1440, *, retryable: bool = False
    ) -> ReminderFailed:
        return ReminderFailed(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            reminder_id=self.reminder_id(offset_minutes),
            appointment_version=self.time_version,
            error_code="Throttling" if retryable else "InvalidParameter",
            error="rejected by SNS",
            retryable=retryable,
            occurred_at=at,
        )

    def skipped(
        self,
        at: datetime,
        offset_minutes: int = 1440,
        reason: Literal["opted_out", "cancelled", "stale"] = "opted_out",
    ) -> ReminderSkipped:
        return ReminderSkipped(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            reminder_id=self.reminder_id(offset_minutes),
            appointment_version=self.time_version,
            reason=reason,
            occurred_at=at,
        )

    def _reply_fields(self, received_at: datetime, keyword: str) -> dict[str, object]:
        inbound_id = f"in-{uuid4().hex[:12]}"
        return {
            "reply_id": reply_id_for(inbound_id),
            "inbound_message_id": inbound_id,
            "phone": self.phone,
            "received_at": received_at,
            "keyword": keyword,
            "language": self.language,
            "patient_id": self.patient_id,
            "occurred_at": received_at + timedelta(seconds=1),
        }

    def confirmed(self, received_at: datetime) -> AppointmentConfirmed:
        return AppointmentConfirmed.model_validate(
            {
                **self._reply_fields(received_at, "YES"),
                "appointment_id": self.appointment_id,
                "reminder_id": self.reminder_id(),
            },
            strict=False,
        )

    def declined(self, received_at: datetime) -> AppointmentDeclined:
        return AppointmentDeclined.model_validate(
            {
                **self._reply_fields(received_at, "NO"),
                "appointment_id": self.appointment_id,
                "reminder_id": self.reminder_id(),
            },
            strict=False,
        )

    def opted_out(self, received_at: datetime) -> PatientOptedOut:
        return PatientOptedOut.model_validate(self._reply_fields(received_at, "STOP"), strict=False)

    def opted_in(self, received_at: datetime) -> PatientOptedIn:
        return PatientOptedIn.model_validate(self._reply_fields(received_at, "START"), strict=False)

    def cancelled(self, at: datetime) -> AppointmentCancelled:
        self.version += 1
        return AppointmentCancelled(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            version=self.version,
            occurred_at=at,
        )

    def attendance(
        self, at: datetime, outcome: Literal["attended", "no_show"] = "attended"
    ) -> AttendanceRecorded:
        self.version += 1
        return AttendanceRecorded(
            appointment_id=self.appointment_id,
            patient_id=self.patient_id,
            version=self.version,
            outcome=outcome,
            occurred_at=at,
        )
