"""Fixtures for the runtime's own tests: a service-like schema on a fresh database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.messaging import MessagingTables
from reminder_runtime.settings import ServiceSettings


class Schema:
    """What a service would declare: its own table plus the messaging tables."""

    def __init__(self) -> None:
        self.metadata = MetaData()
        self.messaging = MessagingTables(self.metadata)
        # a handler's visible effect: one row per handled event
        self.effects = Table(
            "effects",
            self.metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False),
        )


@pytest.fixture
def schema() -> Schema:
    return Schema()


@pytest.fixture
def session_factory(
    schema: Schema, database_factory: Callable[[], str]
) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_factory())
    schema.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(
    kafka_bootstrap_servers: str, kafka_idempotence: bool, topic_prefix: str
) -> ServiceSettings:
    return ServiceSettings(
        environment="test",
        service_name="runtime-test",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        kafka_enable_idempotence=kafka_idempotence,
        kafka_topic_prefix=topic_prefix,
        kafka_session_timeout_ms=6000,
        consumer_max_retries=2,
        consumer_retry_backoff_seconds=0.01,
        outbox_poll_interval_seconds=0.2,
        outbox_batch_size=50,
    )
