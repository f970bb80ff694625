"""The scheduler's composition root: settings -> engine, broker, consumer, timers, relay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.kafka import make_broker
from reminder_runtime.migrations import upgrade
from reminder_runtime.relay import OutboxRelay
from reminder_runtime.service import build_app

from .adapters.consumer import SchedulerConsumer
from .adapters.tables import messaging
from .adapters.timer_loop import TimerLoop
from .settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(settings: Settings) -> None:
    """Alembic `upgrade head` (`python -m scheduler migrate`, or at start-up in dev)."""
    make_engine(settings.database_url).dispose()  # creates a SQLite file's folder
    upgrade(MIGRATIONS, settings.database_url)


@dataclass
class Scheduler:
    """Every running part of one scheduler process, for the app and for tests."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    broker: KafkaBroker
    relay: OutboxRelay
    timers: TimerLoop
    consumer: SchedulerConsumer


def build_scheduler(settings: Settings) -> Scheduler:
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    broker = make_broker(settings)
    relay = OutboxRelay(session_factory, messaging, broker, settings)
    timers = TimerLoop(
        session_factory,
        batch_size=settings.scheduler_batch_size,
        max_sleep_seconds=settings.scheduler_max_sleep_seconds,
        on_fired=relay.wake,
        retention=timedelta(days=settings.scheduler_retention_days),
    )
    consumer = SchedulerConsumer(
        broker, settings, session_factory, settings.policy, on_timer=timers.notify
    )
    return Scheduler(settings, engine, session_factory, broker, relay, timers, consumer)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    scheduler = build_scheduler(settings)
    app = build_app(
        settings=settings,
        broker=scheduler.broker,
        engine=scheduler.engine,
        # Stopped in reverse: the timer loop first, then the relay publishes what it wrote.
        workers=[scheduler.relay, scheduler.timers],
        migrate=lambda: migrate(settings),
        consumer_groups=[settings.service_name],
        title="scheduler",
    )
    app.state.scheduler = scheduler
    return app
