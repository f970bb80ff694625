"""A scheduler process killed with SIGKILL while firing loses no reminder: after a restart
the reminder reaches Kafka (a duplicate is allowed, a loss is not)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import topics
from reminder_contracts.events import ReminderDue, reminder_id_for
from reminder_runtime.db import transaction
from reminder_testkit import free_port
from reminder_testkit.topics import read_topic
from scheduler.adapters.tables import messaging, timers
from scheduler.handlers import handle_event
from scheduler.settings import Settings
from scheduler.testing import scheduled

pytestmark = pytest.mark.integration

CRASHING = Path(__file__).with_name("crashing_scheduler.py")


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "SERVICE_NAME": settings.service_name,
        "LOG_LEVEL": "WARNING",
        "HTTP_PORT": str(free_port()),
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_ENABLE_IDEMPOTENCE": str(settings.kafka_enable_idempotence).lower(),
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "KAFKA_CREATE_TOPICS": "true",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "QUIET_HOURS": "off",
    }


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def book_one(session_factory: sessionmaker[Session], settings: Settings) -> str:
    """One appointment whose reminder is due at once; returns its reminder id."""
    event = scheduled(datetime.now(UTC) + timedelta(minutes=30), offsets=(60,))
    with transaction(session_factory) as session:
        handle_event(session, event, settings.policy, datetime.now(UTC))
    return str(reminder_id_for(event.appointment_id, 1, 60))


def state(session_factory: sessionmaker[Session]) -> tuple[str, int]:
    """(the timer's status, outbox rows not yet published)."""
    with session_factory() as session:
        status = session.execute(select(timers.c.status)).scalar_one()
        outbox = messaging.outbox.table
        unpublished = session.execute(
            select(func.count()).where(outbox.c.published_at.is_(None))
        ).scalar_one()
    return status, int(unpublished)


async def reminders_of(settings: Settings, expect: int, settle: float = 0) -> list[str]:
    records = await read_topic(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.REMINDERS),
        expect=expect,
        timeout=60,
        settle=settle,
    )
    return [str(e.reminder_id) for r in records if isinstance(e := r.event(), ReminderDue)]


async def test_killed_between_claim_and_mark_the_reminder_fires_after_restart(
    make_settings: Callable[..., Settings],
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    settings = make_settings()
    env = environment(settings)
    reminder_id = book_one(session_factory, settings)

    with process([sys.executable, str(CRASHING), "before-mark"], env, tmp_path / "a.log") as p:
        code = await asyncio.to_thread(p.wait, 60)
    assert code == -signal.SIGKILL, (tmp_path / "a.log").read_text()
    assert state(session_factory) == ("pending", 0), "the transaction died with the process"

    with process([sys.executable, "-m", "scheduler"], env, tmp_path / "b.log"):
        assert await reminders_of(settings, expect=1, settle=1) == [reminder_id]
    assert state(session_factory) == ("emitted", 0)


async def test_killed_between_publish_and_mark_the_reminder_is_sent_again_not_lost(
    make_settings: Callable[..., Settings],
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    settings = make_settings()
    env = environment(settings)
    reminder_id = book_one(session_factory, settings)

    with process([sys.executable, str(CRASHING), "after-publish"], env, tmp_path / "a.log") as p:
        code = await asyncio.to_thread(p.wait, 60)
    assert code == -signal.SIGKILL, (tmp_path / "a.log").read_text()
    assert state(session_factory) == ("emitted", 1), "published, but not marked"
    assert await reminders_of(settings, expect=1) == [reminder_id]

    with process([sys.executable, "-m", "scheduler"], env, tmp_path / "b.log"):
        # At-least-once: the same reminder (same reminder_id) again, for the sender to drop.
        assert await reminders_of(settings, expect=2, settle=1) == [reminder_id, reminder_id]
        await asyncio.sleep(0.5)
    assert state(session_factory) == ("emitted", 0)
