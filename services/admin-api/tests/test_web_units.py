"""The web page's pure parts: weekly figures, form checks, badges, session signing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from itsdangerous import URLSafeTimedSerializer

from admin_api import views
from admin_api.domain import STATUSES
from admin_api.settings import Settings
from admin_api.web import analytics, display, forms
from admin_api.web.pages import _safe_next
from admin_api.web.queries import WeekAttendance, weeks_between
from admin_api.web.session import SessionSigner

pytestmark = pytest.mark.unit

ZONE = ZoneInfo("America/New_York")


def day_figures(day: date, **counts: int) -> views.DayFigures:
    values: dict[str, Any] = dict.fromkeys(
        (
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
        ),
        0,
    )
    values.update(counts)
    return views.DayFigures(day=day, confirmation_rate=None, median_seconds_to_reply=None, **values)


def test_days_roll_up_into_monday_weeks_with_every_week_of_the_range() -> None:
    assert weeks_between(date(2026, 3, 4), date(2026, 3, 16)) == [
        date(2026, 3, 2),
        date(2026, 3, 9),
        date(2026, 3, 16),
    ]
    attendance = [
        WeekAttendance(
            date(2026, 3, 2),
            attended_confirmed=3,
            no_show_confirmed=1,
            no_show_unconfirmed=2,
            median_seconds_to_reply=600,
        ),
        WeekAttendance(date(2026, 3, 9)),
    ]
    days = [
        day_figures(date(2026, 3, 2), reminded=4, confirmed=3, send_failures=1),
        day_figures(date(2026, 3, 8), reminded=2, confirmed=0, opt_outs=1),  # a Sunday
        day_figures(date(2026, 3, 9), reminded=0),
    ]
    weeks = analytics.by_week(days, attendance)
    assert [w.week for w in weeks] == [date(2026, 3, 2), date(2026, 3, 9)]
    first, second = weeks
    assert (first.reminded, first.confirmed, first.confirmation_rate) == (6, 3, 0.5)
    assert (first.send_failures, first.opt_outs) == (1, 1)
    assert (first.no_show_rate_confirmed, first.no_show_rate_unconfirmed) == (0.25, 1.0)
    assert first.median_seconds_to_reply == 600
    assert (second.confirmation_rate, second.no_show_rate_confirmed) == (None, None)

    overall = analytics.overall(weeks, date(2026, 3, 2), None)
    assert (overall.reminded, overall.no_show_confirmed, overall.attended_confirmed) == (6, 1, 3)
    chart = analytics.chart_data(weeks)
    assert chart["confirmation_rate"] == [50.0, None]
    assert chart["reply_minutes"] == [10.0, None]


def test_the_default_range_is_twelve_whole_weeks_up_to_this_sunday() -> None:
    first, last = analytics.default_range(date(2026, 11, 27))  # a Friday
    assert (first, last) == (date(2026, 9, 7), date(2026, 11, 29))
    assert first.weekday() == 0
    assert last.weekday() == 6


def test_patient_form_errors_are_the_domains_messages_per_field() -> None:
    errors = forms.patient_errors(
        {"name": " ", "phone": "+1555", "language": "de", "timezone": "UTC"}, "US"
    )
    assert set(errors) == {"name", "phone", "language"}
    assert errors["name"] == "name must not be empty"
    assert errors["phone"].startswith("phone: ")
    assert "en, es, fr" in errors["language"]
    good = {"name": "Ada", "phone": "202-555-0143", "language": "en", "timezone": "UTC"}
    assert forms.patient_errors(good, "US") == {}


def test_booking_form_reads_the_clinics_local_time_and_checks_each_field() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    errors, starts = forms.appointment_errors(
        {"starts_at": "2026-12-01T09:30", "reminder_offsets": "24h, 2h"}, ZONE, now
    )
    assert errors == {}
    assert starts == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    errors, _ = forms.appointment_errors(
        {"starts_at": "tomorrow", "reminder_offsets": "x"}, ZONE, now
    )
    assert errors["starts_at"].startswith("starts_at: enter a date and a time")
    assert "not a duration" in errors["reminder_offsets"]
    assert forms.offsets(" ") is None
    assert forms.field_of("location must be at most 200 characters", ("location",)) == "location"
    assert forms.field_of("something else", ("location",)) == "form"


def test_every_status_badge_says_its_meaning_in_words_and_a_symbol() -> None:
    labels = set()
    for status in STATUSES:
        badge = display.badge(status)
        assert badge.label
        assert badge.symbol
        labels.add(badge.label)
    assert len(labels) == len(STATUSES), "no two statuses read alike"
    assert display.badge("something new").label == "something new"


def test_times_read_in_the_clinics_zone() -> None:
    instant = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert display.when(instant, ZONE) == "Mon 30 Nov 2026, 09:30 EST"
    assert display.clock(instant, ZONE) == "09:30"
    assert display.day_heading(date(2026, 11, 28), date(2026, 11, 27)).startswith("Tomorrow")
    assert display.duration(1800) == "30 min"
    assert display.percent(None) == "n/a"


def settings(tokens: str) -> Settings:
    return Settings(environment="test", admin_api_tokens=tokens)


def test_session_cookies_are_signed_bound_to_their_csrf_and_to_the_tokens() -> None:
    signer = SessionSigner(settings("admin:a0123456789abcdef,viewer:v0123456789abcdef"))
    cookie, session = signer.issue("viewer")
    read = signer.read(cookie)
    assert read == session
    assert read is not None
    assert not read.can_write
    assert signer.read(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    # a cookie signed with another key (e.g. the role changed by hand) is no session
    forged = URLSafeTimedSerializer(b"guess", salt="admin-api.web.session").dumps(
        {"role": "admin", "sid": session.session_id}
    )
    assert signer.read(forged) is None
    other_cookie, other = signer.issue("viewer")
    assert other.csrf_token != session.csrf_token
    # changing the tokens signs everybody out
    rotated = SessionSigner(settings("admin:b0123456789abcdef,viewer:v0123456789abcdef"))
    assert rotated.read(cookie) is None
    assert signer.secure, "Secure cookies outside ENVIRONMENT=dev"
    assert other_cookie != cookie


def test_after_sign_in_only_a_path_of_this_site_is_followed() -> None:
    assert _safe_next("/patients?q=Ada") == "/patients?q=Ada"
    for outside in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "", None):
        assert _safe_next(outside) == "/"
