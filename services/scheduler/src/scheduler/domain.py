"""The reminder policy: when each reminder of an appointment is due. Pure logic, no I/O.

Times are aware UTC datetimes throughout; a patient's local time only matters for quiet
hours, which are computed in the patient's IANA time zone with `zoneinfo`, minute by
minute, so daylight-saving changes (a 23 h or 25 h day) need no special cases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from reminder_contracts.events import reminder_id_for

#: Longest offset an appointment may ask for (mirrors `OffsetMinutes` in the contracts).
MAX_OFFSET_MINUTES = 60 * 24 * 30

_MINUTE = timedelta(minutes=1)
_DAY_MINUTES = 24 * 60

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm]?)\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"d": 24 * 60, "h": 60, "m": 1, "": 1}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


class PolicyError(ValueError):
    """A reminder policy setting that cannot be read; the message says what is expected."""


# --------------------------------------------------------------------------- parsing


def parse_offsets(text: str) -> tuple[int, ...]:
    """`"48h,2h"` -> `(2880, 120)`; units `d`, `h`, `m` (a bare number means minutes).

    Returned largest first, without duplicates.
    """
    offsets: set[int] = set()
    for part in text.split(","):
        match = _DURATION.match(part)
        if not match:
            raise PolicyError(
                f"reminder offset {part.strip()!r} is not a duration like '24h', '90m' or '2d'"
            )
        minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2).lower()]
        if not 0 < minutes <= MAX_OFFSET_MINUTES:
            raise PolicyError(
                f"reminder offset {part.strip()!r} must be more than 0 and at most 30 days"
            )
        offsets.add(minutes)
    return tuple(sorted(offsets, reverse=True))


def _parse_clock(text: str) -> time:
    match = _CLOCK.match(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise PolicyError(f"{text.strip()!r} is not a time of day like '21:00'")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window `[start, end)` in which no reminder is sent.

    `start > end` wraps past midnight (the usual 21:00-08:00).
    """

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """`"21:00-08:00"`; `""`, `"off"` or `"none"` mean no quiet hours."""
        if text.strip().lower() in {"", "off", "none"}:
            return None
        start, sep, end = text.partition("-")
        if not sep:
            raise PolicyError(f"quiet hours {text!r} are not a range like '21:00-08:00'")
        quiet = cls(_parse_clock(start), _parse_clock(end))
        if quiet.start == quiet.end:
            raise PolicyError(f"quiet hours {text!r} are empty; use 'off' for none")
        return quiet

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_quiet(self, instant: datetime, zone: ZoneInfo) -> bool:
        return self.contains(instant.astimezone(zone).time())

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class ReminderPolicy:
    offsets_minutes: tuple[int, ...]
    quiet_hours: QuietHours | None

    @classmethod
    def parse(cls, offsets: str, quiet_hours: str) -> ReminderPolicy:
        return cls(parse_offsets(offsets), QuietHours.parse(quiet_hours))


# --------------------------------------------------------------------------- planning


class Skip(StrEnum):
    """Why a reminder of an appointment will not be sent."""

    APPOINTMENT_PASSED = "appointment_passed"
    QUIET_HOURS = "quiet_hours"
    SAME_TIME_AS_ANOTHER = "same_time_as_another"


@dataclass(frozen=True)
class PlannedReminder:
    reminder_id: UUID
    offset_minutes: int
    due_at: datetime


@dataclass(frozen=True)
class SkippedReminder:
    offset_minutes: int
    reason: Skip


@dataclass(frozen=True)
class Plan:
    due: tuple[PlannedReminder, ...]
    skipped: tuple[SkippedReminder, ...]

    def by_offset(self) -> dict[int, PlannedReminder]:
        return {r.offset_minutes: r for r in self.due}


def _require_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _step_while_quiet(
    instant: datetime, quiet: QuietHours, zone: ZoneInfo, step: timedelta
) -> datetime:
    """Walk minute by minute from a quiet `instant` to the first one outside quiet hours."""
    for _ in range(_DAY_MINUTES + 1):
        instant += step
        if not quiet.is_quiet(instant, zone):
            return instant
    raise AssertionError("quiet hours cover less than a day, so this is unreachable")


def due_time(
    nominal: datetime,
    starts_at: datetime,
    now: datetime,
    quiet: QuietHours | None,
    zone: ZoneInfo,
) -> datetime | Skip:
    """When a reminder nominally due at `nominal` goes out, or why it does not.

    - due in the past (booked inside the window): due at once (`now`);
    - inside quiet hours: the last allowed minute before them; if that is already past,
      the first allowed minute after them, if that is still before the appointment;
      otherwise it is skipped.
    """
    if starts_at <= now:
        return Skip.APPOINTMENT_PASSED
    due = max(nominal, now)
    if quiet is None or not quiet.is_quiet(due, zone):
        return due
    before = _step_while_quiet(due, quiet, zone, -_MINUTE)
    if before >= now:
        return before
    if not quiet.is_quiet(now, zone):
        # Still in the last allowed minute before the quiet window: go now.
        return now
    after = _step_while_quiet(due, quiet, zone, _MINUTE)
    return after if after < starts_at else Skip.QUIET_HOURS


def plan_reminders(
    *,
    appointment_id: UUID,
    appointment_version: int,
    starts_at: datetime,
    timezone: str,
    offsets_minutes: Iterable[int],
    quiet_hours: QuietHours | None,
    now: datetime,
) -> Plan:
    """Every reminder of one appointment version: due ones (with deterministic ids) and skips.

    Reminders that land on the same instant (two offsets both already past, say) would
    reach the patient as two identical texts at once: only the one closest to the
    appointment is kept.
    """
    starts_at = _require_utc(starts_at, "starts_at")
    now = _require_utc(now, "now")
    zone = ZoneInfo(timezone)
    due: dict[datetime, PlannedReminder] = {}
    skipped: list[SkippedReminder] = []
    for offset in sorted(set(offsets_minutes)):  # smallest first: it wins a tie
        when = due_time(starts_at - timedelta(minutes=offset), starts_at, now, quiet_hours, zone)
        if isinstance(when, Skip):
            skipped.append(SkippedReminder(offset, when))
        elif when in due:
            skipped.append(SkippedReminder(offset, Skip.SAME_TIME_AS_ANOTHER))
        else:
            rid = reminder_id_for(appointment_id, appointment_version, offset)
            due[when] = PlannedReminder(rid, offset, when)
    return Plan(
        due=tuple(sorted(due.values(), key=lambda r: r.due_at)),
        skipped=tuple(sorted(skipped, key=lambda s: -s.offset_minutes)),
    )


# --------------------------------------------------------------------------- versions


def is_newer(incoming_version: int, stored_version: int | None) -> bool:
    """An appointment event changes anything only if it is newer than what is stored.

    Late events of an older version (and replays of the same one) change nothing.
    """
    return stored_version is None or incoming_version > stored_version


def effective_offsets(override: Sequence[int] | None, policy: ReminderPolicy) -> tuple[int, ...]:
    """The appointment's own offsets when it has them (empty: no reminders), else the policy."""
    return tuple(override) if override is not None else policy.offsets_minutes
