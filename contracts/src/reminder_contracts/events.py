"""The event catalogue: every fact one service tells the others.

Each event is a frozen pydantic model with the common envelope (`Event`). The envelope's
`event_type` names the model; `event_version` is the schema version of that type.
Versioning rule (docs/versioning in README, enforced by `reminder_contracts.codec`):

- a consumer ignores fields it does not know (new optional fields are additive and keep
  the version);
- a consumer skips an event type it does not know, and commits past it;
- a breaking change bumps `event_version`; a consumer that meets a version newer than
  the one it knows sends that message to its dead-letter topic, to be replayed once the
  consumer is upgraded, and goes on with the next.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field

from .types import LanguageCode, OffsetMinutes, PhoneNumber, TimeZoneName, UtcDatetime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """The envelope every event carries."""

    # strict: no silent coercion of "1" into 1; extra fields are ignored (forward compatible).
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    #: Current schema version of this event type; bump it on a breaking change.
    VERSION: ClassVar[int] = 1
    #: The topic this event type is published on.
    TOPIC: ClassVar[str]

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    event_version: int = 1
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    correlation_id: UUID = Field(default_factory=uuid4)
    causation_id: UUID | None = None
    producer: str

    def key(self) -> str:
        """The Kafka key: the aggregate id, so one aggregate's events stay in order."""
        raise NotImplementedError

    def caused(self) -> dict[str, Any]:
        """Envelope fields for an event caused by this one (same correlation)."""
        return {"correlation_id": self.correlation_id, "causation_id": self.event_id}


# --------------------------------------------------------------------------- admin-api


class PatientSnapshot(BaseModel):
    """What a reminder needs to know of its patient, as of `patient_version`."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    patient_id: UUID
    patient_version: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=200)
    phone: PhoneNumber
    language: LanguageCode
    timezone: TimeZoneName

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


class _PatientEvent(Event):
    TOPIC: ClassVar[str] = "patients"

    patient_id: UUID

    def key(self) -> str:
        return str(self.patient_id)


class PatientRegistered(_PatientEvent):
    event_type: Literal["PatientRegistered"] = "PatientRegistered"
    producer: str = "admin-api"
    version: int = Field(1, ge=1, description="patient version, 1 on registration")
    name: str = Field(min_length=1, max_length=200)
    phone: PhoneNumber
    language: LanguageCode
    timezone: TimeZoneName


class PatientUpdated(_PatientEvent):
    """The patient's whole current state; consumers keep the highest `version`."""

    event_type: Literal["PatientUpdated"] = "PatientUpdated"
    producer: str = "admin-api"
    version: int = Field(ge=2)
    name: str = Field(min_length=1, max_length=200)
    phone: PhoneNumber
    language: LanguageCode
    timezone: TimeZoneName


class _AppointmentEvent(Event):
    TOPIC: ClassVar[str] = "appointments"

    appointment_id: UUID
    patient_id: UUID

    def key(self) -> str:
        return str(self.appointment_id)


class AppointmentScheduled(_AppointmentEvent):
    event_type: Literal["AppointmentScheduled"] = "AppointmentScheduled"
    producer: str = "admin-api"
    version: int = Field(1, ge=1, description="appointment version; every change bumps it")
    starts_at: UtcDatetime
    location: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=200)
    reminder_offsets_minutes: tuple[OffsetMinutes, ...] | None = Field(
        None, description="overrides the scheduler's default offsets for this appointment"
    )
    patient: PatientSnapshot


class AppointmentRescheduled(_AppointmentEvent):
    event_type: Literal["AppointmentRescheduled"] = "AppointmentRescheduled"
    producer: str = "admin-api"
    version: int = Field(ge=2)
    previous_starts_at: UtcDatetime
    starts_at: UtcDatetime
    location: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=200)
    reminder_offsets_minutes: tuple[OffsetMinutes, ...] | None = None
    patient: PatientSnapshot


class AppointmentCancelled(_AppointmentEvent):
    event_type: Literal["AppointmentCancelled"] = "AppointmentCancelled"
    producer: str = "admin-api"
    version: int = Field(ge=2)
    reason: str | None = Field(None, max_length=500)


class AttendanceRecorded(_AppointmentEvent):
    event_type: Literal["AttendanceRecorded"] = "AttendanceRecorded"
    producer: str = "admin-api"
    version: int = Field(ge=2)
    outcome: Literal["attended", "no_show"]


# --------------------------------------------------------------------------- scheduler

_REMINDER_NAMESPACE = UUID("6f1c9a52-3c1e-4b8e-9a55-6a2f0e7b9d10")


def reminder_id_for(appointment_id: UUID, appointment_version: int, offset_minutes: int) -> UUID:
    """Deterministic: the same appointment, version and offset always give the same id."""
    return uuid5(_REMINDER_NAMESPACE, f"{appointment_id}:{appointment_version}:{offset_minutes}")


class _ReminderEvent(Event):
    appointment_id: UUID
    patient_id: UUID
    reminder_id: UUID

    def key(self) -> str:
        return str(self.appointment_id)


class ReminderDue(_ReminderEvent):
    """A reminder's time has come; carries everything the sender needs to write it."""

    TOPIC: ClassVar[str] = "reminders"
    event_type: Literal["ReminderDue"] = "ReminderDue"
    producer: str = "scheduler"
    appointment_version: int = Field(ge=1)
    offset_minutes: OffsetMinutes
    due_at: UtcDatetime
    starts_at: UtcDatetime
    location: str | None = None
    provider: str | None = None
    patient: PatientSnapshot


# --------------------------------------------------------------------------- sender


class ReminderSent(_ReminderEvent):
    TOPIC: ClassVar[str] = "deliveries"
    event_type: Literal["ReminderSent"] = "ReminderSent"
    producer: str = "sender"
    appointment_version: int = Field(ge=1)
    sns_message_id: str = Field(min_length=1)
    segments: int = Field(ge=1)
    encoding: Literal["GSM-7", "UCS-2"]
    language: LanguageCode


class ReminderFailed(_ReminderEvent):
    TOPIC: ClassVar[str] = "deliveries"
    event_type: Literal["ReminderFailed"] = "ReminderFailed"
    producer: str = "sender"
    appointment_version: int = Field(ge=1)
    error_code: str = Field(description="e.g. InvalidParameter, Throttling, OptedOut")
    error: str = Field(description="what went wrong, without phone number or text")
    retryable: bool


class ReminderSkipped(_ReminderEvent):
    TOPIC: ClassVar[str] = "deliveries"
    event_type: Literal["ReminderSkipped"] = "ReminderSkipped"
    producer: str = "sender"
    appointment_version: int = Field(ge=1)
    reason: Literal["opted_out", "cancelled", "stale"]


class AutoReplySent(Event):
    """A message the system owed a patient who wrote to it: HELP text or an acknowledgement."""

    TOPIC: ClassVar[str] = "deliveries"
    event_type: Literal["AutoReplySent"] = "AutoReplySent"
    producer: str = "sender"
    reply_id: UUID = Field(description="the inbound reply this answers")
    kind: Literal["help", "confirmed", "declined"]
    patient_id: UUID | None = None
    appointment_id: UUID | None = None
    sns_message_id: str = Field(min_length=1)
    segments: int = Field(ge=1)
    language: LanguageCode

    def key(self) -> str:
        return str(self.appointment_id or self.patient_id or self.reply_id)


# --------------------------------------------------------------------------- inbound

_REPLY_NAMESPACE = UUID("0b7a3f44-51d6-4c1f-8d2e-2f5b8f3a6c21")


def reply_id_for(inbound_message_id: str) -> UUID:
    """Deterministic id of a patient's SMS reply, from AWS's `inboundMessageId`."""
    return uuid5(_REPLY_NAMESPACE, inbound_message_id)


class _ReplyEvent(Event):
    TOPIC: ClassVar[str] = "replies"

    reply_id: UUID
    inbound_message_id: str
    phone: PhoneNumber = Field(description="the patient's number the reply came from")
    received_at: UtcDatetime
    keyword: str = Field(description="the first word as understood, upper case, e.g. YES")
    language: LanguageCode = Field(description="language of the keyword, else the patient's")


class _AppointmentReply(_ReplyEvent):
    appointment_id: UUID
    patient_id: UUID
    reminder_id: UUID | None = Field(None, description="the reminder replied to, when known")

    def key(self) -> str:
        return str(self.appointment_id)


class AppointmentConfirmed(_AppointmentReply):
    event_type: Literal["AppointmentConfirmed"] = "AppointmentConfirmed"
    producer: str = "inbound"


class AppointmentDeclined(_AppointmentReply):
    event_type: Literal["AppointmentDeclined"] = "AppointmentDeclined"
    producer: str = "inbound"


class _PhoneReply(_ReplyEvent):
    """A reply about the phone number rather than one appointment.

    `patient_id` is None when no patient has that number; several patients sharing a
    number each get their own event.
    """

    patient_id: UUID | None = None

    def key(self) -> str:
        return str(self.patient_id or self.reply_id)


class PatientOptedOut(_PhoneReply):
    event_type: Literal["PatientOptedOut"] = "PatientOptedOut"
    producer: str = "inbound"


class PatientOptedIn(_PhoneReply):
    event_type: Literal["PatientOptedIn"] = "PatientOptedIn"
    producer: str = "inbound"


class HelpRequested(_PhoneReply):
    event_type: Literal["HelpRequested"] = "HelpRequested"
    producer: str = "inbound"


class ReplyUnmatched(_PhoneReply):
    """A reply the system could not act on; kept for staff to read."""

    event_type: Literal["ReplyUnmatched"] = "ReplyUnmatched"
    producer: str = "inbound"
    reason: Literal["unknown_number", "no_upcoming_appointment", "not_understood"]
    body: str = Field(max_length=1600, description="the SMS text (PHI: never logged)")
    appointment_id: UUID | None = Field(None, description="the appointment it most likely concerns")


# --------------------------------------------------------------------------- catalogue

AnyEvent = Annotated[
    PatientRegistered
    | PatientUpdated
    | AppointmentScheduled
    | AppointmentRescheduled
    | AppointmentCancelled
    | AttendanceRecorded
    | ReminderDue
    | ReminderSent
    | ReminderFailed
    | ReminderSkipped
    | AutoReplySent
    | AppointmentConfirmed
    | AppointmentDeclined
    | PatientOptedOut
    | PatientOptedIn
    | HelpRequested
    | ReplyUnmatched,
    Field(discriminator="event_type"),
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        PatientRegistered,
        PatientUpdated,
        AppointmentScheduled,
        AppointmentRescheduled,
        AppointmentCancelled,
        AttendanceRecorded,
        ReminderDue,
        ReminderSent,
        ReminderFailed,
        ReminderSkipped,
        AutoReplySent,
        AppointmentConfirmed,
        AppointmentDeclined,
        PatientOptedOut,
        PatientOptedIn,
        HelpRequested,
        ReplyUnmatched,
    )
}
