"""The sender's composition root: settings -> engine, broker, SNS, rate limiter,
dispatcher, consumers, relay and the sweeper of abandoned attempts."""

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

from .adapters.consumers import SenderConsumers
from .adapters.rate_limiter import DatabaseTokenBucket
from .adapters.sns import SmsOptions, SnsSmsGateway, make_sns_client
from .adapters.tables import messaging
from .dispatcher import AbandonedAttemptSweeper, Dispatcher, DispatcherDrain, Pacer
from .domain.messages import Clinic
from .handlers import SenderConfig
from .settings import Settings
from .templates import load_templates

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(settings: Settings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


@dataclass
class Sender:
    """Every running part of one sender process, for the app, tests and benchmarks."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    broker: KafkaBroker
    relay: OutboxRelay
    gateway: SnsSmsGateway
    dispatcher: Dispatcher
    sweeper: AbandonedAttemptSweeper
    consumers: SenderConsumers


def build_sender(settings: Settings) -> Sender:
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    broker = make_broker(settings)
    relay = OutboxRelay(session_factory, messaging, broker, settings)
    gateway = SnsSmsGateway(
        make_sns_client(settings.sns_timeout_seconds, settings.sns_threads),
        SmsOptions(settings.sms_origination_number, settings.sms_max_price_usd),
        threads=settings.sns_threads,
    )
    dispatcher = Dispatcher(
        session_factory,
        SenderConfig(
            templates=load_templates(),
            clinic=Clinic(settings.clinic_name, settings.clinic_phone),
            send_acknowledgements=settings.send_acknowledgements,
        ),
        gateway,
        DatabaseTokenBucket(
            session_factory, rate=settings.sms_max_per_second, burst=settings.sms_burst
        ),
        max_attempts=settings.sns_max_attempts,
        backoff_base=settings.sns_backoff_base_seconds,
        backoff_max=settings.sns_backoff_max_seconds,
        stale_after=timedelta(seconds=settings.sending_stale_after_seconds),
        relay=relay,
        pacer=Pacer(settings.sms_max_per_second),
    )
    sweeper = AbandonedAttemptSweeper(dispatcher, settings.sending_sweep_interval_seconds)
    consumers = SenderConsumers(broker, settings, session_factory, dispatcher)
    return Sender(
        settings, engine, session_factory, broker, relay, gateway, dispatcher, sweeper, consumers
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    sender = build_sender(settings)
    app = build_app(
        settings=settings,
        broker=sender.broker,
        engine=sender.engine,
        # Stopped in reverse: sends under way finish first, then the sweeper stops, then
        # the relay publishes what is left; the consumers stop after all workers.
        workers=[sender.relay, sender.sweeper, DispatcherDrain(sender.dispatcher)],
        migrate=lambda: migrate(settings),
        consumer_groups=sender.consumers.group_ids,
        title="sender",
    )
    app.state.sender = sender
    return app
