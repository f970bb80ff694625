"""The reminder policy, as a clinic would check it on a calendar."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from reminder_contracts.events import reminder_id_for
from scheduler.domain import (
    Plan,
    PolicyError,
    QuietHours,
    ReminderPolicy,
    Skip,
    effective_offsets,
    is_newer,
    parse_offsets,
    plan_reminders,
)

pytestmark = pytest.mark.unit

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
QUIET = QuietHours(time(21), time(8))
APPOINTMENT = UUID("0f7b6a3e-1d2c-4b5a-9e8f-7a6b5c4d3e2f")


def local(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=zone)


def plan(
    starts_at: datetime,
    now: datetime,
    offsets: tuple[int, ...] = (24 * 60,),
    zone: str = "America/New_York",
    quiet: QuietHours | None = QUIET,
    version: int = 1,
) -> Plan:
    return plan_reminders(
        appointment_id=APPOINTMENT,
        appointment_version=version,
        starts_at=starts_at,
        timezone=zone,
        offsets_minutes=offsets,
        quiet_hours=quiet,
        now=now,
    )


def only_due(p: Plan) -> datetime:
    assert len(p.due) == 1, p
    return p.due[0].due_at


# --------------------------------------------------------------------------- settings


def test_offsets_read_hours_minutes_and_days_largest_first() -> None:
    assert parse_offsets("24h") == (1440,)
    assert parse_offsets("2h, 48h") == (2880, 120)
    assert parse_offsets("90m") == (90,)
    assert parse_offsets("1d,30") == (1440, 30)
    assert parse_offsets("2h,120m") == (120,)


@pytest.mark.parametrize("text", ["", "h", "24x", "-2h", "0h", "31d", "24h,,2h"])
def test_unreadable_offsets_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(PolicyError, match="offset"):
        parse_offsets(text)


def test_quiet_hours_read_a_range_or_off() -> None:
    assert QuietHours.parse("21:00-08:00") == QUIET
    assert str(QuietHours.parse(" 9:30 - 17:00 ")) == "09:30-17:00"
    assert QuietHours.parse("off") is None
    assert QuietHours.parse("") is None


@pytest.mark.parametrize("text", ["21:00", "25:00-08:00", "21:00-08:60", "08:00-08:00", "x-y"])
def test_unreadable_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(PolicyError, match=r"quiet hours|time of day"):
        QuietHours.parse(text)


def test_quiet_hours_wrap_midnight_and_are_half_open() -> None:
    assert QUIET.contains(time(21, 0))
    assert QUIET.contains(time(2, 0))
    assert QUIET.contains(time(7, 59))
    assert not QUIET.contains(time(8, 0))
    assert not QUIET.contains(time(20, 59))
    lunch = QuietHours(time(12), time(14))
    assert lunch.contains(time(13))
    assert not lunch.contains(time(14))
    assert not lunch.contains(time(2))


def test_an_appointment_override_replaces_the_policy_offsets() -> None:
    policy = ReminderPolicy.parse("48h,2h", "21:00-08:00")
    assert effective_offsets(None, policy) == (2880, 120)
    assert effective_offsets((30,), policy) == (30,)
    assert effective_offsets((), policy) == ()


# --------------------------------------------------------------------------- offsets


def test_a_reminder_is_due_its_offset_before_the_appointment() -> None:
    starts = local(NEW_YORK, 2026, 6, 10, 14, 0)
    p = plan(starts, now=local(NEW_YORK, 2026, 6, 1, 9, 0), offsets=(2880, 120))
    assert [(r.offset_minutes, r.due_at) for r in p.due] == [
        (2880, local(NEW_YORK, 2026, 6, 8, 14, 0)),
        (120, local(NEW_YORK, 2026, 6, 10, 12, 0)),
    ]
    assert all(r.due_at.tzinfo is UTC for r in p.due)
    assert p.skipped == ()


def test_reminder_ids_depend_on_appointment_version_and_offset_only() -> None:
    starts = local(NEW_YORK, 2026, 6, 10, 14, 0)
    first = plan(starts, now=local(NEW_YORK, 2026, 6, 1, 9, 0))
    again = plan(starts, now=local(NEW_YORK, 2026, 6, 2, 9, 0))
    moved = plan(starts + timedelta(hours=1), now=local(NEW_YORK, 2026, 6, 1, 9, 0), version=2)
    assert first.due[0].reminder_id == again.due[0].reminder_id
    assert first.due[0].reminder_id == reminder_id_for(APPOINTMENT, 1, 1440)
    assert moved.due[0].reminder_id == reminder_id_for(APPOINTMENT, 2, 1440)
    assert moved.due[0].reminder_id != first.due[0].reminder_id


def test_booked_inside_the_window_the_reminder_is_due_at_once() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0, 30)
    p = plan(now + timedelta(hours=3), now=now)
    assert only_due(p) == now


def test_two_reminders_due_at_once_reach_the_patient_as_one() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    p = plan(now + timedelta(hours=1), now=now, offsets=(2880, 1440, 120))
    assert [(r.offset_minutes, r.due_at) for r in p.due] == [(120, now)]
    assert {(s.offset_minutes, s.reason) for s in p.skipped} == {
        (2880, Skip.SAME_TIME_AS_ANOTHER),
        (1440, Skip.SAME_TIME_AS_ANOTHER),
    }


def test_an_appointment_whose_time_has_passed_gets_no_reminder() -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    p = plan(now - timedelta(minutes=1), now=now, offsets=(1440, 60))
    assert p.due == ()
    assert {s.reason for s in p.skipped} == {Skip.APPOINTMENT_PASSED}


def test_is_newer_ignores_late_and_replayed_versions() -> None:
    assert is_newer(1, None)
    assert is_newer(3, 2)
    assert not is_newer(2, 2)
    assert not is_newer(1, 3)


# --------------------------------------------------------------------------- quiet hours


def test_a_reminder_inside_quiet_hours_moves_to_the_last_minute_before_them() -> None:
    starts = local(NEW_YORK, 2026, 6, 10, 9, 0)
    p = plan(starts, now=local(NEW_YORK, 2026, 6, 1, 9, 0), offsets=(120,))
    assert only_due(p) == local(NEW_YORK, 2026, 6, 9, 20, 59)


def test_when_before_is_past_it_moves_to_the_first_minute_after_quiet_hours() -> None:
    starts = local(NEW_YORK, 2026, 6, 10, 9, 0)
    p = plan(starts, now=local(NEW_YORK, 2026, 6, 9, 22, 0), offsets=(120,))
    assert only_due(p) == local(NEW_YORK, 2026, 6, 10, 8, 0)


def test_booked_during_quiet_hours_the_reminder_waits_for_the_morning() -> None:
    now = local(NEW_YORK, 2026, 6, 9, 23, 30)
    p = plan(local(NEW_YORK, 2026, 6, 10, 15, 0), now=now)
    assert only_due(p) == local(NEW_YORK, 2026, 6, 10, 8, 0)


def test_in_the_last_allowed_minute_a_reminder_goes_at_once() -> None:
    now = local(NEW_YORK, 2026, 6, 9, 20, 59, 30)
    p = plan(local(NEW_YORK, 2026, 6, 10, 0, 0), now=now, offsets=(120,))
    assert only_due(p) == now


def test_a_reminder_that_cannot_leave_quiet_hours_before_the_appointment_is_skipped() -> None:
    p = plan(
        local(NEW_YORK, 2026, 6, 10, 8, 0),
        now=local(NEW_YORK, 2026, 6, 9, 22, 0),
        offsets=(120,),
    )
    assert p.due == ()
    assert p.skipped[0].reason is Skip.QUIET_HOURS


def test_quiet_hours_follow_the_patient_time_zone() -> None:
    starts = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)  # 13:00 in New York, 19:00 in Berlin
    now = datetime(2026, 6, 1, tzinfo=UTC)
    offsets = (15 * 60,)  # nominal 02:00 UTC: 22:00 in New York, 04:00 in Berlin
    assert only_due(plan(starts, now, offsets, zone="America/New_York")) == local(
        NEW_YORK, 2026, 6, 9, 20, 59
    )
    assert only_due(plan(starts, now, offsets, zone="Europe/Berlin")) == local(
        BERLIN, 2026, 6, 9, 20, 59
    )
    assert only_due(plan(starts, now, offsets, zone="Europe/Berlin", quiet=None)) == datetime(
        2026, 6, 10, 2, 0, tzinfo=UTC
    )


# --------------------------------------------------------------------------- DST


def test_new_york_spring_forward_moves_across_a_23_hour_night() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT. 07:00 EDT is quiet; the last allowed minute
    # before is 20:59 EST the evening before, which is 01:59 UTC (not 00:59).
    starts = local(NEW_YORK, 2026, 3, 8, 9, 0)
    p = plan(starts, now=local(NEW_YORK, 2026, 3, 1, 9, 0), offsets=(120,))
    assert only_due(p) == datetime(2026, 3, 8, 1, 59, tzinfo=UTC)
    assert only_due(p) == local(NEW_YORK, 2026, 3, 7, 20, 59)


def test_new_york_fall_back_moves_across_a_25_hour_night() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: that day has 25 hours.
    starts = local(NEW_YORK, 2026, 11, 1, 9, 0)  # 14:00 UTC
    p = plan(starts, now=local(NEW_YORK, 2026, 10, 25, 9, 0), offsets=(120, 25 * 60))
    assert [(r.offset_minutes, r.due_at) for r in p.due] == [
        (25 * 60, local(NEW_YORK, 2026, 10, 31, 9, 0)),  # 25 h earlier is the same wall time
        (120, datetime(2026, 11, 1, 0, 59, tzinfo=UTC)),  # 07:00 EST is quiet: 20:59 EDT
    ]


def test_new_york_fall_back_keeps_reminders_at_wall_clock_bounds() -> None:
    starts = local(NEW_YORK, 2026, 11, 1, 8, 30)  # EST, 13:30 UTC
    # Booked at 22:00 EDT: the 24 h reminder is past and quiet until 08:00 EST.
    p = plan(starts, now=local(NEW_YORK, 2026, 10, 31, 22, 0))
    assert only_due(p) == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_berlin_spring_forward() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST.
    starts = local(BERLIN, 2026, 3, 29, 8, 30)  # 06:30 UTC
    early = plan(starts, local(BERLIN, 2026, 3, 20, 9, 0), (60,), zone="Europe/Berlin")
    assert only_due(early) == datetime(2026, 3, 28, 19, 59, tzinfo=UTC)  # 20:59 CET
    late = plan(starts, local(BERLIN, 2026, 3, 28, 22, 0), (60,), zone="Europe/Berlin")
    assert only_due(late) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_berlin_fall_back() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: the quiet night lasts 12 hours.
    now = local(BERLIN, 2026, 10, 24, 23, 0)  # 21:00 UTC
    p = plan(local(BERLIN, 2026, 10, 25, 8, 10), now=now, zone="Europe/Berlin")
    assert only_due(p) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET
    at_eight = plan(local(BERLIN, 2026, 10, 25, 8, 0), now=now, zone="Europe/Berlin")
    assert at_eight.due == ()
    assert at_eight.skipped[0].reason is Skip.QUIET_HOURS


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin"])
@pytest.mark.parametrize("month", [3, 10, 11])
def test_across_dst_weekends_no_reminder_is_quiet_late_or_past(zone: str, month: int) -> None:
    tz = ZoneInfo(zone)
    quiet = QuietHours(time(22, 30), time(2, 30))  # a window whose edges fall in DST gaps
    for q in (QUIET, quiet):
        for quarter in range(0, 4 * 24 * 10):
            starts = datetime(2026, month, 20, tzinfo=UTC) + timedelta(minutes=15 * quarter)
            now = starts - timedelta(minutes=(quarter * 37) % (3 * 24 * 60))
            p = plan(starts, now, offsets=(2880, 1440, 120, 15), zone=zone, quiet=q)
            for r in p.due:
                assert now <= r.due_at < starts
                assert not q.is_quiet(r.due_at, tz)
            assert len(p.due) + len(p.skipped) == 4


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(datetime(2026, 6, 10, 9, 0), now=datetime.now(UTC))  # noqa: DTZ001
