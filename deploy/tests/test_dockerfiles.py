"""services/*/Dockerfile: multi-stage uv builds, slim and unprivileged, with a healthcheck.

No Docker daemon is needed: the files are parsed and linted (hadolint)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field

import pytest
from deploy.tests.conftest import REPO_ROOT, SERVICE_IDS, SERVICES, Service, tool

pytestmark = pytest.mark.unit

DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE", re.IGNORECASE)
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, with line continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif keyword != "ARG" or stages:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


def stages_of(service: Service) -> list[Stage]:
    return parse_dockerfile((service.folder / "Dockerfile").read_text())


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_builds_with_uv_from_the_lock_and_runs_on_slim_python(service: Service) -> None:
    stages = stages_of(service)
    assert len(stages) >= 2, "multi-stage"
    runtime = stages[-1]
    assert runtime.base == "python:3.11-slim"
    builders = stages[:-1]
    uses_uv = any(s.base.startswith("ghcr.io/astral-sh/uv") for s in builders) or any(
        "pip install uv" in run for s in builders for run in s.all("RUN")
    )
    assert uses_uv
    syncs = [run for s in builders for run in s.all("RUN") if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync, "must install exactly what uv.lock says"
        assert "--no-dev" in sync
        assert f"--package {service.distribution}" in sync
    # The final install is of wheels: the runtime stage needs no source tree.
    assert "--no-editable" in syncs[-1]
    copied = [c for c in runtime.all("COPY") if "--from=" in c]
    assert any("/app/.venv" in c for c in copied)
    assert not [c for c in runtime.all("COPY") if "--from=" not in c], "only build output"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_copies_the_workspace_pieces_the_service_needs(service: Service) -> None:
    copies = " ".join(c for s in stages_of(service)[:-1] for c in s.all("COPY"))
    for needed in ("uv.lock", "contracts/", "runtime/", f"services/{service.name}/"):
        assert needed in copies
        assert (REPO_ROOT / needed).exists()
    for other in SERVICES:
        if other != service:
            assert f"services/{other.name}/" not in copies, "a service never needs another"


def test_dockerignore_keeps_the_build_context_small_and_free_of_secrets() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for excluded in (".venv/", "**/.git", "**/.env", "**/tests/", "data/"):
        assert excluded in patterns
    for needed in ("contracts", "runtime", "services", "uv.lock", "pyproject.toml"):
        assert not any(p.rstrip("/") == needed for p in patterns)


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_runs_as_an_unprivileged_numeric_user(service: Service) -> None:
    users = stages_of(service)[-1].all("USER")
    assert users, "no USER: the process would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "numeric, so Kubernetes runAsNonRoot can check it"
    assert int(uid) != 0


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_serves_its_port_with_a_python_healthcheck(service: Service) -> None:
    runtime = stages_of(service)[-1]
    assert runtime.all("EXPOSE") == [str(service.port)]
    envs = " ".join(runtime.all("ENV"))
    assert "HTTP_HOST=0.0.0.0" in envs
    assert f"HTTP_PORT={service.port}" in envs
    (healthcheck,) = runtime.all("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert str(service.port) in command[-1]
    assert "curl" not in healthcheck  # not in slim images
    assert "wget" not in healthcheck
    assert json.loads(runtime.all("CMD")[-1]) == ["python", "-m", service.package]


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_holds_no_secrets(service: Service) -> None:
    text = (service.folder / "Dockerfile").read_text()
    assert not AWS_KEY_ID.search(text)
    for stage in stages_of(service):
        for keyword in ("ENV", "ARG"):
            for args in stage.all(keyword):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or args.split()[:1]
                assert not [n for n in names if SECRET_NAME.search(n)], f"{keyword} {args}"


def test_parser_reads_continuations_and_stages() -> None:
    stages = parse_dockerfile(
        "ARG V=1\nFROM a:1 AS one\nRUN x \\\n    # note\n    && y\nFROM b\nUSER 5\n"
    )
    assert [(s.base, s.name) for s in stages] == [("a:1", "one"), ("b", None)]
    assert stages[0].all("RUN") == ["x && y"]
    assert stages[1].all("USER") == ["5"]


def test_hadolint_finds_nothing() -> None:
    dockerfiles = [str(s.folder / "Dockerfile") for s in SERVICES]
    result = subprocess.run(
        [tool("hadolint"), "--no-color", *dockerfiles],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
