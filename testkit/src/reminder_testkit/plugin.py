"""The pytest plugin (entry point `reminder_testkit.plugin`): fixtures for Kafka, the
database and SNS, resolved once per session, with the choice shown in the report header."""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import make_url

from .database import (
    SQLITE_WARNING,
    DatabaseFactory,
    DatabasePlan,
    DatabaseServer,
    MysqlContainerHandle,
    MysqlServer,
    NoDatabaseServerError,
    SqliteServer,
    plan_database,
)
from .kafka import KafkaContainerHandle, KafkaPlan, TansuBroker, plan_kafka
from .sns import SnsServer

log = logging.getLogger("reminder_testkit")

_plans: dict[str, KafkaPlan | DatabasePlan] = {}


def _kafka_plan() -> KafkaPlan:
    plan = _plans.get("kafka")
    if not isinstance(plan, KafkaPlan):
        plan = _plans["kafka"] = plan_kafka()
    return plan


def _database_plan() -> DatabasePlan:
    plan = _plans.get("database")
    if not isinstance(plan, DatabasePlan):
        try:
            plan = _plans["database"] = plan_database()
        except NoDatabaseServerError as exc:
            pytest.exit(str(exc), returncode=1)
    return plan


def pytest_report_header(config: pytest.Config) -> list[str]:
    kafka, database = _kafka_plan(), _database_plan()
    lines = [
        f"reminder-testkit: kafka = {kafka.detail}",
        f"reminder-testkit: database = {database.detail}",
    ]
    if database.source == "sqlite":
        lines.append(f"reminder-testkit: WARNING: {SQLITE_WARNING}")
    return lines


# --------------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    plan = _kafka_plan()
    log.info("Kafka for this session: %s", plan.detail)
    if plan.source == "env":
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif plan.source == "docker":
        container = KafkaContainerHandle()
        try:
            yield container.start()
        finally:
            container.stop()
    else:
        broker = TansuBroker(log_dir=tmp_path_factory.mktemp("tansu")).start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@pytest.fixture(scope="session")
def kafka_idempotence() -> bool:
    """Whether producers may enable idempotence (Tansu lacks InitProducerId)."""
    return _kafka_plan().idempotence


@pytest.fixture(scope="session")
def tansu_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], TansuBroker]]:
    """Starts private Tansu brokers for tests that stop, kill or restart their broker."""
    brokers: list[TansuBroker] = []

    def start() -> TansuBroker:
        broker = TansuBroker(log_dir=tmp_path_factory.mktemp("tansu-private"))
        brokers.append(broker)
        return broker.start()

    yield start
    for broker in brokers:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix unique to this test, e.g. `t3f9a1c2.`: services honour KAFKA_TOPIC_PREFIX."""
    return f"t{uuid.uuid4().hex[:8]}."


# --------------------------------------------------------------------------- database


@pytest.fixture(scope="session")
def _database_server() -> Iterator[DatabaseServer]:
    plan = _database_plan()
    log.info("Database for this session: %s", plan.detail)
    if plan.source == "env":
        url = make_url(os.environ["TEST_DATABASE_URL"])
        server: DatabaseServer = (
            SqliteServer() if url.get_backend_name() == "sqlite" else MysqlServer(url)
        )
        yield server
        server.drop_all()
    elif plan.source == "local":
        server = MysqlServer(make_url("mysql+pymysql://root@127.0.0.1:3306/"))
        yield server
        server.drop_all()
    elif plan.source == "docker":
        container = MysqlContainerHandle()
        try:
            server = MysqlServer(container.start())
            yield server
        finally:
            container.stop()
    else:
        warnings.warn(SQLITE_WARNING, stacklevel=1)
        server = SqliteServer()
        yield server
        server.drop_all()


@pytest.fixture(scope="session")
def database_factory(_database_server: DatabaseServer) -> DatabaseFactory:
    """`database_factory()` -> URL of another fresh, empty database on the same server."""
    return DatabaseFactory(_database_server)


@pytest.fixture(scope="session")
def database_url(database_factory: DatabaseFactory) -> str:
    """SQLAlchemy URL of a fresh database for this session, dropped at its end."""
    if _database_plan().source == "env":
        return os.environ["TEST_DATABASE_URL"]
    return database_factory()


# --------------------------------------------------------------------------- SNS

_AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.fixture(scope="session")
def sns_server() -> Iterator[SnsServer]:
    """moto SNS on 127.0.0.1; AWS_* env points boto3 at it while the session runs."""
    server = SnsServer().start()
    env = {**_AWS_ENV, "AWS_ENDPOINT_URL_SNS": server.endpoint_url}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
