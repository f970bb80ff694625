"""Settings from the environment, and the `python -m scheduler migrate` job."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect

from reminder_runtime.db import make_engine, make_session_factory, transaction
from scheduler.domain import QuietHours
from scheduler.handlers import fire_due, handle_event
from scheduler.settings import Settings
from scheduler.testing import scheduled


@pytest.mark.unit
def test_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDER_OFFSETS", "48h,90m")
    monkeypatch.setenv("QUIET_HOURS", "22:00-07:30")
    monkeypatch.setenv("SCHEDULER_BATCH_SIZE", "50")
    settings = Settings(environment="test")
    assert settings.policy.offsets_minutes == (2880, 90)
    assert settings.policy.quiet_hours == QuietHours.parse("22:00-07:30")
    assert settings.scheduler_batch_size == 50
    assert settings.service_name == "scheduler"
    assert settings.http_port == 8002


@pytest.mark.unit
def test_defaults_are_one_day_before_and_quiet_at_night() -> None:
    settings = Settings(environment="test")
    assert settings.policy.offsets_minutes == (1440,)
    assert str(settings.policy.quiet_hours) == "21:00-08:00"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("REMINDER_OFFSETS", "tomorrow", "not a duration"),
        ("QUIET_HOURS", "21-8", "not a time of day"),
    ],
)
def test_an_unreadable_policy_stops_start_up_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=reason):
        Settings(environment="test")


@pytest.mark.integration
def test_migrate_job_creates_the_embedded_sqlite_database_which_then_fires(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/data/scheduler.db"
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "migrate"],
        env={"DATABASE_URL": url, "ENVIRONMENT": "test", "PATH": ""},
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    engine = make_engine(url)
    assert {"timers", "appointments", "patients", "outbox", "inbox"} <= set(
        inspect(engine).get_table_names()
    )
    session_factory = make_session_factory(engine)
    now = datetime.now(UTC)
    settings = Settings(environment="test", database_url=url, quiet_hours="off")
    with transaction(session_factory) as session:
        handle_event(session, scheduled(now + timedelta(hours=1)), settings.policy, now)
    with transaction(session_factory) as session:
        assert len(fire_due(session, now + timedelta(seconds=1), 10).emitted) == 1
    with transaction(session_factory) as session:
        assert fire_due(session, now + timedelta(seconds=2), 10).claimed == 0
    engine.dispose()
