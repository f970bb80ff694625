"""The inbound service's settings (environment variables, UPPER_CASE)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from reminder_contracts.types import InvalidPhoneNumber, to_e164
from reminder_runtime.settings import InsecureSetting, ServiceSettings


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(ServiceSettings):
    service_name: str = "inbound"
    http_port: int = 8001
    database_url: str = "sqlite:///data/inbound.db"

    #: SNS topics (ARNs, comma-separated) whose messages are accepted; all others: 403.
    sns_allowed_topic_arns: str = ""
    #: Our long codes (E.164, comma-separated): an SMS to any other number is refused.
    sms_origination_numbers: str = ""
    #: Check every SNS signature. Off only for local experiments: refused unless
    #: ENVIRONMENT=dev, and logged loudly at start and for every message.
    sns_verify_signatures: bool = True
    #: Messages whose SNS Timestamp is older than this are refused (replays).
    sns_max_message_age_seconds: int = Field(default=3600, gt=0)
    #: Signing certificates are kept this long (AWS rotates them rarely).
    sns_cert_cache_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    sns_cert_cache_size: int = Field(default=16, ge=1)
    #: Time limit for fetching a certificate or visiting a SubscribeURL.
    sns_http_timeout_seconds: float = Field(default=5.0, gt=0)
    #: Threads recording replies (each holds one database connection while it works).
    reply_worker_threads: int = Field(default=16, ge=1, le=64)
    #: Language of events for an unknown number when the keyword has none of its own.
    default_language: str = "en"

    @property
    def allowed_topic_arns(self) -> frozenset[str]:
        return frozenset(_split(self.sns_allowed_topic_arns))

    @property
    def origination_numbers(self) -> frozenset[str]:
        return frozenset(to_e164(n) for n in _split(self.sms_origination_numbers))

    @property
    def max_message_age(self) -> timedelta:
        return timedelta(seconds=self.sns_max_message_age_seconds)

    @model_validator(mode="after")
    def _check_inbound(self) -> Settings:
        if not self.sns_verify_signatures and not self.is_dev:
            raise InsecureSetting("SNS_VERIFY_SIGNATURES=false is refused outside ENVIRONMENT=dev")
        for number in _split(self.sms_origination_numbers):
            try:
                to_e164(number)
            except InvalidPhoneNumber as exc:
                raise ValueError(f"SMS_ORIGINATION_NUMBERS: {exc}") from None
        if not self.is_dev and not (self.allowed_topic_arns and self.origination_numbers):
            raise InsecureSetting(
                "SNS_ALLOWED_TOPIC_ARNS and SMS_ORIGINATION_NUMBERS must be set outside "
                "ENVIRONMENT=dev: otherwise every reply would be refused"
            )
        return self
