"""The background worker that fires due timers.

It sleeps until the next due time or until this process inserts an earlier timer
(`notify`), capped at SCHEDULER_MAX_SLEEP_SECONDS so that timers written by another
replica are noticed too: not a fixed short poll. Firing writes ReminderDue to the outbox
and wakes the outbox relay, which publishes them to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import transaction

from ..handlers import Fired, fire_due, next_due, purge_finished

log = logging.getLogger(__name__)

EMITTED = Counter("scheduler_reminders_due_total", "ReminderDue events written to the outbox")
DROPPED = Counter("scheduler_timers_dropped_total", "Due timers dropped as inconsistent")
LATENESS = Histogram(
    "scheduler_fire_lateness_seconds",
    "Time from a timer's due time to its ReminderDue being written",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

#: Floor between looks when another replica holds the due rows: no busy loop.
_MIN_SLEEP_SECONDS = 0.05
_MAX_BACKOFF_SECONDS = 30.0
_PURGE_EVERY = timedelta(hours=1)
_PURGE_BATCH = 2_000
_PURGE_BATCHES = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TimerLoop:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        batch_size: int,
        max_sleep_seconds: float,
        on_fired: Callable[[], None] | None = None,
        retention: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.batch_size = batch_size
        self.max_sleep_seconds = max_sleep_seconds
        self.on_fired = on_fired
        self.retention = retention
        self.clock = clock
        self._last_purge: datetime | None = None
        self._wake = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="scheduler-timers")

    async def stop(self) -> None:
        """Finish the batch in flight (its transaction commits), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=15)
            self._task = None

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self, due_at: datetime | None) -> None:
        """A timer due at `due_at` was committed: wake up if that is before the planned wake.

        Thread-safe only from the event loop's thread (handlers call it after
        `asyncio.to_thread` returns).
        """
        if due_at is None:
            return
        if self._sleeping_until is None or due_at < self._sleeping_until:
            self._wake.set()

    # -------------------------------------------------------------- the loop

    async def run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                fired, upcoming = await asyncio.to_thread(self.fire_once)
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(_MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(failures, 8))
                log.warning(
                    "firing timers failed, retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": round(delay, 1)},
                )
                await self._sleep_for(delay * random.uniform(0.8, 1.2))
                continue
            if fired.emitted and self.on_fired is not None:
                self.on_fired()  # here, on the loop's thread: asyncio.Event is not thread-safe
            if fired.claimed >= self.batch_size:
                continue  # more are due: no sleep
            now = self.clock()
            if self._last_purge is None or now - self._last_purge > _PURGE_EVERY:
                self._last_purge = now
                if await asyncio.to_thread(self.purge) >= _PURGE_BATCHES * _PURGE_BATCH:
                    # More left: go on in a minute rather than an hour, firing in between.
                    self._last_purge = now - _PURGE_EVERY + timedelta(minutes=1)
            seconds = self.max_sleep_seconds
            if upcoming is not None:
                seconds = min(seconds, max(_MIN_SLEEP_SECONDS, (upcoming - now).total_seconds()))
            await self._sleep_for(seconds)

    def fire_once(self) -> tuple[Fired, datetime | None]:
        """One batch in one transaction; returns it and the next pending due time."""
        now = self.clock()
        with transaction(self.session_factory) as session:
            fired = fire_due(session, now, self.batch_size)
        EMITTED.inc(len(fired.emitted))
        DROPPED.inc(fired.dropped)
        for due_at in fired.emitted:
            LATENESS.observe(max(0.0, (now - due_at).total_seconds()))
        if fired.claimed >= self.batch_size:
            return fired, None
        with self.session_factory() as session:
            return fired, next_due(session)

    def purge(self) -> int:
        """Delete finished timers older than the retention, in batches (short locks)."""
        purged = 0
        before = self.clock() - self.retention
        try:
            for _ in range(_PURGE_BATCHES):  # bounded: due timers must not wait long
                with transaction(self.session_factory) as session:
                    n = purge_finished(session, before, _PURGE_BATCH)
                purged += n
                if n < _PURGE_BATCH:
                    break
            return purged
        except Exception as exc:  # housekeeping: firing must go on
            log.warning("purging old timers failed", extra={"error": type(exc).__name__})
            return purged

    async def _sleep_for(self, seconds: float) -> None:
        self._sleeping_until = self.clock() + _seconds(seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()
        self._sleeping_until = None


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
