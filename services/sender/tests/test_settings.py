from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from sender.settings import Settings

pytestmark = pytest.mark.unit


def test_production_refuses_to_start_without_a_long_code_or_clinic_details(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="SMS_ORIGINATION_NUMBER is required"):
        Settings()
    monkeypatch.setenv("SMS_ORIGINATION_NUMBER", "+12025550178")
    with pytest.raises(ValidationError, match="CLINIC_NAME"):
        Settings()
    monkeypatch.setenv("CLINIC_NAME", "Riverside Family Clinic")
    monkeypatch.setenv("CLINIC_PHONE", "+1 202-555-0100")
    monkeypatch.setenv("SMS_MAX_PER_SECOND", "3")
    monkeypatch.setenv("SMS_MAX_PRICE_USD", "0.05")
    settings = Settings()
    assert settings.sms_max_per_second == 3.0
    assert settings.sms_max_price_usd == Decimal("0.05")
    assert settings.send_acknowledgements is True
    assert (settings.service_name, settings.http_port) == ("sender", 8003)


@pytest.mark.parametrize("number", ["2025550178", "+1 202 555 0178", "+15555550100"])
def test_the_long_code_must_be_a_valid_e164_number(number: str) -> None:
    with pytest.raises(ValidationError, match=r"SMS_ORIGINATION_NUMBER|phone number"):
        Settings(environment="dev", sms_origination_number=number)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings(environment="dev", sms_max_per_second=0)
