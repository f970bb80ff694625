"""How things read on the page: status badges, clinic-local times, timeline sentences."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from .. import views
from ..domain import STATUSES, Status


@dataclass(frozen=True)
class Badge:
    #: what the badge says: the meaning never rests on its colour alone
    label: str
    #: a CSS modifier (colour) and a symbol that repeats the meaning in shape
    tone: str
    symbol: str


BADGES: dict[Status, Badge] = {
    "scheduled": Badge("Scheduled", "neutral", "○"),
    "reminded": Badge("Reminded, unanswered", "info", "…"),
    "confirmed": Badge("Confirmed", "good", "✓"),
    "declined": Badge("Declined", "warn", "✗"),
    "cancelled": Badge("Cancelled", "muted", "⊘"),
    "attended": Badge("Attended", "good", "✓"),
    "no_show": Badge("No-show", "bad", "!"),
    "reminder_failed": Badge("Reminder failed", "bad", "!"),
}
STATUS_CHOICES: list[tuple[str, str]] = [(s, BADGES[s].label) for s in STATUSES]


def badge(status: str) -> Badge:
    for known, found in BADGES.items():
        if known == status:
            return found
    return Badge(status, "neutral", "•")


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone)


def clock(instant: datetime | None, zone: ZoneInfo) -> str:
    """`09:30` in the clinic's zone."""
    return "" if instant is None else instant.astimezone(zone).strftime("%H:%M")


def when(instant: datetime | None, zone: ZoneInfo) -> str:
    """`Mon 30 Nov 2026, 09:30 EST` in the clinic's zone."""
    if instant is None:
        return ""
    at = instant.astimezone(zone)
    return f"{at:%a} {at.day} {at:%b %Y, %H:%M} {at.tzname()}"


def day_heading(day: date, today: date) -> str:
    named = {0: "Today", 1: "Tomorrow", -1: "Yesterday"}.get((day - today).days)
    text = f"{day:%A} {day.day} {day:%B %Y}"
    return f"{named} · {text}" if named else text


def by_day(
    items: Iterable[views.AppointmentItem], zone: ZoneInfo
) -> list[tuple[date, list[views.AppointmentItem]]]:
    """Appointments (already in start order) grouped by the clinic's calendar day."""
    return [
        (day, list(group))
        for day, group in groupby(items, key=lambda a: a.starts_at.astimezone(zone).date())
    ]


def offset_text(minutes: int | None) -> str:
    if minutes is None:
        return ""
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def describe(entry: views.TimelineEntry, zone: ZoneInfo) -> str:
    """One sentence per event of an appointment's timeline; no phone numbers in it."""
    data: dict[str, Any] = entry.data
    kind = entry.event_type

    def at(key: str) -> str:
        value = data.get(key)
        return when(datetime.fromisoformat(value), zone) if isinstance(value, str) else ""

    if kind == "AppointmentScheduled":
        return f"Booked for {at('starts_at')}"
    if kind == "AppointmentRescheduled":
        return f"Moved from {at('previous_starts_at')} to {at('starts_at')}"
    if kind == "AppointmentCancelled":
        reason = data.get("reason")
        return f"Cancelled: {reason}" if reason else "Cancelled"
    if kind == "AttendanceRecorded":
        return "Recorded as attended" if data.get("outcome") == "attended" else "Recorded: no-show"
    if kind == "ReminderDue":
        return f"Reminder planned {offset_text(data.get('offset_minutes'))} before"
    if kind == "ReminderSent":
        return f"Reminder sent ({data.get('segments', '?')} SMS segment(s))"
    if kind == "ReminderFailed":
        retry = " (will retry)" if data.get("retryable") else ""
        return f"Reminder could not be sent: {data.get('error_code', 'error')}{retry}"
    if kind == "ReminderSkipped":
        return f"Reminder skipped: {data.get('reason', '')}".rstrip(": ")
    if kind == "AppointmentConfirmed":
        return f"Patient confirmed (replied “{data.get('keyword', '')}”)"
    if kind == "AppointmentDeclined":
        return f"Patient declined (replied “{data.get('keyword', '')}”)"
    if kind == "AutoReplySent":
        return "Automatic answer sent to the patient"
    return kind
