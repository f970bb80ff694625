"""Read queries only the web page needs, on the projection tables of `admin_api`.

The per-week figures the JSON API's `queries.stats` does not have: the median reply time
of each week (medians cannot be summed from days) and attendance split by whether the
patient had confirmed. Both are computed in the database over the covering statistics
index; weeks are Monday to Sunday in the clinic's calendar.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Date, Integer, case, func, literal, select
from sqlalchemy.orm import Session

from ..adapters.tables import appointments, patients


def patient_names(session: Session, patient_ids: Iterable[UUID]) -> dict[UUID, str]:
    """id -> name of the patients of one page of appointments (at most one page's worth)."""
    ids = sorted(set(patient_ids), key=str)
    if not ids:
        return {}
    rows = session.execute(select(patients.c.id, patients.c.name).where(patients.c.id.in_(ids)))
    return {row.id: row.name for row in rows}


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def weeks_between(first: date, last: date) -> list[date]:
    """The Mondays of every week that overlaps first..last."""
    monday, weeks = week_start(first), []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


@dataclass
class WeekAttendance:
    """Attendance recorded for the appointments of one week, by confirmation."""

    week: date
    attended_confirmed: int = 0
    no_show_confirmed: int = 0
    attended_unconfirmed: int = 0
    no_show_unconfirmed: int = 0
    median_seconds_to_reply: float | None = None


def _week_of(column: Any, weeks: list[date]) -> Any:
    """SQL: the Monday of `column`'s week, as a CASE over the (few) weeks of the range —
    portable between MariaDB and SQLite, which share no week function."""
    if len(weeks) == 1:
        return literal(weeks[0], Date())
    whens = [(column < weeks[i + 1], literal(weeks[i], Date())) for i in range(len(weeks) - 1)]
    return case(*whens, else_=literal(weeks[-1], Date()))


def weekly_attendance(session: Session, *, first: date, last: date) -> list[WeekAttendance]:
    """Per week of first..last (by the appointments' clinic day): attended and no-show,
    with and without a confirmation, and the median time from reminder to reply."""
    weeks = weeks_between(first, last)
    result = {monday: WeekAttendance(week=monday) for monday in weeks}
    c = appointments.c
    in_range = c.local_day.between(first, last)
    week = _week_of(c.local_day, weeks)

    confirmed = case((c.confirmation == "confirmed", 1), else_=0)
    outcomes = (
        select(week.label("week"), confirmed.label("confirmed"), c.status)
        .where(in_range, c.status.in_(("attended", "no_show")))
        .subquery()
    )
    as_int = Integer()
    rows = session.execute(
        select(
            outcomes.c.week,
            outcomes.c.confirmed,
            func.sum(case((outcomes.c.status == "attended", 1), else_=0), type_=as_int).label(
                "attended"
            ),
            func.sum(case((outcomes.c.status == "no_show", 1), else_=0), type_=as_int).label(
                "no_shows"
            ),
        ).group_by(outcomes.c.week, outcomes.c.confirmed)
    )
    for row in rows:
        figures = result[_as_date(row.week)]
        if row.confirmed:
            figures.attended_confirmed += int(row.attended or 0)
            figures.no_show_confirmed += int(row.no_shows or 0)
        else:
            figures.attended_unconfirmed += int(row.attended or 0)
            figures.no_show_unconfirmed += int(row.no_shows or 0)

    # Each week's middle reply time(s) picked by the database: no other value leaves it.
    answered = c.reply_seconds.is_not(None)
    ranked = (
        select(
            week.label("week"),
            c.reply_seconds,
            func.row_number().over(partition_by=week, order_by=c.reply_seconds).label("n"),
            func.count().over(partition_by=week).label("of"),
        )
        .where(in_range, answered)
        .subquery()
    )
    middles = session.execute(
        select(ranked.c.week, ranked.c.reply_seconds).where(
            ranked.c.n * 2 >= ranked.c.of, ranked.c.n * 2 <= ranked.c.of + 2
        )
    )
    values: dict[date, list[int]] = {}
    for monday, seconds in middles:
        values.setdefault(_as_date(monday), []).append(int(seconds))
    for monday, middle in values.items():
        result[monday].median_seconds_to_reply = statistics.fmean(middle)
    return [result[monday] for monday in weeks]


def _as_date(value: Any) -> date:
    # SQLite hands back DATE results of expressions as strings.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
