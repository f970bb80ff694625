"""The read side: queries over the projection, returning `views` models.

Free of HTTP so that the JSON API and a server-rendered page can both use them.
"""

from __future__ import annotations

import json
import statistics
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, func, or_, select
from sqlalchemy.orm import Session

from reminder_contracts import Event, PatientSnapshot

from . import domain, views
from .adapters.tables import appointments, patient_consent, patients, phone_replies
from .domain import DayStats, InvalidInput, NotFound
from .handlers import load_events

MAX_PAGE = 200
MAX_STATS_DAYS = 366


# --------------------------------------------------------------------------- patients


def _patient_query() -> Any:
    return select(
        patients,
        func.coalesce(patient_consent.c.opted_out, False).label("opted_out"),
    ).outerjoin(patient_consent, patient_consent.c.patient_id == patients.c.id)


def _patient(row: Any) -> views.Patient:
    return views.Patient(
        id=row.id,
        version=row.version,
        name=row.name,
        phone=row.phone,
        language=row.language,
        timezone=row.timezone,
        opted_out=bool(row.opted_out),
        registered_at=row.registered_at,
        updated_at=row.updated_at,
    )


def get_patient(session: Session, patient_id: UUID) -> views.Patient:
    row = session.execute(_patient_query().where(patients.c.id == patient_id)).one_or_none()
    if row is None:
        raise NotFound("no patient with this id")
    return _patient(row)


def find_patients(
    session: Session,
    *,
    phone: str | None = None,
    q: str | None = None,
    phone_region: str = "US",
    limit: int = 50,
) -> views.PatientList:
    """By exact phone number (any format `phone_region` reads) and/or a name fragment."""
    query = _patient_query()
    if phone is not None:
        query = query.where(patients.c.phone == domain.clean_phone(phone, phone_region))
    if q is not None and q.strip():
        escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(patients.c.name.like(f"%{escaped}%", escape="\\"))
    rows = session.execute(query.order_by(patients.c.name, patients.c.id).limit(limit)).all()
    return views.PatientList(items=[_patient(row) for row in rows])


# --------------------------------------------------------------------------- appointments


def _item(row: Any) -> views.AppointmentItem:
    return views.AppointmentItem(
        id=row.id,
        patient_id=row.patient_id,
        version=row.version,
        starts_at=row.starts_at,
        location=row.location,
        provider=row.provider,
        status=row.status,
        confirmation=row.confirmation,
    )


def list_appointments(
    session: Session,
    *,
    status: domain.Status | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    patient_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> views.AppointmentPage:
    """Appointments by start time, a page at a time (keyset: each page costs the same)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    for name, value in (("from", starts_from), ("to", starts_before)):
        if value is not None and value.utcoffset() is None:
            raise InvalidInput(f"{name} must carry a UTC offset, e.g. 2030-01-31T00:00:00Z")
    columns = appointments.c
    query = select(
        columns.id,
        columns.patient_id,
        columns.version,
        columns.starts_at,
        columns.location,
        columns.provider,
        columns.status,
        columns.confirmation,
    )
    if status is not None:
        query = query.where(columns.status == status)
    if patient_id is not None:
        query = query.where(columns.patient_id == patient_id)
    if starts_from is not None:
        query = query.where(columns.starts_at >= starts_from)
    if starts_before is not None:
        query = query.where(columns.starts_at < starts_before)
    if cursor is not None:
        after_start, after_id = domain.decode_cursor(cursor)
        # The leading `>=` bounds the index range scan; the OR only trims its first key.
        query = query.where(
            columns.starts_at >= after_start,
            or_(columns.starts_at > after_start, columns.id > after_id),
        )
    rows = session.execute(query.order_by(columns.starts_at, columns.id).limit(limit + 1)).all()
    items = [_item(row) for row in rows[:limit]]
    next_cursor = (
        domain.encode_cursor(items[-1].starts_at, items[-1].id) if len(rows) > limit else None
    )
    return views.AppointmentPage(items=items, next_cursor=next_cursor)


def get_appointment(session: Session, appointment_id: UUID) -> views.AppointmentDetail:
    events = load_events(session, appointment_id)
    view = domain.fold_appointment(events)
    if view is None:
        raise NotFound("no appointment with this id")
    return views.AppointmentDetail(
        id=view.appointment_id,
        patient_id=view.patient_id,
        version=view.version,
        starts_at=view.starts_at,
        location=view.location,
        provider=view.provider,
        status=view.status,
        confirmation=view.confirmation,
        reminder_offsets_minutes=(
            None if view.reminder_offsets_minutes is None else list(view.reminder_offsets_minutes)
        ),
        patient_name=_patient_name(session, view.patient),
        scheduled_at=view.scheduled_at,
        cancelled_at=view.cancelled_at,
        cancel_reason=view.cancel_reason,
        attendance=view.attendance,
        reminders=[
            views.Reminder(
                reminder_id=r.reminder_id,
                appointment_version=r.appointment_version,
                state=r.state,
                offset_minutes=r.offset_minutes,
                due_at=r.due_at,
                sent_at=r.sent_at,
                sns_message_id=r.sns_message_id,
                segments=r.segments,
                error_code=r.error_code,
                error=r.error,
                retryable=r.retryable,
                skip_reason=r.skip_reason,
            )
            for r in view.reminders
        ],
        replies=[
            views.Reply(
                reply_id=r.reply_id,
                kind=r.kind,
                keyword=r.keyword,
                received_at=r.received_at,
                reminder_id=r.reminder_id,
            )
            for r in view.replies
        ],
        timeline=[_timeline_entry(event) for event in events],
    )


def _patient_name(session: Session, snapshot: PatientSnapshot) -> str:
    name = session.execute(
        select(patients.c.name).where(patients.c.id == snapshot.patient_id)
    ).scalar_one_or_none()
    return name if name is not None else snapshot.name


def _timeline_entry(event: Event) -> views.TimelineEntry:
    return views.TimelineEntry(
        event_id=event.event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        producer=event.producer,
        data=json.loads(event.model_dump_json()),
    )


# --------------------------------------------------------------------------- statistics


def stats(session: Session, *, first: date, last: date, zone: ZoneInfo) -> views.Stats:
    """Figures per clinic day of the appointments' start, and in total, `first`..`last`."""
    if last < first:
        raise InvalidInput("to must not be before from")
    if (last - first).days + 1 > MAX_STATS_DAYS:
        raise InvalidInput(f"at most {MAX_STATS_DAYS} days at a time")
    days: dict[date, DayStats] = {}

    def day(d: date) -> DayStats:
        return days.setdefault(d, DayStats(day=d))

    c = appointments.c
    as_int = Integer()

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0), type_=as_int)

    in_range = c.local_day.between(first, last)
    rows = session.execute(
        select(
            c.local_day,
            func.count().label("appointments"),
            count(c.reminded.is_(True)).label("reminded"),
            count(c.confirmation == "confirmed").label("confirmed"),
            count(c.confirmation == "declined").label("declined"),
            count(and_(c.reminded.is_(True), c.confirmation.is_(None))).label("unanswered"),
            count(c.status == "cancelled").label("cancelled"),
            count(c.status == "attended").label("attended"),
            count(c.status == "no_show").label("no_shows"),
            func.sum(c.failed_reminders, type_=as_int).label("send_failures"),
            func.sum(c.segments_sent, type_=as_int).label("sms_segments_sent"),
            func.count(c.reply_seconds).label("answered"),
        )
        .where(in_range)
        .group_by(c.local_day)
    ).all()
    for row in rows:
        figures = day(_as_date(row.local_day))
        for name in DayStats.COUNTERS:
            if name != "opt_outs":
                setattr(figures, name, int(getattr(row, name) or 0))

    # Medians cannot be summed. The database picks each day's middle value(s) (window
    # functions), and the range's own middle by offset: no reply times leave the server.
    answered = c.reply_seconds.is_not(None)
    position = func.row_number().over(partition_by=c.local_day, order_by=c.reply_seconds)
    per_day = func.count().over(partition_by=c.local_day)
    ranked = (
        select(c.local_day, c.reply_seconds, position.label("n"), per_day.label("of"))
        .where(in_range, answered)
        .subquery()
    )
    middles: dict[date, list[int]] = {}
    for local, seconds in session.execute(
        select(ranked.c.local_day, ranked.c.reply_seconds).where(
            ranked.c.n * 2 >= ranked.c.of, ranked.c.n * 2 <= ranked.c.of + 2
        )
    ):
        middles.setdefault(_as_date(local), []).append(int(seconds))
    for local, values in middles.items():
        day(local).median_seconds_to_reply = statistics.fmean(values)
    total_answered = sum(d.answered for d in days.values())
    offset, count_ = domain.middle(total_answered)
    total_median = None
    if count_:
        centre = session.execute(
            select(c.reply_seconds)
            .where(in_range, answered)
            .order_by(c.reply_seconds)
            .offset(offset)
            .limit(count_)
        ).scalars()
        total_median = statistics.fmean(int(v) for v in centre)

    start, end = domain.day_bounds(first, last, zone)
    opt_outs = session.execute(
        select(phone_replies.c.received_at).where(
            phone_replies.c.event_type == "PatientOptedOut",
            phone_replies.c.received_at >= start,
            phone_replies.c.received_at < end,
        )
    ).scalars()
    for received_at in opt_outs:
        day(domain.local_day(received_at, zone)).opt_outs += 1

    ordered = [days[d] for d in sorted(days)]
    overall = domain.total(ordered)
    overall.median_seconds_to_reply = total_median
    return views.Stats(
        from_day=first,
        to_day=last,
        timezone=str(zone),
        days=[_figures(d) for d in ordered],
        total=_figures(overall),
    )


def _as_date(value: Any) -> date:
    # SQLite hands back strings for DATE under aggregate queries on some versions.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _figures(stats_day: DayStats) -> views.DayFigures:
    return views.DayFigures(
        day=stats_day.day,
        appointments=stats_day.appointments,
        reminded=stats_day.reminded,
        confirmed=stats_day.confirmed,
        declined=stats_day.declined,
        unanswered=stats_day.unanswered,
        cancelled=stats_day.cancelled,
        attended=stats_day.attended,
        no_shows=stats_day.no_shows,
        confirmation_rate=stats_day.confirmation_rate,
        median_seconds_to_reply=stats_day.median_seconds_to_reply,
        opt_outs=stats_day.opt_outs,
        send_failures=stats_day.send_failures,
        sms_segments_sent=stats_day.sms_segments_sent,
    )


__all__ = [
    "find_patients",
    "get_appointment",
    "get_patient",
    "list_appointments",
    "stats",
]
