"""Fixtures: the admin API running for real (uvicorn on a free port) on MariaDB and Tansu."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from admin_api.app import create_app, migrate
from admin_api.settings import Settings
from reminder_runtime.db import make_engine, make_session_factory
from reminder_testkit import free_port
from reminder_testkit.apps import serve_app

ADMIN_TOKEN = "admin-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "admin_api_tokens": f"admin:{ADMIN_TOKEN},viewer:{VIEWER_TOKEN}",
        "kafka_enable_idempotence": False,
        "kafka_create_topics": True,
        "kafka_session_timeout_ms": 6000,
        "kafka_topic_partitions": 2,
        "database_migrate_on_start": True,
        "consumer_max_retries": 1,
        "consumer_retry_backoff_seconds": 0.01,
        "outbox_poll_interval_seconds": 0.2,
        "default_phone_region": "US",
        "clinic_timezone": "America/New_York",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def new_database(
    database_factory: Callable[[], str],
) -> Iterator[Callable[[], sessionmaker[Session]]]:
    """`new_database()` -> sessions on another fresh, migrated admin-api database."""
    engines = []

    def create() -> sessionmaker[Session]:
        url = database_factory()
        migrate(make_settings(database_url=url))
        engines.append(make_engine(url))
        return make_session_factory(engines[-1])

    yield create
    for engine in engines:
        engine.dispose()


@pytest.fixture
def session_factory(new_database: Callable[[], sessionmaker[Session]]) -> sessionmaker[Session]:
    """A fresh, migrated admin-api database."""
    return new_database()


@dataclass
class Running:
    settings: Settings
    admin: httpx.AsyncClient
    viewer: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    session_factory: sessionmaker[Session]

    def topic(self, name: str) -> str:
        return self.settings.topic(name)


@pytest.fixture(scope="module")
async def running(
    kafka_bootstrap_servers: str, database_factory: Callable[[], str]
) -> AsyncIterator[Running]:
    """One app per test module (a consumer group join costs seconds on Tansu)."""
    settings = make_settings(
        database_url=database_factory(),
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        http_port=free_port(),
    )
    app = create_app(settings)
    engine = make_engine(settings.database_url)

    def client(base: str, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=base, headers=headers, timeout=20)

    async with (
        serve_app(app, port=settings.http_port) as base,
        client(base, ADMIN_TOKEN) as admin,
        client(base, VIEWER_TOKEN) as viewer,
        client(base, None) as anon,
    ):
        yield Running(settings, admin, viewer, anon, make_session_factory(engine))
    engine.dispose()
