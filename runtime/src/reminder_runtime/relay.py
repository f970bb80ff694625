"""The outbox relay: publishes outbox rows in id order, then marks them published.

Several replicas may run; a lock row taken with `FOR UPDATE SKIP LOCKED` lets one of them
publish at a time (SQLite has a single writer and needs none), so order holds. Publishing
happens before marking: a crash in between re-publishes the batch (at-least-once, which
consumers absorb with their inbox), never loses it. While the broker is down the relay
backs off and retries; rows wait in the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from .messaging import MessagingTables, PendingEvent
from .settings import ServiceSettings

log = logging.getLogger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox events published to Kafka", ["event_type"])
PUBLISH_ERRORS = Counter("outbox_publish_errors_total", "Failed outbox publish attempts")
PENDING = Gauge("outbox_pending", "Outbox events not yet published (last seen)")

_LOCK_NAME = "relay"
_MAX_BACKOFF_SECONDS = 30.0
_RETENTION = timedelta(days=7)


class OutboxRelay:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        messaging: MessagingTables,
        broker: KafkaBroker,
        settings: ServiceSettings,
    ) -> None:
        self.session_factory = session_factory
        self.messaging = messaging
        self.broker = broker
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in flight, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=15)
            self._task = None

    def wake(self) -> None:
        """Publish now rather than at the next poll (call after committing new rows)."""
        self._wake.set()

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        last_cleanup = datetime.now(UTC)
        while not self._stopping:
            try:
                published = await self.publish_batch()
                self._failures = 0
            except Exception as exc:
                PUBLISH_ERRORS.inc()
                self._failures += 1
                delay = min(_MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(self._failures, 8))
                log.warning(
                    "outbox publish failed, retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": round(delay, 1)},
                )
                await self._sleep(delay * random.uniform(0.8, 1.2))
                continue
            if published >= self.settings.outbox_batch_size:
                continue  # more waiting: no sleep
            if datetime.now(UTC) - last_cleanup > timedelta(hours=1):
                await asyncio.to_thread(self._delete_old)
                last_cleanup = datetime.now(UTC)
            await self._sleep(self.settings.outbox_poll_interval_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    # -------------------------------------------------------------- one batch

    async def publish_batch(self) -> int:
        """Publish up to OUTBOX_BATCH_SIZE pending events; returns how many."""
        session = self.session_factory()
        try:
            batch = await asyncio.to_thread(self._claim, session)
            if not batch:
                await asyncio.to_thread(session.rollback)
                return 0
            await self._publish(batch)
            await asyncio.to_thread(self._mark, session, [e.id for e in batch])
        except BaseException:
            await asyncio.to_thread(session.rollback)
            raise
        finally:
            await asyncio.to_thread(session.close)
        for event in batch:
            PUBLISHED.labels(event.event_type).inc()
        return len(batch)

    def _claim(self, session: Session) -> list[PendingEvent]:
        session.begin()
        if not self._take_lock(session):
            return []  # another replica is publishing
        batch = self.messaging.outbox.pending(session, self.settings.outbox_batch_size)
        PENDING.set(len(batch))
        return batch

    def _take_lock(self, session: Session) -> bool:
        if session.get_bind().dialect.name == "sqlite":
            return True
        table = self.messaging.relay_lock.table
        query = (
            select(table.c.name).where(table.c.name == _LOCK_NAME).with_for_update(skip_locked=True)
        )
        if session.execute(query).first() is not None:
            return True
        if session.execute(select(table.c.name).where(table.c.name == _LOCK_NAME)).first():
            return False  # another replica holds it
        # First run: create the row (another replica may race us: IGNORE), then take it.
        with self.session_factory() as other, other.begin():
            other.execute(
                insert(table).values(name=_LOCK_NAME).prefix_with("IGNORE", dialect="mysql")
            )
        return session.execute(query).first() is not None

    async def _publish(self, batch: list[PendingEvent]) -> None:
        # Enqueue in id order (aiokafka keeps order per partition), then await every ack.
        futures = [
            await self.broker.publish(
                event.payload,
                topic=self.settings.topic(event.topic),
                key=event.key.encode(),
                headers={"event_type": event.event_type, "content-type": "application/json"},
                no_confirm=True,
            )
            for event in batch
        ]
        await asyncio.gather(*futures)

    def _mark(self, session: Session, ids: list[int]) -> None:
        self.messaging.outbox.mark_published(session, ids)
        session.commit()

    def _delete_old(self) -> None:
        table = self.messaging.outbox.table
        cutoff = (datetime.now(UTC) - _RETENTION).replace(tzinfo=None)
        with self.session_factory() as session, session.begin():
            session.execute(
                delete(table).where(
                    table.c.published_at.is_not(None), table.c.published_at < cutoff
                )
            )
