"""The sender's configuration (env, UPPER_CASE). AWS itself is configured the standard way:
AWS_REGION, AWS_ENDPOINT_URL_SNS and the credential chain are read by boto3, not here."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from reminder_contracts.types import to_e164
from reminder_runtime.settings import InsecureSetting, ServiceSettings

DEV_CLINIC_NAME = "Demo Clinic"
DEV_CLINIC_PHONE = "+12025550143"


class Settings(ServiceSettings):
    service_name: str = "sender"
    http_port: int = 8003
    database_url: str = "sqlite:///data/sender.db"

    #: The clinic's long code (E.164) every SMS is sent from; required outside dev.
    sms_origination_number: str | None = None
    #: Send rate in SMS parts (segments) per second, across all replicas together.
    sms_max_per_second: float = Field(default=1.0, gt=0)
    #: Parts that may go back to back after a quiet spell; 1 keeps the rate exact.
    sms_burst: float = Field(default=1.0, ge=1)
    #: Highest price in USD AWS may charge for one SMS (AWS.SNS.SMS.MaxPrice); none if unset.
    sms_max_price_usd: Decimal | None = Field(default=None, gt=0)

    clinic_name: str = Field(default=DEV_CLINIC_NAME, min_length=1, max_length=60)
    #: The number patients call (shown in the HELP text and acknowledgements).
    clinic_phone: str = Field(default=DEV_CLINIC_PHONE, min_length=1, max_length=30)
    #: Thank patients who answer YES / NO.
    send_acknowledgements: bool = True

    #: Publish attempts per SMS on throttling / 5xx (1 = no retry).
    sns_max_attempts: int = Field(default=5, ge=1)
    sns_backoff_base_seconds: float = Field(default=0.2, ge=0)
    sns_backoff_max_seconds: float = Field(default=5.0, ge=0)
    #: Seconds one SNS HTTP call may take (connect and read).
    sns_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Threads calling SNS (boto3 is blocking); one per in-flight publish.
    sns_threads: int = Field(default=4, ge=1)

    #: An attempt still marked 'sending' this long after it began belongs to a crashed
    #: worker (longer than any publish with all its retries can take).
    sending_stale_after_seconds: float = Field(default=300.0, gt=0)
    sending_sweep_interval_seconds: float = Field(default=30.0, gt=0)

    @field_validator("sms_origination_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        e164 = to_e164(value)
        if e164 != value:
            raise ValueError(f"SMS_ORIGINATION_NUMBER must be in E.164 form ({e164})")
        return value

    def check_secrets(self) -> None:
        if self.is_dev:
            return
        if self.sms_origination_number is None:
            raise InsecureSetting("SMS_ORIGINATION_NUMBER is required (the clinic's long code)")
        self._refuse_default_secret("clinic_name", self.clinic_name, DEV_CLINIC_NAME)
        self._refuse_default_secret("clinic_phone", self.clinic_phone, DEV_CLINIC_PHONE)
