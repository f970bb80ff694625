"""A fresh database per test session (and more on demand), on a MySQL-compatible server.

Resolution: `TEST_DATABASE_URL`; else MariaDB/MySQL on 127.0.0.1:3306 (root, no password);
else a MySQL container when Docker answers; else SQLite files, loudly, and never under CI.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import URL, make_url

from .helpers import docker_available, port_answers

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 3306
MYSQL_IMAGE = "mariadb:11.4"

SQLITE_WARNING = (
    "No MySQL-compatible server answers (127.0.0.1:3306, Docker): the tests use SQLite, "
    "which is NOT what production runs. Set TEST_DATABASE_URL or start MariaDB."
)


class NoDatabaseServerError(RuntimeError):
    """Under CI, a MySQL-compatible server is required and none answers."""


@dataclass(frozen=True)
class DatabasePlan:
    source: str  # "env", "local", "docker" or "sqlite"
    detail: str


def plan_database(host: str = LOCAL_HOST, port: int = LOCAL_PORT) -> DatabasePlan:
    env = os.environ.get("TEST_DATABASE_URL")
    if env:
        return DatabasePlan("env", f"TEST_DATABASE_URL={make_url(env).render_as_string()}")
    if port_answers(host, port):
        return DatabasePlan("local", f"mysql on {host}:{port} (root)")
    if docker_available():
        return DatabasePlan("docker", f"container {MYSQL_IMAGE}")
    if os.environ.get("CI"):
        raise NoDatabaseServerError(
            "CI is set but no MySQL-compatible server answers on "
            f"{host}:{port} and no Docker daemon answers; refusing to fall back "
            "to SQLite. Start MariaDB or set TEST_DATABASE_URL."
        )
    return DatabasePlan("sqlite", "SQLite files (NOT MySQL-compatible)")


def new_database_name() -> str:
    return f"test_{secrets.token_hex(5)}"


@dataclass
class MysqlServer:
    """A server on which databases are created and dropped by name.

    `base_url` is any SQLAlchemy URL on that server; its database part is replaced.
    """

    base_url: URL
    created: list[str] = field(default_factory=list)

    def _connect(self) -> pymysql.connections.Connection[Any]:
        url = self.base_url
        return pymysql.connect(
            host=url.host or LOCAL_HOST,
            port=url.port or LOCAL_PORT,
            user=url.username or "root",
            password=url.password or "",
            charset="utf8mb4",
            autocommit=True,
        )

    def url_for(self, name: str) -> str:
        url = self.base_url.set(drivername="mysql+pymysql", database=name)
        query = dict(url.query)
        query.setdefault("charset", "utf8mb4")
        return url.set(query=query).render_as_string(hide_password=False)

    def create(self) -> str:
        name = new_database_name()
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        self.created.append(name)
        return self.url_for(name)

    def exists(self, url: str) -> bool:
        name = make_url(url).database
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))
            return cur.fetchone() is not None

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if not name or not name.startswith("test_"):
            raise ValueError(f"refusing to drop {name!r}: not a test database")
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        with contextlib.suppress(ValueError):
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.url_for(name))


@dataclass
class SqliteServer:
    """The last resort: one SQLite file per "database" in a temporary directory."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="testdb-")))
    created: list[str] = field(default_factory=list)

    def create(self) -> str:
        name = new_database_name()
        self.created.append(name)
        return f"sqlite:///{self.directory / name}.sqlite3"

    def exists(self, url: str) -> bool:
        return Path(make_url(url).database or "").exists()

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        path.unlink(missing_ok=True)
        with contextlib.suppress(ValueError):
            self.created.remove(path.stem)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(f"sqlite:///{self.directory / name}.sqlite3")


DatabaseServer = MysqlServer | SqliteServer


class DatabaseFactory:
    """`factory()` -> the URL of a fresh, empty database; all dropped at session end."""

    def __init__(self, server: DatabaseServer) -> None:
        self.server = server

    def __call__(self) -> str:
        return self.server.create()

    def drop(self, url: str) -> None:
        self.server.drop(url)

    def exists(self, url: str) -> bool:
        return self.server.exists(url)


class MysqlContainerHandle:
    """A MariaDB container from testcontainers, for machines with Docker."""

    def __init__(self) -> None:
        from testcontainers.mysql import MySqlContainer

        self._container: Any = MySqlContainer(MYSQL_IMAGE, username="root", password="test")  # noqa: S106 - throwaway container

    def start(self) -> URL:
        self._container.start()
        return make_url(str(self._container.get_connection_url()))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._container.stop()
