"""The admin API's domain core: command rules and the appointment read model, no I/O.

An appointment's read model is a *fold* over every event known about it, whatever the
order the events arrived in: the projection stores each event once and recomputes the
appointment from all of them, so a reply projected before its `ReminderSent` (they travel
on different topics) ends in the same state as the other way round.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from reminder_contracts import (
    SUPPORTED_LANGUAGES,
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    AutoReplySent,
    Event,
    InvalidPhoneNumber,
    PatientSnapshot,
    ReminderDue,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
    to_e164,
)
from reminder_contracts.types import _known_timezones

# --------------------------------------------------------------------------- errors


class CommandRejected(Exception):
    """A command that cannot be carried out; `detail` says why, for the clerk."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(CommandRejected):
    """The request itself is wrong (HTTP 422)."""


class NotFound(CommandRejected):
    """The thing the command is about does not exist (HTTP 404)."""


class Conflict(CommandRejected):
    """The command contradicts the current state, e.g. changing a cancelled appointment (409)."""


# --------------------------------------------------------------------------- patients

NAME_MAX = 200


def clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("name must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name must be at most {NAME_MAX} characters")
    return name


def clean_phone(raw: str, default_region: str) -> str:
    """E.164 from E.164 or a national number of `default_region`."""
    try:
        return to_e164(raw.strip(), default_region)
    except InvalidPhoneNumber as exc:
        raise InvalidInput(f"phone: {exc}") from None


def clean_language(raw: str) -> str:
    language = raw.strip().lower()
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidInput(
            f"language must be one of {', '.join(SUPPORTED_LANGUAGES)} (got {raw!r})"
        )
    return language


def clean_timezone(raw: str) -> str:
    value = raw.strip()
    if value not in _known_timezones():
        raise InvalidInput(
            f"timezone must be an IANA time zone name such as America/New_York (got {raw!r})"
        )
    return value


# --------------------------------------------------------------------------- appointments

_OFFSET = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"": 1, "m": 1, "h": 60, "d": 60 * 24}
MAX_OFFSET_MINUTES = 60 * 24 * 30
MAX_OFFSETS = 5


def parse_offsets(raw: Sequence[str | int] | None) -> tuple[int, ...] | None:
    """`["24h", "2h", 30]` -> `(1440, 120, 30)` minutes, largest first, no duplicates.

    Bare numbers are minutes. None keeps the scheduler's default offsets.
    """
    if raw is None:
        return None
    minutes: set[int] = set()
    for item in raw:
        if isinstance(item, bool):
            raise InvalidInput(f"reminder offset {item!r} is not a duration")
        if isinstance(item, int):
            value = item
        else:
            match = _OFFSET.match(item)
            if match is None:
                raise InvalidInput(
                    f"reminder offset {item!r} is not a duration like 30m, 24h or 2d"
                )
            value = int(match.group(1)) * _UNIT_MINUTES[match.group(2).lower()]
        if not 0 < value <= MAX_OFFSET_MINUTES:
            raise InvalidInput("a reminder offset must be between 1 minute and 30 days")
        minutes.add(value)
    if not minutes:
        raise InvalidInput("reminder_offsets must not be empty (leave it out for the default)")
    if len(minutes) > MAX_OFFSETS:
        raise InvalidInput(f"at most {MAX_OFFSETS} reminder offsets")
    return tuple(sorted(minutes, reverse=True))


def require_future(starts_at: datetime, now: datetime) -> datetime:
    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        raise InvalidInput("starts_at must carry a UTC offset, e.g. 2030-01-31T09:30:00-05:00")
    if starts_at <= now:
        raise InvalidInput("starts_at must be in the future")
    return starts_at


def require_changeable(cancelled: bool) -> None:
    if cancelled:
        raise Conflict("the appointment is cancelled and can no longer be changed")


# --------------------------------------------------------------------------- the read model

Status = Literal[
    "scheduled",
    "reminded",
    "confirmed",
    "declined",
    "cancelled",
    "attended",
    "no_show",
    "reminder_failed",
]
STATUSES: tuple[Status, ...] = (
    "scheduled",
    "reminded",
    "confirmed",
    "declined",
    "cancelled",
    "attended",
    "no_show",
    "reminder_failed",
)
Confirmation = Literal["confirmed", "declined"]
ReminderState = Literal["due", "sent", "failed", "skipped"]

# When several delivery outcomes exist for one reminder (a retryable failure, then a send),
# the strongest wins: a reminder that was sent once was sent.
_STATE_RANK: dict[ReminderState, int] = {"due": 0, "failed": 1, "skipped": 2, "sent": 3}


@dataclass
class ReminderView:
    reminder_id: UUID
    appointment_version: int
    state: ReminderState = "due"
    offset_minutes: int | None = None
    due_at: datetime | None = None
    sent_at: datetime | None = None
    sns_message_id: str | None = None
    segments: int | None = None
    error_code: str | None = None
    error: str | None = None
    retryable: bool | None = None
    skip_reason: str | None = None
    #: occurred_at of the outcome that decided `state` (ties between equal ranks: latest).
    decided_at: datetime | None = None


@dataclass(frozen=True)
class ReplyView:
    reply_id: UUID
    kind: Confirmation
    keyword: str
    received_at: datetime
    reminder_id: UUID | None


@dataclass
class AppointmentView:
    """Everything the admin API shows about one appointment, folded from its events."""

    appointment_id: UUID
    patient_id: UUID
    version: int
    starts_at: datetime
    location: str | None
    provider: str | None
    reminder_offsets_minutes: tuple[int, ...] | None
    patient: PatientSnapshot
    scheduled_at: datetime
    #: the version that set the current time, and when it was rescheduled to it (None: never)
    time_version: int
    rescheduled_at: datetime | None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    attendance: Literal["attended", "no_show"] | None = None
    reminders: list[ReminderView] = field(default_factory=list)
    replies: list[ReplyView] = field(default_factory=list)
    auto_reply_segments: int = 0

    # ---- derived facts

    @property
    def confirmation(self) -> Confirmation | None:
        """The latest answer (by the time the patient sent it) to the *current* time.

        A YES sent before a reschedule confirmed the old time, not this one.
        """
        moved = self.rescheduled_at
        current = [r for r in self.replies if moved is None or r.received_at >= moved]
        if not current:
            return None
        return max(current, key=lambda r: (r.received_at, str(r.reply_id))).kind

    @property
    def current_reminders(self) -> list[ReminderView]:
        return [r for r in self.reminders if r.appointment_version == self.time_version]

    @property
    def status(self) -> Status:
        if self.attendance is not None:
            return self.attendance
        if self.cancelled_at is not None:
            return "cancelled"
        confirmation = self.confirmation
        if confirmation is not None:
            return confirmation
        current = self.current_reminders
        if any(r.state == "sent" for r in current):
            return "reminded"
        if current and all(r.state in ("failed", "skipped") for r in current):
            return "reminder_failed"
        return "scheduled"

    @property
    def reminded(self) -> bool:
        return any(r.state == "sent" for r in self.reminders)

    @property
    def first_reminded_at(self) -> datetime | None:
        times = [r.sent_at for r in self.reminders if r.state == "sent" and r.sent_at]
        return min(times) if times else None

    @property
    def first_reply_at(self) -> datetime | None:
        return min((r.received_at for r in self.replies), default=None)

    @property
    def reply_seconds(self) -> int | None:
        """Time from the first reminder sent to the first answer, for the stats' median."""
        sent, replied = self.first_reminded_at, self.first_reply_at
        if sent is None or replied is None or replied < sent:
            return None
        return int((replied - sent).total_seconds())

    @property
    def segments_sent(self) -> int:
        reminders = sum(r.segments or 0 for r in self.reminders if r.state == "sent")
        return reminders + self.auto_reply_segments

    @property
    def failed_reminders(self) -> int:
        return sum(1 for r in self.reminders if r.state == "failed")


def fold_appointment(events: Iterable[Event]) -> AppointmentView | None:
    """The appointment as all of `events` (in any order, duplicates allowed) describe it.

    None while no `AppointmentScheduled`/`AppointmentRescheduled` is known: without a
    time there is no appointment to show yet, though its other events are kept.
    """
    events = list({e.event_id: e for e in events}.values())
    timed = [e for e in events if isinstance(e, AppointmentScheduled | AppointmentRescheduled)]
    if not timed:
        return None
    latest = max(timed, key=lambda e: e.version)
    first = min(timed, key=lambda e: e.version)
    view = AppointmentView(
        appointment_id=latest.appointment_id,
        patient_id=latest.patient_id,
        version=latest.version,
        starts_at=latest.starts_at,
        location=latest.location,
        provider=latest.provider,
        reminder_offsets_minutes=latest.reminder_offsets_minutes,
        patient=latest.patient,
        scheduled_at=first.occurred_at,
        time_version=latest.version,
        rescheduled_at=(latest.occurred_at if isinstance(latest, AppointmentRescheduled) else None),
    )
    reminders: dict[UUID, ReminderView] = {}
    replies: dict[UUID, ReplyView] = {}
    auto_replies: dict[UUID, int] = {}
    attendance_version = 0
    for event in events:
        if isinstance(event, AppointmentCancelled):
            view.version = max(view.version, event.version)
            if view.cancelled_at is None or event.occurred_at < view.cancelled_at:
                view.cancelled_at, view.cancel_reason = event.occurred_at, event.reason
        elif isinstance(event, AttendanceRecorded):
            view.version = max(view.version, event.version)
            if event.version > attendance_version:
                attendance_version, view.attendance = event.version, event.outcome
        elif isinstance(event, ReminderDue | ReminderSent | ReminderFailed | ReminderSkipped):
            reminder = reminders.setdefault(
                event.reminder_id, ReminderView(event.reminder_id, event.appointment_version)
            )
            _apply_reminder_event(reminder, event)
        elif isinstance(event, AppointmentConfirmed | AppointmentDeclined):
            kind: Confirmation = (
                "confirmed" if isinstance(event, AppointmentConfirmed) else "declined"
            )
            replies[event.reply_id] = ReplyView(
                event.reply_id, kind, event.keyword, event.received_at, event.reminder_id
            )
        elif isinstance(event, AutoReplySent):
            auto_replies[event.reply_id] = event.segments
    view.reminders = sorted(
        reminders.values(),
        key=lambda r: (r.due_at or r.decided_at or view.starts_at, str(r.reminder_id)),
    )
    view.replies = sorted(replies.values(), key=lambda r: (r.received_at, str(r.reply_id)))
    view.auto_reply_segments = sum(auto_replies.values())
    return view


def _apply_reminder_event(
    reminder: ReminderView, event: ReminderDue | ReminderSent | ReminderFailed | ReminderSkipped
) -> None:
    if isinstance(event, ReminderDue):
        reminder.offset_minutes, reminder.due_at = event.offset_minutes, event.due_at
        return
    state: ReminderState = (
        "sent"
        if isinstance(event, ReminderSent)
        else "failed"
        if isinstance(event, ReminderFailed)
        else "skipped"
    )
    rank, current = _STATE_RANK[state], _STATE_RANK[reminder.state]
    decided = reminder.decided_at
    if rank < current or (rank == current and decided is not None and event.occurred_at < decided):
        return
    reminder.state, reminder.decided_at = state, event.occurred_at
    reminder.sns_message_id = reminder.segments = reminder.sent_at = None
    reminder.error_code = reminder.error = reminder.retryable = reminder.skip_reason = None
    if isinstance(event, ReminderSent):
        reminder.sent_at = event.occurred_at
        reminder.sns_message_id, reminder.segments = event.sns_message_id, event.segments
    elif isinstance(event, ReminderFailed):
        reminder.error_code, reminder.error = event.error_code, event.error
        reminder.retryable = event.retryable
    elif isinstance(event, ReminderSkipped):
        reminder.skip_reason = event.reason


def timeline_order(event: Event) -> tuple[datetime, int, str]:
    """Events in the order they happened; for equal times, an appointment's own version."""
    version = getattr(event, "version", 0)
    return (event.occurred_at, version if isinstance(version, int) else 0, str(event.event_id))


# --------------------------------------------------------------------------- consent


def opted_out(changes: Iterable[tuple[datetime, bool]]) -> bool:
    """The latest opt-out/opt-in (by the time the patient sent it) decides; none: in."""
    latest = max(changes, key=lambda change: change[0], default=None)
    return bool(latest and latest[1])


# --------------------------------------------------------------------------- paging


class InvalidCursor(InvalidInput):
    pass


def encode_cursor(starts_at: datetime, appointment_id: UUID) -> str:
    """An opaque position after (starts_at, id); clients pass it back unchanged."""
    raw = json.dumps([starts_at.isoformat(), str(appointment_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        starts_at, appointment_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(starts_at)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, UUID(appointment_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API returned") from None


# --------------------------------------------------------------------------- stats


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    """The clinic's calendar day of an instant: stats are per clinic day, not UTC day."""
    return instant.astimezone(zone).date()


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the clinic's zone, as UTC."""
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class DayStats:
    day: date | None
    appointments: int = 0
    reminded: int = 0
    confirmed: int = 0
    declined: int = 0
    unanswered: int = 0
    cancelled: int = 0
    attended: int = 0
    no_shows: int = 0
    opt_outs: int = 0
    send_failures: int = 0
    sms_segments_sent: int = 0
    #: appointments with a time to reply (reminded, then answered)
    answered: int = 0
    #: not additive: set from the data of the day (or the range) itself
    median_seconds_to_reply: float | None = None

    @property
    def confirmation_rate(self) -> float | None:
        """Confirmed among those reminded; None when nobody was reminded."""
        return round(self.confirmed / self.reminded, 4) if self.reminded else None

    COUNTERS: tuple[str, ...] = (
        "appointments",
        "reminded",
        "confirmed",
        "declined",
        "unanswered",
        "cancelled",
        "attended",
        "no_shows",
        "opt_outs",
        "send_failures",
        "sms_segments_sent",
        "answered",
    )

    def add(self, other: DayStats) -> None:
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def total(days: Iterable[DayStats]) -> DayStats:
    """The counters summed (the median is not a sum: the caller sets it)."""
    result = DayStats(day=None)
    for day in days:
        result.add(day)
    return result


def middle(count: int) -> tuple[int, int]:
    """(offset, how many) of the middle value(s) of `count` sorted values: their mean is
    the median. (0, 0) when there are none."""
    if count <= 0:
        return 0, 0
    if count % 2:
        return (count - 1) // 2, 1
    return count // 2 - 1, 2
