"""The operations endpoints every service gets from `build_app`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from reminder_runtime.kafka import make_broker
from reminder_runtime.relay import OutboxRelay
from reminder_runtime.service import build_app
from reminder_runtime.settings import ServiceSettings
from reminder_testkit import TansuBroker, wait_for

pytestmark = pytest.mark.integration


def test_health_readiness_and_metrics_follow_the_broker(
    schema: Any,
    session_factory: sessionmaker[Session],
    settings: ServiceSettings,
    tansu_factory: Callable[[], TansuBroker],
) -> None:
    private = tansu_factory()
    settings = settings.model_copy(update={"kafka_bootstrap_servers": private.bootstrap_servers})
    broker = make_broker(settings)
    relay = OutboxRelay(session_factory, schema.messaging, broker, settings)
    engine = session_factory.kw["bind"]
    app = build_app(settings=settings, broker=broker, engine=engine, workers=[relay])

    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "OutboxRelay": "ok"}
        assert "outbox_published_total" in client.get("/metrics").text

        private.stop()
        wait_for(lambda: client.get("/readyz").status_code == 503, timeout=20)
        assert client.get("/readyz").json()["checks"]["broker"] != "ok"
        assert client.get("/healthz").status_code == 200, "alive while the broker is away"
    assert not relay.healthy, "the lifespan stopped the relay"
