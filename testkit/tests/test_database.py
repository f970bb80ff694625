"""The database fixtures give fresh databases on the real server, and drop them."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from reminder_testkit.database import DatabaseFactory

pytestmark = pytest.mark.integration


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def test_database_url_is_a_fresh_mysql_compatible_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if _is_sqlite(database_url):
                tables = conn.execute(text("SELECT name FROM sqlite_master")).all()
            else:
                server = conn.execute(text("SELECT CONCAT(VERSION(), ' ', @@version_comment)"))
                assert any(name in server.scalar_one().lower() for name in ("mariadb", "mysql"))
                tables = conn.execute(text("SHOW TABLES")).all()
        assert tables == []
    finally:
        engine.dispose()


def test_factory_databases_are_separate_and_dropped(database_factory: DatabaseFactory) -> None:
    first, second = database_factory(), database_factory()
    assert first != second
    engine = create_engine(first)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE marker (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()
    other = create_engine(second)
    try:
        with other.connect() as conn:
            listing = "SELECT name FROM sqlite_master" if _is_sqlite(second) else "SHOW TABLES"
            assert conn.execute(text(listing)).all() == []
    finally:
        other.dispose()

    assert database_factory.exists(first)
    database_factory.drop(first)
    assert not database_factory.exists(first)
    assert database_factory.exists(second)


def test_drop_refuses_a_database_that_is_not_a_test_one(database_factory: DatabaseFactory) -> None:
    url = database_factory()
    if _is_sqlite(url):
        pytest.fail("this machine runs MariaDB; SQLite here means the server was not found")
    with pytest.raises(ValueError, match="not a test database"):
        database_factory.drop(url.replace("/test_", "/mysql_"))
