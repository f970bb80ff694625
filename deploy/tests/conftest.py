"""What the deployment files are checked against: the four services as the code defines them."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


@dataclass(frozen=True)
class Service:
    name: str  # folder, consumer group, Kubernetes and compose name
    package: str  # `python -m <package>`
    port: int

    @property
    def folder(self) -> Path:
        return REPO_ROOT / "services" / self.name

    @property
    def distribution(self) -> str:
        return f"reminder-{self.name}"

    def settings_class(self) -> type[BaseSettings]:
        module = importlib.import_module(f"{self.package}.settings")
        cls: type[BaseSettings] = module.Settings
        return cls

    def env_names(self) -> set[str]:
        """The UPPER_CASE environment variables the service's Settings reads."""
        return {name.upper() for name in self.settings_class().model_fields}


SERVICES = (
    Service("admin-api", "admin_api", 8000),
    Service("inbound", "inbound", 8001),
    Service("scheduler", "scheduler", 8002),
    Service("sender", "sender", 8003),
)
SERVICE_IDS = [s.name for s in SERVICES]


def consumer_groups() -> list[str]:
    """Every Kafka consumer group the services use; each has its own dead-letter topic."""
    from sender.adapters.consumers import state_group
    from sender.settings import Settings as SenderSettings

    sender_settings = SenderSettings(environment="dev")
    return [*(s.name for s in SERVICES), state_group(sender_settings)]


#: Variables boto3 reads itself (standard AWS names, not service settings).
AWS_ENV = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_SNS",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    }
)


def tool(name: str) -> str:
    """A command-line tool installed by the dev dependency group (uv sync)."""
    path = VENV_BIN / name
    assert path.exists(), f"{path} is missing: run `uv sync` (it is a dev dependency)"
    return str(path)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SettingsLoader:
    """Build a service's Settings from exactly the given environment (no .env, no leaks)."""
    monkeypatch.chdir(tmp_path)  # Settings reads `.env` from the working directory
    return SettingsLoader(monkeypatch)


class SettingsLoader:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def load(self, service: Service, env: Mapping[str, str]) -> BaseSettings:
        names = service.env_names()
        for name in names | set(os.environ) & names:
            self._monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            if name in names:
                self._monkeypatch.setenv(name, value)
        return service.settings_class()()


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and not current:
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (as in a compose `.env` file); comments and blank lines skipped."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env
