"""The analytics page's figures: the API's daily statistics rolled up into weeks, joined
with the weekly attendance and reply-time figures of `web.queries`. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .. import views
from .queries import WeekAttendance, week_start


@dataclass
class WeekFigures:
    week: date
    appointments: int = 0
    reminded: int = 0
    confirmed: int = 0
    declined: int = 0
    send_failures: int = 0
    opt_outs: int = 0
    median_seconds_to_reply: float | None = None
    attended_confirmed: int = 0
    no_show_confirmed: int = 0
    attended_unconfirmed: int = 0
    no_show_unconfirmed: int = 0

    @property
    def confirmation_rate(self) -> float | None:
        return round(self.confirmed / self.reminded, 4) if self.reminded else None

    @property
    def no_show_rate_confirmed(self) -> float | None:
        seen = self.attended_confirmed + self.no_show_confirmed
        return round(self.no_show_confirmed / seen, 4) if seen else None

    @property
    def no_show_rate_unconfirmed(self) -> float | None:
        seen = self.attended_unconfirmed + self.no_show_unconfirmed
        return round(self.no_show_unconfirmed / seen, 4) if seen else None


def by_week(
    days: Sequence[views.DayFigures], attendance: Sequence[WeekAttendance]
) -> list[WeekFigures]:
    """One row per week of `attendance` (every week of the range), counters summed from
    `days`; the reply-time median is the week's own, not a mean of daily medians."""
    weeks = {w.week: _from_attendance(w) for w in attendance}
    for day in days:
        if day.day is None:
            continue
        figures = weeks.setdefault(week_start(day.day), WeekFigures(week=week_start(day.day)))
        figures.appointments += day.appointments
        figures.reminded += day.reminded
        figures.confirmed += day.confirmed
        figures.declined += day.declined
        figures.send_failures += day.send_failures
        figures.opt_outs += day.opt_outs
    return [weeks[monday] for monday in sorted(weeks)]


def _from_attendance(w: WeekAttendance) -> WeekFigures:
    return WeekFigures(
        week=w.week,
        median_seconds_to_reply=w.median_seconds_to_reply,
        attended_confirmed=w.attended_confirmed,
        no_show_confirmed=w.no_show_confirmed,
        attended_unconfirmed=w.attended_unconfirmed,
        no_show_unconfirmed=w.no_show_unconfirmed,
    )


def overall(
    weeks: Sequence[WeekFigures], first: date, total: views.DayFigures | None
) -> WeekFigures:
    """The whole range in one row; its median reply time is the range's own (`total`)."""
    result = WeekFigures(week=first)
    for week in weeks:
        for name in _COUNTERS:
            setattr(result, name, getattr(result, name) + getattr(week, name))
    result.median_seconds_to_reply = total.median_seconds_to_reply if total else None
    return result


_COUNTERS = (
    "appointments",
    "reminded",
    "confirmed",
    "declined",
    "send_failures",
    "opt_outs",
    "attended_confirmed",
    "no_show_confirmed",
    "attended_unconfirmed",
    "no_show_unconfirmed",
)


def default_range(today: date, weeks: int = 12) -> tuple[date, date]:
    """The last `weeks` whole weeks up to the end of this one (Monday..Sunday)."""
    last = week_start(today) + timedelta(days=6)
    return last - timedelta(days=7 * weeks - 1), last


def percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def chart_data(weeks: Sequence[WeekFigures]) -> dict[str, Any]:
    """The series the page's script draws (the same numbers as its tables)."""
    return {
        "labels": [w.week.isoformat() for w in weeks],
        "confirmation_rate": [percent(w.confirmation_rate) for w in weeks],
        "reply_minutes": [minutes(w.median_seconds_to_reply) for w in weeks],
        "no_show_confirmed": [percent(w.no_show_rate_confirmed) for w in weeks],
        "no_show_unconfirmed": [percent(w.no_show_rate_unconfirmed) for w in weeks],
        "send_failures": [w.send_failures for w in weeks],
        "opt_outs": [w.opt_outs for w in weeks],
    }
