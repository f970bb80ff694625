"""The pure core: input rules, the appointment fold, paging cursors, settings."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from admin_api import domain
from admin_api.domain import InvalidInput
from admin_api.samples import Story
from admin_api.settings import Settings, parse_tokens

pytestmark = pytest.mark.unit

T0 = datetime(2030, 3, 1, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("+1 202 555 0178", "US", "+12025550178"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
    ],
)
def test_phone_numbers_are_stored_in_e164(raw: str, region: str, e164: str) -> None:
    assert domain.clean_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["+15551234567", "hello", "12", ""])
def test_impossible_phone_numbers_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidInput, match="phone") as info:
        domain.clean_phone(raw, "US")
    assert raw == "" or raw not in info.value.detail, "the number is not echoed back"


def test_language_timezone_and_name_rules() -> None:
    assert domain.clean_language(" ES ") == "es"
    with pytest.raises(InvalidInput, match="en, es, fr"):
        domain.clean_language("de")
    assert domain.clean_timezone("Europe/Madrid") == "Europe/Madrid"
    with pytest.raises(InvalidInput, match="IANA"):
        domain.clean_timezone("Mars/Olympus_Mons")
    assert domain.clean_name("  Ada   Lovelace ") == "Ada Lovelace"
    with pytest.raises(InvalidInput, match="empty"):
        domain.clean_name("   ")
    with pytest.raises(InvalidInput, match="200"):
        domain.clean_name("x" * 201)


def test_reminder_offsets_read_durations() -> None:
    assert domain.parse_offsets(["2h", "24h", 30, "1d"]) == (1440, 120, 30)
    assert domain.parse_offsets(None) is None
    for bad in (["soon"], [0], ["31d"], [], [True], ["1m", "2m", "3m", "4m", "5m", "6m"]):
        with pytest.raises(InvalidInput):
            domain.parse_offsets(bad)


def test_starts_at_must_be_aware_and_in_the_future() -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="offset"):
        domain.require_future(datetime(2030, 1, 1, 9, 0), now)  # noqa: DTZ001 - the point
    with pytest.raises(InvalidInput, match="future"):
        domain.require_future(now - timedelta(minutes=1), now)
    later = now + timedelta(days=1)
    assert domain.require_future(later, now) == later


def test_cursor_round_trip_and_tampering() -> None:
    appointment_id = uuid4()
    cursor = domain.encode_cursor(T0, appointment_id)
    assert domain.decode_cursor(cursor) == (T0, appointment_id)
    for bad in ("", "abc", cursor[:-3], "eyJ4IjoxfQ"):
        with pytest.raises(InvalidInput, match="cursor"):
            domain.decode_cursor(bad)


def test_fold_is_independent_of_order_and_duplicates() -> None:
    story = Story(starts_at=T0)
    sent_at = T0 - timedelta(hours=24)
    events = [
        story.scheduled(T0 - timedelta(days=3)),
        story.due(),
        story.failed(sent_at, retryable=True),
        story.sent(sent_at + timedelta(minutes=2)),
        story.declined(sent_at + timedelta(hours=1)),
        story.confirmed(sent_at + timedelta(hours=2)),
    ]
    expected = domain.fold_appointment(events)
    assert expected is not None
    assert expected.status == "confirmed"
    rng = random.Random(3)
    for _ in range(30):
        shuffled = events + rng.sample(events, 3)
        rng.shuffle(shuffled)
        view = domain.fold_appointment(shuffled)
        assert view is not None
        assert (view.status, view.reply_seconds, view.segments_sent) == (
            "confirmed",
            58 * 60,
            1,
        )
        assert view.reminders == expected.reminders


def test_a_yes_to_the_old_time_does_not_confirm_the_new_one() -> None:
    from reminder_contracts import AppointmentRescheduled

    story = Story(starts_at=T0)
    sent_at = T0 - timedelta(hours=24)
    moved = AppointmentRescheduled(
        appointment_id=story.appointment_id,
        patient_id=story.patient_id,
        version=2,
        previous_starts_at=T0,
        starts_at=T0 + timedelta(days=7),
        patient=story.snapshot,
        occurred_at=sent_at + timedelta(hours=3),
    )
    events = [
        story.scheduled(T0 - timedelta(days=3)),
        story.sent(sent_at),
        story.confirmed(sent_at + timedelta(hours=1)),
        moved,
    ]
    view = domain.fold_appointment(events)
    assert view is not None
    assert (view.status, view.confirmation, view.starts_at) == (
        "scheduled",
        None,
        T0 + timedelta(days=7),
    )
    assert domain.fold_appointment(events[1:3]) is None, "no time known yet"


def test_stats_days_follow_the_clinic_zone() -> None:
    zone = ZoneInfo("America/New_York")
    assert domain.local_day(datetime(2030, 3, 2, 3, tzinfo=UTC), zone) == date(2030, 3, 1)
    start, end = domain.day_bounds(date(2030, 3, 10), date(2030, 3, 10), zone)  # DST starts
    assert (end - start) == timedelta(hours=23)
    day = domain.DayStats(day=None, reminded=4, confirmed=3)
    assert day.confirmation_rate == 0.75
    assert domain.DayStats(day=None).confirmation_rate is None
    both = domain.total([day, domain.DayStats(day=None, reminded=4, confirmed=1)])
    assert (both.reminded, both.confirmed, both.confirmation_rate) == (8, 4, 0.5)


@pytest.mark.parametrize(
    ("values", "median"), [([], None), ([7], 7), ([1, 5, 9], 5), ([1, 5, 7, 9], 6)]
)
def test_middle_picks_the_values_whose_mean_is_the_median(
    values: list[int], median: float | None
) -> None:
    offset, count = domain.middle(len(values))
    middle = sorted(values)[offset : offset + count]
    assert (sum(middle) / count if count else None) == median


def test_tokens_parse_into_roles() -> None:
    tokens = parse_tokens("admin:aaaaaaaaaaaaaaaa1, viewer:bbbbbbbbbbbbbbbb2")
    assert tokens == {"aaaaaaaaaaaaaaaa1": "admin", "bbbbbbbbbbbbbbbb2": "viewer"}
    for bad in ("admin", "root:aaaaaaaaaaaaaaaa1", "admin:short", "admin:", "x" * 20):
        with pytest.raises(ValueError, match="ADMIN_API_TOKENS"):
            parse_tokens(bad)


def test_settings_refuse_to_start_without_tokens_outside_dev(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADMIN_API_TOKENS", raising=False)
    with pytest.raises(ValueError, match="ADMIN_API_TOKENS is empty"):
        Settings(environment="prod", _env_file=None)
    dev = Settings(environment="dev", _env_file=None)
    ((token, role),) = dev.tokens.items()
    assert role == "admin"
    assert len(token) > 20
    with pytest.raises(ValueError, match="DEFAULT_PHONE_REGION"):
        Settings(environment="dev", default_phone_region="XX")
    with pytest.raises(ValueError, match="CLINIC_TIMEZONE"):
        Settings(environment="dev", clinic_timezone="Nowhere/Town")
