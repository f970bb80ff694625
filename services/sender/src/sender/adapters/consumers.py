"""Kafka in, in two lanes (two consumer groups), so that what the sender must *know* is
never queued behind what it must *send*:

- `sender` (REMINDERS): one ReminderDue after another, each waiting for its send slot
  (1 per second on a long code): a backlog here is normal and drains at the rate limit.
- `sender-state` (PATIENTS, APPOINTMENTS, REPLIES): patient and appointment changes and
  opt-outs apply at once, even while reminders queue; the few replies owed (HELP,
  acknowledgements) are sent from this lane too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from faststream.kafka import KafkaBroker
from sqlalchemy.orm import Session, sessionmaker

from reminder_contracts import Event, topics
from reminder_contracts.events import (
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    HelpRequested,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientUpdated,
    ReminderDue,
)
from reminder_runtime.db import transaction
from reminder_runtime.kafka import EventSubscriber, MessageMeta
from reminder_runtime.settings import ServiceSettings

from .. import handlers
from ..dispatcher import Dispatcher

SEND_TOPICS = (topics.REMINDERS,)
STATE_TOPICS = (topics.PATIENTS, topics.APPOINTMENTS, topics.REPLIES)

STATE_EVENTS = (
    PatientRegistered,
    PatientUpdated,
    AppointmentScheduled,
    AppointmentRescheduled,
    AppointmentCancelled,
    AttendanceRecorded,
    PatientOptedOut,
    PatientOptedIn,
    HelpRequested,
    AppointmentConfirmed,
    AppointmentDeclined,
)


def state_group(settings: ServiceSettings) -> str:
    return f"{settings.service_name}-state"


class SenderConsumers:
    def __init__(
        self,
        broker: KafkaBroker,
        settings: ServiceSettings,
        session_factory: sessionmaker[Session],
        dispatcher: Dispatcher,
    ) -> None:
        self.session_factory = session_factory
        self.dispatcher = dispatcher
        self.send_lane = EventSubscriber(
            broker,
            settings,
            topics=SEND_TOPICS,
            group_id=settings.service_name,
            handler=self.on_reminder,
            accept=lambda event: isinstance(event, ReminderDue),
        )
        self.state_lane = EventSubscriber(
            broker,
            settings,
            topics=STATE_TOPICS,
            group_id=state_group(settings),
            handler=self.on_state,
            accept=lambda event: isinstance(event, STATE_EVENTS),
        )

    @property
    def group_ids(self) -> list[str]:
        return [self.send_lane.group_id, self.state_lane.group_id]

    async def on_reminder(self, event: Event, meta: MessageMeta) -> None:
        assert isinstance(event, ReminderDue)
        await self.dispatcher.reminder_due(event)

    async def on_state(self, event: Event, meta: MessageMeta) -> None:
        if isinstance(event, HelpRequested | AppointmentConfirmed | AppointmentDeclined):
            await self.dispatcher.reply(event)
            return
        await asyncio.to_thread(self._apply, event)

    def _apply(self, event: Event) -> None:
        apply: Callable[[Session], None]
        if isinstance(event, PatientRegistered | PatientUpdated):
            apply = lambda s: handlers.on_patient(s, event)  # noqa: E731
        elif isinstance(event, PatientOptedOut | PatientOptedIn):
            apply = lambda s: handlers.on_opt(s, event)  # noqa: E731
        else:
            assert isinstance(
                event,
                AppointmentScheduled
                | AppointmentRescheduled
                | AppointmentCancelled
                | AttendanceRecorded,
            )
            apply = lambda s: handlers.on_appointment(s, event)  # noqa: E731
        with transaction(self.session_factory) as session:
            apply(session)
