"""What to do with a due reminder, and how to treat an SNS error: pure decisions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from reminder_contracts.events import PatientSnapshot, ReminderDue

SkipReason = Literal["opted_out", "cancelled", "stale"]


@dataclass(frozen=True)
class KnownPatient:
    """The sender's latest view of a patient (highest version seen on any topic)."""

    patient_id: UUID
    version: int
    name: str
    phone: str
    language: str
    timezone: str

    @classmethod
    def from_snapshot(cls, snapshot: PatientSnapshot) -> KnownPatient:
        return cls(
            patient_id=snapshot.patient_id,
            version=snapshot.patient_version,
            name=snapshot.name,
            phone=snapshot.phone,
            language=snapshot.language,
            timezone=snapshot.timezone,
        )


@dataclass(frozen=True)
class KnownAppointment:
    """The sender's latest view of an appointment (highest version seen)."""

    appointment_id: UUID
    version: int
    starts_at: datetime | None  # None until a Scheduled/Rescheduled event was seen
    cancelled: bool


def newer_patient(known: KnownPatient | None, candidate: KnownPatient) -> KnownPatient:
    """Keep the highest version; an older or equal event changes nothing."""
    if known is None or candidate.version > known.version:
        return candidate
    return known


def current_patient(reminder: ReminderDue, known: KnownPatient | None) -> KnownPatient:
    """The patient as the reminder must use it: the snapshot, unless we know a newer one
    (so a phone number or language changed after scheduling is honoured)."""
    return newer_patient(known, KnownPatient.from_snapshot(reminder.patient))


@dataclass(frozen=True)
class Send:
    patient: KnownPatient


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


def decide(
    reminder: ReminderDue,
    appointment: KnownAppointment | None,
    patient: KnownPatient,
    *,
    opted_out: bool,
) -> Send | Skip:
    """Send, or skip with the reason; `opted_out` covers the patient and their current number.

    An appointment the sender has not heard of yet (topics are not ordered with each other)
    is taken as the reminder describes it.
    """
    if appointment is not None:
        if appointment.cancelled:
            return Skip("cancelled")
        if reminder.appointment_version < appointment.version:
            return Skip("stale")
        if (
            reminder.appointment_version == appointment.version
            and appointment.starts_at is not None
            and appointment.starts_at != reminder.starts_at
        ):
            return Skip("stale")
    if opted_out:
        return Skip("opted_out")
    return Send(patient)


@dataclass(frozen=True)
class OptState:
    opted_out: bool
    changed_at: datetime


def apply_opt(current: OptState | None, change: OptState) -> OptState:
    """Last reply wins (by when AWS received it), whatever order the events arrive in;
    on a tie, opted out wins: a message too few is better than one after STOP."""
    if current is None or change.changed_at > current.changed_at:
        return change
    if change.changed_at == current.changed_at and change.opted_out:
        return change
    return current


# ----------------------------------------------------------------------------- SNS errors

#: Error codes SNS answers when asked to slow down.
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KMSThrottling",
        "KMSThrottlingException",
    }
)
#: Codes meaning this message can never go (bad or opted-out number, disabled account, ...).
OPTED_OUT_CODES: Final = frozenset({"OptedOut", "OptedOutException"})
#: The request never reached SNS: nothing was sent, another try is safe.
NOT_SENT_CODES: Final = frozenset({"EndpointConnectionError"})
#: SNS may or may not have sent it (no answer): never retried, reported as unknown.
UNKNOWN_OUTCOME: Final = "unknown_outcome"
UNKNOWN_OUTCOME_CODES: Final = frozenset({"ReadTimeout"})


@dataclass(frozen=True)
class PublishError:
    code: str
    retryable: bool


def classify_error(code: str, http_status: int | None) -> PublishError:
    """Throttling, 5xx and unreachable endpoints are worth another try; everything else
    (InvalidParameter, opted out, authorisation) would fail the same way again. A request
    that got no answer may have been sent: retrying it could text the patient twice."""
    if code in OPTED_OUT_CODES:
        return PublishError("OptedOut", retryable=False)
    if code in UNKNOWN_OUTCOME_CODES:
        return PublishError(UNKNOWN_OUTCOME, retryable=False)
    if (
        code in THROTTLING_CODES
        or code in NOT_SENT_CODES
        or (http_status is not None and http_status >= 500)
    ):
        return PublishError(code, retryable=True)
    return PublishError(code, retryable=False)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS Architecture Blog): uniform in
    [0, min(cap, base * 2**attempt)]; `attempt` counts from 0 for the first retry."""
    return rng.uniform(0.0, min(cap, base * (2**attempt)))
