"""The service layer against the real MariaDB: what timers exist after each event, and what
ReminderDue the firing writes to the outbox."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import decode
from reminder_contracts.events import (
    AttendanceRecorded,
    Event,
    PatientUpdated,
    ReminderDue,
    reminder_id_for,
)
from reminder_runtime.db import transaction
from scheduler.adapters.tables import messaging, timers
from scheduler.adapters.timer_loop import TimerLoop
from scheduler.domain import ReminderPolicy
from scheduler.handlers import fire_due, handle_event
from scheduler.testing import cancelled, rescheduled, scheduled, snapshot

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = ReminderPolicy.parse("48h,2h", "21:00-08:00")

Apply = Callable[..., datetime | None]


@pytest.fixture
def apply(session_factory: sessionmaker[Session]) -> Apply:
    def run(event: Event, now: datetime = NOW, policy: ReminderPolicy = POLICY) -> datetime | None:
        with transaction(session_factory) as session:
            return handle_event(session, event, policy, now)

    return run


def fire(
    session_factory: sessionmaker[Session], now: datetime, limit: int = 100
) -> list[ReminderDue]:
    """Fire what is due at `now`; returns the ReminderDue written to the outbox by it."""
    with transaction(session_factory) as session:
        before = {p.id for p in messaging.outbox.pending(session, 100_000)}
        fire_due(session, now, limit)
        rows = messaging.outbox.pending(session, 100_000)
    events = [decode(p.payload) for p in rows if p.id not in before]
    assert all(isinstance(e, ReminderDue) for e in events)
    return [e for e in events if isinstance(e, ReminderDue)]


def timer_rows(
    session_factory: sessionmaker[Session], appointment_id: UUID
) -> set[tuple[str, int, int, str]]:
    """(reminder due time in UTC ISO, version, offset, status) of every timer."""
    with session_factory() as session:
        rows = session.execute(
            select(timers).where(timers.c.appointment_id == str(appointment_id))
        ).all()
    return {
        (
            r.due_at.replace(tzinfo=UTC).isoformat(),
            r.appointment_version,
            r.offset_minutes,
            r.status,
        )
        for r in rows
    }


def due_iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat()


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def test_scheduled_appointment_fires_each_reminder_once_with_what_the_sender_needs(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    event = scheduled(at(2026, 6, 10, 16, 0))  # 12:00 in New York
    assert apply(event) == at(2026, 6, 8, 16, 0)
    assert timer_rows(session_factory, event.appointment_id) == {
        ("2026-06-08T16:00:00+00:00", 1, 2880, "pending"),
        ("2026-06-10T14:00:00+00:00", 1, 120, "pending"),
    }

    assert fire(session_factory, at(2026, 6, 8, 15, 59)) == []
    (first,) = fire(session_factory, at(2026, 6, 8, 16, 0, 1))
    assert first.reminder_id == reminder_id_for(event.appointment_id, 1, 2880)
    assert first.appointment_id == event.appointment_id
    assert first.patient_id == event.patient_id
    assert first.appointment_version == 1
    assert first.offset_minutes == 2880
    assert first.due_at == at(2026, 6, 8, 16, 0)
    assert first.starts_at == event.starts_at
    assert first.location == event.location
    assert first.provider == event.provider
    assert first.patient == event.patient
    assert first.correlation_id == event.correlation_id
    assert first.causation_id == event.event_id
    assert fire(session_factory, at(2026, 6, 9, 0, 0)) == [], "fired once only"

    (second,) = fire(session_factory, at(2026, 6, 10, 15, 0))
    assert second.offset_minutes == 120
    assert {s for *_, s in timer_rows(session_factory, event.appointment_id)} == {"emitted"}


def test_a_redelivered_event_has_no_second_effect(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    event = scheduled(at(2026, 6, 10, 16, 0), offsets=(60,))
    apply(event)
    fire(session_factory, at(2026, 6, 10, 15, 30))
    assert apply(event, now=at(2026, 6, 10, 15, 31)) is None
    assert timer_rows(session_factory, event.appointment_id) == {
        ("2026-06-10T15:00:00+00:00", 1, 60, "emitted")
    }
    assert fire(session_factory, at(2026, 6, 10, 15, 45)) == []


def test_booked_inside_the_window_the_reminder_fires_at_once(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    event = scheduled(NOW + timedelta(hours=1))  # 09:00 in New York: allowed
    assert apply(event) == NOW
    (due,) = fire(session_factory, NOW + timedelta(seconds=1))
    assert due.offset_minutes == 120, "48 h and 2 h are both due now: one reminder, not two"


def test_an_appointment_in_the_past_gets_no_timer(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    event = scheduled(NOW - timedelta(minutes=5))
    assert apply(event) is None
    assert timer_rows(session_factory, event.appointment_id) == set()


def test_reschedule_replaces_pending_timers_and_a_sent_one_does_not_block_the_new_time(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    first = scheduled(at(2026, 6, 10, 16, 0))
    apply(first)
    (sent,) = fire(session_factory, at(2026, 6, 8, 16, 1))  # the 48 h one went out
    moved = rescheduled(first, at(2026, 6, 12, 16, 0), version=2)
    apply(moved, now=at(2026, 6, 8, 17, 0))
    assert timer_rows(session_factory, first.appointment_id) == {
        ("2026-06-08T16:00:00+00:00", 1, 2880, "emitted"),
        ("2026-06-10T14:00:00+00:00", 1, 120, "cancelled"),
        ("2026-06-10T16:00:00+00:00", 2, 2880, "pending"),
        ("2026-06-12T14:00:00+00:00", 2, 120, "pending"),
    }
    assert fire(session_factory, at(2026, 6, 10, 15, 0)) == [], "the old 2 h reminder is gone"
    (new,) = fire(session_factory, at(2026, 6, 10, 16, 0))
    assert new.appointment_version == 2
    assert new.starts_at == at(2026, 6, 12, 16, 0)
    assert new.reminder_id != sent.reminder_id
    assert new.causation_id == moved.event_id


def test_cancel_stops_every_pending_reminder(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    first = scheduled(at(2026, 6, 10, 16, 0))
    apply(first)
    apply(cancelled(first, version=2))
    assert {s for *_, s in timer_rows(session_factory, first.appointment_id)} == {"cancelled"}
    assert fire(session_factory, at(2026, 6, 11)) == []


def test_attendance_recorded_closes_the_appointment(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    first = scheduled(at(2026, 6, 10, 16, 0))
    apply(first)
    apply(
        AttendanceRecorded(
            appointment_id=first.appointment_id,
            patient_id=first.patient_id,
            version=2,
            outcome="attended",
        )
    )
    assert fire(session_factory, at(2026, 6, 11)) == []


def test_late_events_of_an_older_version_change_nothing(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    first = scheduled(at(2026, 6, 10, 16, 0))
    moved = rescheduled(first, at(2026, 6, 12, 16, 0), version=2)
    apply(moved)
    before = timer_rows(session_factory, first.appointment_id)
    assert apply(first) is None  # v1 arrives after v2
    assert apply(cancelled(first, version=2)) is None  # same version as stored: not newer
    assert timer_rows(session_factory, first.appointment_id) == before

    # A cancellation seen first is remembered: the late booking does not revive it.
    other = scheduled(at(2026, 6, 10, 16, 0))
    apply(cancelled(other, version=3))
    apply(other)
    apply(rescheduled(other, at(2026, 6, 11, 16, 0), version=2))
    assert timer_rows(session_factory, other.appointment_id) == set()


def test_the_reminder_carries_the_newest_patient_details(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    patient = snapshot()
    first = scheduled(at(2026, 6, 10, 16, 0), patient=patient, offsets=(60,))
    apply(first)

    def update(version: int, name: str, phone: str, language: str) -> PatientUpdated:
        return PatientUpdated(
            patient_id=patient.patient_id,
            version=version,
            name=name,
            phone=phone,
            language=language,
            timezone=patient.timezone,
        )

    apply(update(3, "Ada King", "+12025550178", "es"))
    apply(update(2, "Stale Name", "+12025550143", "en"))  # older, arriving late: ignored
    (due,) = fire(session_factory, at(2026, 6, 10, 15, 0))
    assert (due.patient.name, due.patient.phone, due.patient.language) == (
        "Ada King",
        "+12025550178",
        "es",
    )
    assert due.patient.patient_version == 3


def test_a_new_time_zone_reapplies_quiet_hours_to_pending_reminders(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    patient = snapshot(timezone="America/New_York")
    # 15:00 UTC = 11:00 New York; the 12 h reminder at 03:00 UTC is 23:00 in New York
    # (quiet: moved to 20:59 New York = 00:59 UTC) but 05:00 in Berlin (quiet: 20:59 Berlin).
    event = scheduled(at(2026, 6, 10, 15, 0), patient=patient, offsets=(12 * 60,))
    apply(event)
    assert timer_rows(session_factory, event.appointment_id) == {
        ("2026-06-10T00:59:00+00:00", 1, 720, "pending")
    }
    moved_to = PatientUpdated(
        patient_id=patient.patient_id,
        version=2,
        name=patient.name,
        phone=patient.phone,
        language=patient.language,
        timezone="Europe/Berlin",
    )
    assert apply(moved_to) == at(2026, 6, 9, 18, 59)
    assert timer_rows(session_factory, event.appointment_id) == {
        ("2026-06-09T18:59:00+00:00", 1, 720, "pending")
    }
    (due,) = fire(session_factory, at(2026, 6, 9, 19, 0))
    assert due.patient.timezone == "Europe/Berlin"


def test_concurrent_firing_transactions_never_emit_a_timer_twice(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    for _ in range(60):
        apply(scheduled(NOW + timedelta(hours=1), offsets=(120,)))  # due at once
    claimed: list[int] = []

    def worker() -> None:
        while True:
            with transaction(session_factory) as session:
                n = fire_due(session, NOW + timedelta(seconds=1), 7).claimed
            claimed.append(n)
            if not n:
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_factory() as session:
        written = [decode(p.payload) for p in messaging.outbox.pending(session, 1000)]
    reminder_ids = [e.reminder_id for e in written if isinstance(e, ReminderDue)]
    assert sum(claimed) == 60
    assert len(reminder_ids) == 60
    assert len(set(reminder_ids)) == 60


def test_unrelated_events_are_not_recorded(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    due = ReminderDue(
        appointment_id=uuid4(),
        patient_id=uuid4(),
        reminder_id=uuid4(),
        appointment_version=1,
        offset_minutes=60,
        due_at=NOW,
        starts_at=NOW,
        patient=snapshot(),
    )
    assert apply(due) is None
    with session_factory() as session:
        assert messaging.inbox.first_time(session, "scheduler", due.event_id), "not in the inbox"


def test_old_sent_and_cancelled_timers_are_purged_and_late_events_still_ignored(
    apply: Apply, session_factory: sessionmaker[Session]
) -> None:
    sent = scheduled(at(2026, 6, 10, 16, 0), offsets=(60,))
    dropped = scheduled(at(2026, 6, 10, 16, 0), offsets=(60,))
    waiting = scheduled(at(2026, 9, 10, 16, 0), offsets=(60,))
    for event in (sent, dropped, waiting):
        apply(event)
    apply(cancelled(dropped, version=2))
    fire(session_factory, at(2026, 6, 10, 15, 30))

    loop = TimerLoop(
        session_factory,
        batch_size=10,
        max_sleep_seconds=1,
        retention=timedelta(days=30),
        clock=lambda: at(2026, 8, 1),
    )
    assert loop.purge() == 2
    assert timer_rows(session_factory, sent.appointment_id) == set()
    assert timer_rows(session_factory, dropped.appointment_id) == set()
    assert timer_rows(session_factory, waiting.appointment_id) == {
        ("2026-09-10T15:00:00+00:00", 1, 60, "pending")
    }
    # The appointments are remembered: a late, older booking revives nothing.
    apply(scheduled(dropped.starts_at, appointment_id=dropped.appointment_id, offsets=(60,)))
    assert timer_rows(session_factory, dropped.appointment_id) == set()
