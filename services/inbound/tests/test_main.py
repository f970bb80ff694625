"""`python -m inbound migrate` as operators run it: migrates and exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

pytestmark = pytest.mark.integration


def test_migrate_creates_the_tables_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    env = {**os.environ, "ENVIRONMENT": "dev", "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "inbound", "migrate"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"replies", "patients", "appointments", "reminders_sent", "outbox", "inbox"} <= tables


def test_outside_dev_the_service_refuses_to_start_without_topics_and_numbers(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "ENVIRONMENT": "prod", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    env.pop("SNS_ALLOWED_TOPIC_ARNS", None)
    done = subprocess.run(
        [sys.executable, "-m", "inbound", "migrate"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert b"SNS_ALLOWED_TOPIC_ARNS" in done.stderr
