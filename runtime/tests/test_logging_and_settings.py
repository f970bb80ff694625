"""JSON logs never carry a phone number or an SMS text in clear; secrets need setting."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from reminder_runtime.logging import JsonFormatter
from reminder_runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def render(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    out: dict[str, object] = json.loads(JsonFormatter("svc").format(record))
    return out


def test_phone_numbers_in_the_message_are_masked() -> None:
    line = render("sending to %s and 4915112345678", "+12025550143")
    assert line["msg"] == "sending to +1******0143 and 4********5678"
    assert "2025550143" not in json.dumps(line)


def test_sensitive_extra_fields_are_redacted_and_others_kept() -> None:
    line = render(
        "reply",
        body="Yes, I will come, call me at +12025550143",
        phone="+12025550143",
        reminder_id="r-1",
        payload={"messageBody": "oui", "originationNumber": "+33612345678"},
    )
    assert line["body"] == "<redacted 41 chars>"
    assert line["phone"] == "+1******0143"
    assert line["reminder_id"] == "r-1"
    assert line["payload"] == {
        "messageBody": "<redacted 3 chars>",
        "originationNumber": "+3******5678",
    }
    assert line["service"] == "svc"
    assert line["level"] == "info"


def test_exceptions_are_logged_masked() -> None:
    try:
        raise ValueError("bad number +12025550143")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    line = json.loads(JsonFormatter("svc").format(record))
    assert "+12025550143" not in line["exc"]
    assert "+1******0143" in line["exc"]


class WithSecret(ServiceSettings):
    api_token: str = "dev-token"

    def check_secrets(self) -> None:
        self._refuse_default_secret("api_token", self.api_token, "dev-token")


def test_a_secret_left_at_its_default_is_refused_outside_dev() -> None:
    with pytest.raises(ValidationError, match="API_TOKEN is left at its development default"):
        WithSecret(environment="prod")
    assert WithSecret(environment="dev").api_token == "dev-token"
    assert WithSecret(environment="prod", api_token="s3cret").api_token == "s3cret"


def test_settings_read_upper_case_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "clinic-a.")
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.topic("appointments") == "clinic-a.appointments"
    assert settings.kafka_enable_idempotence is False
