"""Fixtures of the scheduler's tests: a migrated database of its own per test, settings
pointing at the session's Kafka with a topic prefix of this test, and event builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import make_engine, make_session_factory
from reminder_testkit.database import DatabaseFactory
from scheduler.app import migrate
from scheduler.settings import Settings


@pytest.fixture
def scheduler_database_url(database_factory: DatabaseFactory) -> str:
    url = database_factory()
    migrate(Settings(environment="test", database_url=url))
    return url


@pytest.fixture
def session_factory(scheduler_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(scheduler_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def make_settings(
    kafka_bootstrap_servers: str,
    kafka_idempotence: bool,
    topic_prefix: str,
    scheduler_database_url: str,
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            # A consumer group of its own per test: tests share one broker, and a group
            # still rebalancing after an earlier test must not hold this one up.
            "service_name": f"scheduler-{topic_prefix.strip('.')}",
            "kafka_bootstrap_servers": kafka_bootstrap_servers,
            "kafka_enable_idempotence": kafka_idempotence,
            "kafka_topic_prefix": topic_prefix,
            "kafka_create_topics": True,
            "kafka_session_timeout_ms": 6000,
            "database_url": scheduler_database_url,
            "consumer_max_retries": 1,
            "consumer_retry_backoff_seconds": 0.01,
            "outbox_poll_interval_seconds": 0.2,
            "quiet_hours": "off",
            "scheduler_max_sleep_seconds": 2.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make
