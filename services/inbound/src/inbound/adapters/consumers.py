"""Kafka consumers: the events inbound keeps projections of, to match replies."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from sqlalchemy.orm import Session, sessionmaker

from inbound.handlers import apply_event
from inbound.settings import Settings
from reminder_contracts import Event, topics
from reminder_runtime.kafka import EventSubscriber, MessageMeta

GROUP_ID = "inbound"


def subscribe_projections(
    broker: KafkaBroker, settings: Settings, session_factory: sessionmaker[Session]
) -> EventSubscriber:
    async def on_event(event: Event, meta: MessageMeta) -> None:
        await asyncio.to_thread(apply_event, session_factory, event)

    return EventSubscriber(
        broker,
        settings,
        topics=[topics.PATIENTS, topics.APPOINTMENTS, topics.DELIVERIES],
        group_id=GROUP_ID,
        handler=on_event,
    )
