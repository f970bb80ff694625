"""Fixtures of the sender's tests: a migrated database of its own per test, the moto SNS
server (emptied per test), a dispatcher wired to both, and settings for the real app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import make_engine, make_session_factory
from reminder_testkit import SnsServer
from reminder_testkit.database import DatabaseFactory
from sender.adapters.rate_limiter import DatabaseTokenBucket
from sender.adapters.sns import SmsOptions, SnsSmsGateway, make_sns_client
from sender.app import migrate
from sender.dispatcher import Dispatcher
from sender.domain.messages import Clinic
from sender.handlers import SenderConfig
from sender.settings import Settings
from sender.templates import load_templates

LONG_CODE = "+12025550178"
CLINIC = Clinic("Riverside Family Clinic", "+12025550100")


@pytest.fixture
def sender_database_url(database_factory: DatabaseFactory) -> str:
    url = database_factory()
    migrate(
        Settings(
            environment="test",
            database_url=url,
            sms_origination_number=LONG_CODE,
            clinic_name="x",
            clinic_phone="y",
        )
    )
    return url


@pytest.fixture
def session_factory(sender_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sender_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sns(sns_server: SnsServer) -> SnsServer:
    sns_server.reset()
    return sns_server


@pytest.fixture
def gateway(sns: SnsServer) -> Iterator[SnsSmsGateway]:
    gw = SnsSmsGateway(make_sns_client(5, 2), SmsOptions(LONG_CODE, None), threads=2)
    yield gw
    gw.close()


@pytest.fixture
def make_dispatcher(
    session_factory: sessionmaker[Session], gateway: SnsSmsGateway
) -> Callable[..., Dispatcher]:
    def make(**overrides: Any) -> Dispatcher:
        values: dict[str, Any] = {
            "max_attempts": 4,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "stale_after": timedelta(minutes=5),
        }
        values.update(overrides)
        config = values.pop("config", SenderConfig(load_templates(), CLINIC))
        return Dispatcher(
            session_factory,
            config,
            values.pop("gateway", gateway),
            values.pop("slots", DatabaseTokenBucket(session_factory, rate=1000, burst=1)),
            **values,
        )

    return make


@pytest.fixture
def make_settings(
    kafka_bootstrap_servers: str,
    kafka_idempotence: bool,
    topic_prefix: str,
    sender_database_url: str,
    sns: SnsServer,
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "kafka_bootstrap_servers": kafka_bootstrap_servers,
            "kafka_enable_idempotence": kafka_idempotence,
            "kafka_topic_prefix": topic_prefix,
            "kafka_create_topics": True,
            "kafka_session_timeout_ms": 6000,
            "database_url": sender_database_url,
            "consumer_max_retries": 1,
            "consumer_retry_backoff_seconds": 0.01,
            "outbox_poll_interval_seconds": 0.2,
            "sms_origination_number": LONG_CODE,
            "sms_max_per_second": 50,
            "clinic_name": CLINIC.name,
            "clinic_phone": CLINIC.phone,
            "sns_backoff_base_seconds": 0.01,
        }
        values.update(overrides)
        return Settings(**values)

    return make
