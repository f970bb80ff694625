"""Fixtures of the inbound service's tests: a migrated database of its own per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import inbound
from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.migrations import upgrade
from reminder_testkit.database import DatabaseFactory

MIGRATIONS = Path(inbound.__file__).parent / "migrations"


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
