"""The projection from hand-made event sequences, against MariaDB: duplicates, any order
across topics, rebuilds into an empty database, consent and statistics."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from admin_api import handlers, queries
from admin_api.adapters.tables import appointment_events, appointments
from admin_api.samples import Story
from reminder_contracts import Event, ReminderSent
from reminder_runtime.db import transaction

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("America/New_York")
T0 = datetime(2030, 3, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York


def apply(factory: sessionmaker[Session], *events: Event) -> list[bool]:
    results = []
    for event in events:
        with transaction(factory) as session:
            results.append(handlers.project(session, event, ZONE))
    return results


def summary(factory: sessionmaker[Session], appointment_id: UUID) -> dict[str, Any]:
    with transaction(factory) as session:
        row = session.execute(
            select(appointments).where(appointments.c.id == appointment_id)
        ).one_or_none()
    assert row is not None, "appointment not projected"
    values = dict(row._mapping)
    values.pop("updated_at")
    return values


def detail(factory: sessionmaker[Session], appointment_id: UUID) -> Any:
    with transaction(factory) as session:
        return queries.get_appointment(session, appointment_id)


def history(story: Story) -> list[Event]:
    """Scheduled, reminder due, sent, then the patient's YES an hour later."""
    sent_at = T0 - timedelta(hours=24)
    return [
        story.scheduled(T0 - timedelta(days=3)),
        story.due(),
        story.sent(sent_at, segments=2),
        story.confirmed(sent_at + timedelta(hours=1)),
    ]


def test_every_order_of_one_history_ends_in_the_same_state(
    session_factory: sessionmaker[Session],
) -> None:
    results = []
    for order in itertools.permutations(range(4)):
        story = Story(starts_at=T0)
        events = history(story)
        apply(session_factory, *(events[i] for i in order))
        row = summary(session_factory, story.appointment_id)
        results.append({k: v for k, v in row.items() if k not in ("id", "patient_id")})
        assert row["status"] == "confirmed", f"order {order}"
    assert all(r == results[0] for r in results)
    assert results[0]["reminded"] is True
    assert results[0]["reply_seconds"] == 3600
    assert results[0]["segments_sent"] == 2
    assert results[0]["local_day"] == date(2030, 3, 1)


def test_a_reply_before_its_reminder_sent_still_ends_confirmed(
    session_factory: sessionmaker[Session],
) -> None:
    story = Story(starts_at=T0)
    scheduled, _, sent, confirmed = history(story)
    apply(session_factory, scheduled, confirmed)
    assert summary(session_factory, story.appointment_id)["status"] == "confirmed"
    apply(session_factory, sent)
    after = detail(session_factory, story.appointment_id)
    assert after.status == "confirmed"
    assert [r.state for r in after.reminders] == ["sent"]
    assert isinstance(sent, ReminderSent)
    assert after.reminders[0].sns_message_id == sent.sns_message_id


def test_events_before_the_appointment_is_known_are_kept_until_it_is(
    session_factory: sessionmaker[Session],
) -> None:
    story = Story(starts_at=T0)
    scheduled, due, sent, _ = history(story)
    apply(session_factory, due, sent)
    with transaction(session_factory) as session:
        assert queries.list_appointments(session, patient_id=story.patient_id).items == []
    apply(session_factory, scheduled)
    assert summary(session_factory, story.appointment_id)["status"] == "reminded"


def test_duplicates_have_one_effect(session_factory: sessionmaker[Session]) -> None:
    story = Story(starts_at=T0)
    events = history(story)
    assert apply(session_factory, *events) == [True] * 4
    assert apply(session_factory, *events) == [False] * 4
    # the same reply and the same send, re-emitted under new event ids
    resent = events[2].model_copy(update={"event_id": UUID(int=1)})
    reconfirmed = events[3].model_copy(update={"event_id": UUID(int=2)})
    apply(session_factory, resent, reconfirmed)
    row = summary(session_factory, story.appointment_id)
    assert row["segments_sent"] == 2
    view = detail(session_factory, story.appointment_id)
    assert len(view.replies) == 1
    assert len(view.reminders) == 1
    with transaction(session_factory) as session:
        stored = session.execute(
            select(func.count()).where(appointment_events.c.appointment_id == story.appointment_id)
        ).scalar_one()
    assert stored == 6, "every distinct event is in the timeline once"


def test_latest_answer_by_the_time_the_patient_sent_it_wins(
    session_factory: sessionmaker[Session],
) -> None:
    story = Story(starts_at=T0)
    sent_at = T0 - timedelta(hours=24)
    no = story.declined(sent_at + timedelta(minutes=5))
    yes = story.confirmed(sent_at + timedelta(minutes=30))
    apply(session_factory, story.scheduled(T0 - timedelta(days=2)), yes, story.sent(sent_at), no)
    row = summary(session_factory, story.appointment_id)
    assert row["status"] == "confirmed"
    assert row["reply_seconds"] == 300, "time to the first answer"


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (["failed"], "reminder_failed"),
        (["skipped"], "reminder_failed"),
        (["failed_retryable", "sent"], "reminded"),
        (["sent", "failed_retryable"], "reminded"),
        (["due"], "scheduled"),
    ],
)
def test_reminder_outcomes_decide_the_status(
    session_factory: sessionmaker[Session], outcomes: list[str], status: str
) -> None:
    story = Story(starts_at=T0)
    at = T0 - timedelta(hours=24)
    make: dict[str, Callable[[], Event]] = {
        "failed": lambda: story.failed(at),
        "failed_retryable": lambda: story.failed(at, retryable=True),
        "skipped": lambda: story.skipped(at),
        "sent": lambda: story.sent(at + timedelta(minutes=1)),
        "due": story.due,
    }
    apply(
        session_factory,
        story.scheduled(T0 - timedelta(days=2)),
        story.due(),
        *(make[o]() for o in outcomes),
    )
    assert summary(session_factory, story.appointment_id)["status"] == status


def test_cancellation_and_attendance_outrank_answers(
    session_factory: sessionmaker[Session],
) -> None:
    cancelled, attended = Story(starts_at=T0), Story(starts_at=T0)
    for story in (cancelled, attended):
        apply(session_factory, *history(story))
    apply(session_factory, cancelled.cancelled(T0 - timedelta(hours=2)))
    apply(session_factory, attended.attendance(T0 + timedelta(hours=1), "no_show"))
    assert summary(session_factory, cancelled.appointment_id)["status"] == "cancelled"
    row = summary(session_factory, attended.appointment_id)
    assert (row["status"], row["confirmation"]) == ("no_show", "confirmed")


def test_consent_follows_the_latest_reply_whatever_the_arrival_order(
    session_factory: sessionmaker[Session],
) -> None:
    story = Story(starts_at=T0)
    apply(session_factory, story.registered(T0 - timedelta(days=10)))
    stop = story.opted_out(T0 - timedelta(days=2))
    start = story.opted_in(T0 - timedelta(days=1))
    apply(session_factory, start, stop)  # START sent later, projected first
    with transaction(session_factory) as session:
        assert queries.get_patient(session, story.patient_id).opted_out is False
    apply(session_factory, story.opted_out(T0))
    with transaction(session_factory) as session:
        assert queries.get_patient(session, story.patient_id).opted_out is True


def all_rows(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    with transaction(factory) as session:
        rows = session.execute(select(appointments).order_by(appointments.c.id)).all()
    return [{k: v for k, v in r._mapping.items() if k != "updated_at"} for r in rows]


def test_a_rebuild_from_shuffled_events_equals_the_original(
    session_factory: sessionmaker[Session], new_database: Callable[[], sessionmaker[Session]]
) -> None:
    events: list[Event] = []
    for i in range(12):
        story = Story(starts_at=T0 + timedelta(hours=i))
        events.append(story.registered(T0 - timedelta(days=9)))
        events.extend(history(story))
        if i % 3 == 0:
            events.append(story.cancelled(T0 - timedelta(hours=1)))
        if i % 4 == 1:
            events.append(story.attendance(T0 + timedelta(hours=i + 1)))
    apply(session_factory, *events)

    rebuilt = new_database()
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    apply(rebuilt, *shuffled)
    assert all_rows(rebuilt) == all_rows(session_factory)


def test_stats_per_clinic_day(session_factory: sessionmaker[Session]) -> None:
    day1 = datetime(2030, 3, 1, 14, tzinfo=UTC)  # 09:00 New York, 1 March
    late = datetime(2030, 3, 2, 3, tzinfo=UTC)  # 22:00 New York, still 1 March
    day2 = datetime(2030, 3, 2, 15, tzinfo=UTC)
    stories = {
        name: Story(starts_at=at)
        for name, at in [
            ("confirmed", day1),
            ("declined", late),
            ("silent", day1),
            ("failed", day1),
            ("cancelled", day2),
            ("attended", day2),
        ]
    }
    sent_at = day1 - timedelta(hours=24)
    for story in stories.values():
        apply(session_factory, story.scheduled(day1 - timedelta(days=5)))
    s = stories
    apply(
        session_factory,
        s["confirmed"].sent(sent_at, segments=2),
        s["confirmed"].confirmed(sent_at + timedelta(minutes=10)),
        s["declined"].sent(sent_at),
        s["declined"].declined(sent_at + timedelta(minutes=30)),
        s["silent"].sent(sent_at),
        s["failed"].failed(sent_at),
        s["cancelled"].cancelled(day1),
        s["attended"].sent(sent_at),
        s["attended"].confirmed(sent_at + timedelta(minutes=20)),
        s["attended"].attendance(day2 + timedelta(minutes=30)),
        s["silent"].opted_out(datetime(2030, 3, 2, 4, tzinfo=UTC)),  # 23:00 on 1 March
    )
    with transaction(session_factory) as session:
        result = queries.stats(session, first=date(2030, 3, 1), last=date(2030, 3, 2), zone=ZONE)
    first, second = result.days
    assert (first.day, second.day) == (date(2030, 3, 1), date(2030, 3, 2))
    assert (first.appointments, first.reminded, first.confirmed, first.declined) == (4, 3, 1, 1)
    assert (first.unanswered, first.send_failures, first.sms_segments_sent) == (1, 1, 4)
    assert first.confirmation_rate == round(1 / 3, 4)
    assert first.median_seconds_to_reply == 20 * 60  # 10 and 30 minutes
    assert first.opt_outs == 1
    assert (second.appointments, second.cancelled, second.attended, second.confirmed) == (
        2,
        1,
        1,
        1,
    )
    total = result.total
    assert (total.appointments, total.confirmed, total.reminded) == (6, 2, 4)
    assert total.median_seconds_to_reply == 20 * 60
    assert total.confirmation_rate == 0.5


def test_stats_refuse_a_backwards_range(session_factory: sessionmaker[Session]) -> None:
    from admin_api.domain import InvalidInput

    with transaction(session_factory) as session, pytest.raises(InvalidInput, match="before"):
        queries.stats(session, first=date(2030, 3, 2), last=date(2030, 3, 1), zone=ZONE)


def test_concurrent_events_of_one_appointment_lose_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    """Events of one appointment from different topics, projected at the same time."""
    stories = [Story(starts_at=T0) for _ in range(10)]
    events = [event for story in stories for event in history(story)]
    random.Random(5).shuffle(events)

    def project_one(event: Event) -> bool:
        for _ in range(5):  # a deadlock victim is retried, as the consumer would
            try:
                with transaction(session_factory) as session:
                    return handlers.project(session, event, ZONE)
            except OperationalError:
                continue
        raise AssertionError("still deadlocked after 5 attempts")

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(project_one, events))
    for story in stories:
        row = summary(session_factory, story.appointment_id)
        assert (row["status"], row["segments_sent"], row["reply_seconds"]) == (
            "confirmed",
            2,
            3600,
        )


def test_the_migration_matches_the_tables(session_factory: sessionmaker[Session]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from admin_api.adapters.tables import metadata

    # The shared outbox/inbox tables belong to the runtime (their MEDIUMTEXT variant reads
    # back as LONGTEXT on MariaDB): only this service's own tables are compared here.
    runtime_tables = {"outbox", "inbox", "outbox_relay_lock"}
    engine = session_factory.kw["bind"]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)

    def table_of(diff: Any) -> str | None:
        first = diff[0] if isinstance(diff, list) else diff
        for part in first:
            name = getattr(part, "name", None) if hasattr(part, "columns") else None
            if name:
                return str(name)
            if isinstance(part, str) and part in {t.name for t in metadata.tables.values()}:
                return part
        return None

    own = [d for d in diffs if table_of(d) not in runtime_tables]
    assert own == [], f"tables.py and the migrations differ: {own}"
