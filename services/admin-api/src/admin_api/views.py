"""What the queries return: read models shared by the JSON API and any page built on it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from .domain import Confirmation, ReminderState, Status


class Patient(BaseModel):
    id: UUID
    version: int
    name: str
    phone: str = Field(description="E.164")
    language: str
    timezone: str
    opted_out: bool = Field(description="the patient texted STOP (and not START since)")
    registered_at: datetime
    updated_at: datetime


class PatientList(BaseModel):
    items: list[Patient]


class AppointmentItem(BaseModel):
    id: UUID
    patient_id: UUID
    version: int
    starts_at: datetime
    location: str | None
    provider: str | None
    status: Status
    confirmation: Confirmation | None = Field(
        description="the patient's latest answer to the current time, if any"
    )


class AppointmentPage(BaseModel):
    items: list[AppointmentItem]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class Reminder(BaseModel):
    reminder_id: UUID
    appointment_version: int
    state: ReminderState
    offset_minutes: int | None
    due_at: datetime | None
    sent_at: datetime | None
    sns_message_id: str | None
    segments: int | None
    error_code: str | None
    error: str | None
    retryable: bool | None
    skip_reason: str | None


class Reply(BaseModel):
    reply_id: UUID
    kind: Confirmation
    keyword: str
    received_at: datetime
    reminder_id: UUID | None


class TimelineEntry(BaseModel):
    event_id: UUID
    event_type: str
    occurred_at: datetime
    producer: str
    data: dict[str, Any] = Field(description="the event as published")


class AppointmentDetail(AppointmentItem):
    reminder_offsets_minutes: list[int] | None
    patient_name: str
    scheduled_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
    attendance: Literal["attended", "no_show"] | None
    reminders: list[Reminder]
    replies: list[Reply]
    timeline: list[TimelineEntry]


class DayFigures(BaseModel):
    day: date | None = Field(description="the clinic's calendar day; null for the total")
    appointments: int
    reminded: int
    confirmed: int
    declined: int
    unanswered: int = Field(description="reminded, and no answer to the current time")
    cancelled: int
    attended: int
    no_shows: int
    confirmation_rate: float | None = Field(description="confirmed / reminded")
    median_seconds_to_reply: float | None = Field(
        description="from the first reminder sent to the first answer"
    )
    opt_outs: int = Field(description="STOP replies received that day")
    send_failures: int
    sms_segments_sent: int


class Stats(BaseModel):
    from_day: date = Field(serialization_alias="from")
    to_day: date = Field(serialization_alias="to")
    timezone: str
    days: list[DayFigures]
    total: DayFigures
