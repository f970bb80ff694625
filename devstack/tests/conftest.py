"""The whole system as separate processes on Tansu, MariaDB and moto, for end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reminder_devstack.clinic import Clinic
from reminder_devstack.stack import SERVICES, Stack, StackConfig

from reminder_testkit import SnsServer, free_port


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap_servers: str,
    kafka_idempotence: bool,
    database_factory: Callable[[], str],
    sns_server: SnsServer,
) -> Iterator[Stack]:
    config = StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("stack")),
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        kafka_enable_idempotence=kafka_idempotence,
        sns_endpoint_url=sns_server.endpoint_url,
        topic_prefix=f"e2e{int(time.time())}.",
        ports={s.name: free_port() for s in SERVICES},
        database_urls={s.name: database_factory() for s in SERVICES},
        service_env={
            # Quiet hours have their own unit tests; here reminders must go at any hour.
            "scheduler": {"QUIET_HOURS": "off"},
            # A publish cut short by kill -9 is reported as unknown_outcome after this long.
            "sender": {
                "SMS_MAX_PER_SECOND": "50",
                "SMS_BURST": "5",
                "SENDING_STALE_AFTER_SECONDS": "10",
                "SENDING_SWEEP_INTERVAL_SECONDS": "2",
            },
            "*": {"LOG_LEVEL": "INFO"},
        },
    )
    running = Stack(config)
    try:
        running.start(timeout=180)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def clinic(stack: Stack, sns_server: SnsServer) -> Clinic:
    return Clinic(stack, sns_server.sent_sms)
