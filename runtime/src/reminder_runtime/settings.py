"""The settings base every service's `Settings` extends (pydantic-settings, UPPER_CASE env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "test", "prod"]


class InsecureSetting(ValueError):
    """A secret left at its development default outside dev mode."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: `dev` allows development defaults for secrets; `prod` refuses them.
    environment: Environment = "prod"
    #: Names the service in logs, metrics and as its Kafka client id.
    service_name: str = "service"
    #: DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stdout.
    log_level: str = "INFO"

    #: Where the HTTP server listens (`0.0.0.0` in a container).
    http_host: str = "127.0.0.1"
    #: The port of the API and of /healthz, /readyz, /metrics.
    http_port: int = 8000

    #: Kafka brokers, comma-separated host:port.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: Off only for brokers without InitProducerId (Tansu in development).
    kafka_enable_idempotence: bool = True
    #: Prepended to every topic name: one Kafka cluster can host several isolated systems.
    kafka_topic_prefix: str = ""
    #: Create missing topics at start-up (development); production topics are declared
    #: by operators (Strimzi KafkaTopic).
    kafka_create_topics: bool = False
    #: Partitions of topics this service creates (KAFKA_CREATE_TOPICS).
    kafka_topic_partitions: int = Field(default=3, ge=1)
    #: How long a silent consumer keeps its partitions before the group moves them.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)

    #: SQLAlchemy URL: `mysql+pymysql://user:pass@host/db` or `sqlite:///path`.
    database_url: str = "sqlite:///data/service.db"
    #: Run Alembic `upgrade head` at start-up (dev, tests); production runs a migration job.
    database_migrate_on_start: bool = False

    #: Retries of a failing event handler before the event goes to `dlt.<group>`.
    consumer_max_retries: int = Field(default=3, ge=0)
    #: First retry delay; it doubles with each retry (with jitter).
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    #: Longest wait before the outbox relay looks for events written by other replicas.
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    #: Events published per relay transaction.
    outbox_batch_size: int = Field(default=200, ge=1)

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    def consumer_group(self, name: str) -> str:
        """Consumer groups are prefixed too: two systems on one cluster never share one."""
        return f"{self.kafka_topic_prefix}{name}"

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    def _refuse_default_secret(self, name: str, value: str, default: str) -> None:
        if not self.is_dev and value == default:
            raise InsecureSetting(
                f"{name.upper()} is left at its development default; set it, or ENVIRONMENT=dev"
            )

    @model_validator(mode="after")
    def _check_secrets(self) -> ServiceSettings:
        self.check_secrets()
        return self

    def check_secrets(self) -> None:
        """Subclasses call `_refuse_default_secret` for each of their secrets."""
