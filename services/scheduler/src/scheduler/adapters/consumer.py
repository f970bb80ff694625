"""Kafka in: appointment and patient events, each applied in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import Event, topics
from reminder_runtime.db import transaction
from reminder_runtime.kafka import EventSubscriber, MessageMeta

from ..domain import ReminderPolicy
from ..handlers import HANDLED, handle_event
from ..settings import Settings

#: What the scheduler listens to: appointments for its timers, patients to keep the
#: snapshot (and the time zone of quiet hours) of pending reminders current.
TOPICS = (topics.APPOINTMENTS, topics.PATIENTS)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SchedulerConsumer:
    def __init__(
        self,
        broker: KafkaBroker,
        settings: Settings,
        session_factory: sessionmaker[Session],
        policy: ReminderPolicy,
        on_timer: Callable[[datetime | None], None],
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.policy = policy
        self.on_timer = on_timer
        self.clock = clock
        self.subscriber = EventSubscriber(
            broker,
            settings,
            topics=TOPICS,
            group_id=settings.service_name,
            handler=self.on_event,
            accept=lambda event: isinstance(event, HANDLED),
        )

    async def on_event(self, event: Event, meta: MessageMeta) -> None:
        earliest = await asyncio.to_thread(self.apply, event)
        self.on_timer(earliest)  # back on the loop: wake the timer loop if sooner

    def apply(self, event: Event) -> datetime | None:
        with transaction(self.session_factory) as session:
            return handle_event(session, event, self.policy, self.clock())
