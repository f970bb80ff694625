"""The projection's Kafka side: every topic of the system into `handlers.project`."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from faststream.kafka import KafkaBroker
from prometheus_client import Counter
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import Event, topics
from reminder_runtime.db import transaction
from reminder_runtime.kafka import EventSubscriber, MessageMeta
from reminder_runtime.settings import ServiceSettings

from .. import handlers

PROJECTED = Counter(
    "admin_api_events_projected_total", "Events applied to the projection", ["event_type"]
)
DUPLICATES = Counter(
    "admin_api_events_duplicate_total", "Events seen again and dropped by the inbox"
)


class Projector:
    """Applies one event per transaction; duplicates are dropped by the inbox."""

    def __init__(self, session_factory: sessionmaker[Session], zone: ZoneInfo) -> None:
        self.session_factory = session_factory
        self.zone = zone

    def apply(self, event: Event) -> bool:
        with transaction(self.session_factory) as session:
            applied = handlers.project(session, event, self.zone)
        if applied:
            PROJECTED.labels(event.event_type).inc()
        else:
            DUPLICATES.inc()
        return applied

    async def on_event(self, event: Event, _meta: MessageMeta) -> None:
        await asyncio.to_thread(self.apply, event)


def subscribe_projection(
    broker: KafkaBroker, settings: ServiceSettings, projector: Projector
) -> EventSubscriber:
    return EventSubscriber(
        broker,
        settings,
        topics=list(topics.ALL_TOPICS),
        group_id=handlers.CONSUMER,
        handler=projector.on_event,
    )
