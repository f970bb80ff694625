"""Fixtures of the inbound service's tests: a migrated database of its own per test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

import inbound
from inbound.settings import Settings
from inbound.testing import SnsSigner
from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.migrations import upgrade
from reminder_testkit.apps import serve_app as serving
from reminder_testkit.database import DatabaseFactory

MIGRATIONS = Path(inbound.__file__).parent / "migrations"
#: Our long code in every test.
LONG_CODE = "+12025550178"


@pytest.fixture
def inbound_database_url(database_factory: DatabaseFactory) -> str:
    url = database_factory()
    upgrade(MIGRATIONS, url)
    return url


@pytest.fixture
def session_factory(inbound_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(inbound_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def app_settings(
    kafka_bootstrap_servers: str,
    kafka_idempotence: bool,
    topic_prefix: str,
    inbound_database_url: str,
    signer: SnsSigner,
) -> Settings:
    return Settings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        kafka_enable_idempotence=kafka_idempotence,
        kafka_topic_prefix=topic_prefix,
        kafka_create_topics=True,
        kafka_session_timeout_ms=6000,
        database_url=inbound_database_url,
        sns_allowed_topic_arns=f"{signer.topic_arn},arn:aws:sns:eu-west-1:123456789012:other",
        sms_origination_numbers=LONG_CODE,
        outbox_poll_interval_seconds=0.2,
        consumer_retry_backoff_seconds=0.05,
    )


Serve = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def serve() -> Serve:
    """`async with serve(app) as base_url:` runs the app with uvicorn on a free port."""
    return serving
