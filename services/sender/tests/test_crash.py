"""A sender process killed with SIGKILL in the middle of a batch, then started again: every
reminder ends with exactly one outcome on `deliveries`, and no patient gets one twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from reminder_contracts import topics
from reminder_contracts.events import ReminderFailed, ReminderSent
from reminder_testkit import SnsServer, free_port, wait_for
from reminder_testkit.topics import publish_events, read_events
from sender.testing import reminder_for, snapshot

pytestmark = pytest.mark.integration

LONG_CODE = "+12025550178"


@contextmanager
def sender_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sender"],
            env={**os.environ, **env, "HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, f"sender exited; see {log}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def test_a_killed_sender_loses_no_reminder_and_sends_none_twice(
    kafka_bootstrap_servers: str,
    kafka_idempotence: bool,
    topic_prefix: str,
    sender_database_url: str,
    sns: SnsServer,
    tmp_path: Path,
) -> None:
    env = {
        "ENVIRONMENT": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "KAFKA_ENABLE_IDEMPOTENCE": str(kafka_idempotence).lower(),
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_CREATE_TOPICS": "true",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "DATABASE_URL": sender_database_url,
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "SMS_ORIGINATION_NUMBER": LONG_CODE,
        "SMS_MAX_PER_SECOND": "4",
        "CLINIC_NAME": "Riverside Family Clinic",
        "CLINIC_PHONE": "+12025550100",
        # The restarted process closes abandoned attempts quickly.
        "SENDING_STALE_AFTER_SECONDS": "2",
        "SENDING_SWEEP_INTERVAL_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    start = datetime(2026, 12, 10, 13, 0, tzinfo=UTC)
    batch = [
        reminder_for(snapshot(phone="+12025550143"), start + timedelta(minutes=15 * i))
        for i in range(16)
    ]
    await publish_events(kafka_bootstrap_servers, f"{topic_prefix}{topics.REMINDERS}", *batch)

    log = tmp_path / "sender.log"
    with sender_process(env, log) as first:
        wait_for(lambda: len(sns.sent_sms()) >= 4, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    sent_before_restart = len(sns.sent_sms())
    assert sent_before_restart < len(batch)

    with sender_process(env, log):
        events = await read_events(
            kafka_bootstrap_servers,
            f"{topic_prefix}{topics.DELIVERIES}",
            expect=len(batch),
            timeout=90,
            settle=3,
        )

    # The outbox relay is at-least-once: an event published just before the kill may be
    # published again by the new process (same event_id); consumers dedupe by event_id.
    unique = list({e.event_id: e for e in events}.values())
    outcomes = Counter(
        e.reminder_id for e in unique if isinstance(e, ReminderSent | ReminderFailed)
    )
    assert set(outcomes) == {r.reminder_id for r in batch}, outcomes  # nothing lost
    assert set(outcomes.values()) == {1}, outcomes  # one outcome each
    unknown = [e for e in unique if isinstance(e, ReminderFailed)]
    assert all(e.error_code == "unknown_outcome" for e in unknown), unknown
    assert len(unknown) <= 1  # at most the one in flight when the process died
    texts = Counter(sms.message for sms in sns.sent_sms())
    assert max(texts.values()) == 1  # no reminder texted twice
    sent = [e for e in unique if isinstance(e, ReminderSent)]
    assert len(sent) <= len(texts) <= len(sent) + len(unknown)
