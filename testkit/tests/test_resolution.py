"""Which Kafka and database a session gets, and that nothing outlives a killed session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reminder_testkit import database, free_port, kafka, wait_for
from reminder_testkit.database import NoDatabaseServerError, plan_database
from reminder_testkit.kafka import plan_kafka


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "docker_available", lambda: False)
    monkeypatch.setattr(kafka, "docker_available", lambda: False)
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)


@pytest.mark.unit
@pytest.mark.usefixtures("no_docker")
def test_under_ci_a_missing_database_server_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(NoDatabaseServerError, match="refusing to fall back to SQLite"):
        plan_database("127.0.0.1", free_port())


@pytest.mark.unit
@pytest.mark.usefixtures("no_docker")
def test_outside_ci_a_missing_database_server_means_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert plan_database("127.0.0.1", free_port()).source == "sqlite"


@pytest.mark.unit
@pytest.mark.usefixtures("no_docker")
def test_environment_urls_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "mysql+pymysql://app:secret@db:3306/app")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    plan = plan_database("127.0.0.1", free_port())
    assert plan.source == "env"
    assert "secret" not in plan.detail  # the report header shows it
    assert plan_kafka().source == "env"
    assert plan_kafka().idempotence


@pytest.mark.unit
@pytest.mark.usefixtures("no_docker")
def test_without_docker_or_env_kafka_is_tansu_without_idempotence() -> None:
    plan = plan_kafka()
    assert plan.source == "tansu"
    assert not plan.idempotence


_START_AND_HANG = """
import sys, time
from reminder_testkit import TansuBroker
broker = TansuBroker().start()
print(broker._process.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.integration
def test_a_broker_does_not_outlive_a_killed_test_process() -> None:
    session = subprocess.Popen(
        [sys.executable, "-c", _START_AND_HANG], stdout=subprocess.PIPE, text=True
    )
    try:
        assert session.stdout is not None
        broker_pid = int(session.stdout.readline())
        os.kill(broker_pid, 0)  # running
    finally:
        session.send_signal(signal.SIGKILL)
        session.wait()
        if session.stdout is not None:
            session.stdout.close()

    def gone() -> bool:
        try:
            os.kill(broker_pid, 0)
        except ProcessLookupError:
            return True
        # a zombie until init reaps it: dead all the same
        with open(f"/proc/{broker_pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")

    wait_for(gone, timeout=5, message="the Tansu broker outlived its killed session")


_NO_SERVER_CONFTEST = """
import reminder_testkit.plugin as plugin
from reminder_testkit import database, free_port

database.docker_available = lambda: False
plugin.plan_database = lambda: database.plan_database("127.0.0.1", free_port())
"""
_USES_THE_DATABASE = """
def test_needs_a_database(database_url):
    assert database_url
"""


def _run_pytest_without_database(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(_NO_SERVER_CONFTEST)
    (tmp_path / "test_db.py").write_text(_USES_THE_DATABASE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TEST_DATABASE_URL")}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_a_ci_run_without_database_server_fails_loudly(tmp_path: Path) -> None:
    run = _run_pytest_without_database(tmp_path, ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "refusing to fall back to SQLite" in run.stdout + run.stderr


@pytest.mark.integration
def test_a_local_run_without_database_server_warns_and_uses_sqlite(tmp_path: Path) -> None:
    run = _run_pytest_without_database(tmp_path, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING: No MySQL-compatible server answers" in run.stdout  # report header
    assert "UserWarning" in run.stdout  # and the warnings summary
