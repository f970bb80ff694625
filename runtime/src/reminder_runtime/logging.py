"""JSON logs with phone numbers and message bodies masked wherever they appear."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from reminder_contracts.types import mask_phone

# E.164 (+ and 8 to 15 digits) anywhere in a string; also bare 10-15 digit runs.
_PHONE = re.compile(r"(?<![\w+])\+?\d{8,15}(?!\w)")
#: Record attributes and dict keys whose value is never logged in clear.
SENSITIVE_KEYS = frozenset(
    {
        "body",
        "message_body",
        "messagebody",
        "text",
        "sms_text",
        "message",
        "phone",
        "phone_number",
        "originationnumber",
        "destinationnumber",
        "to",
        "name",
        "patient_name",
    }
)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _mask_digits(match: re.Match[str]) -> str:
    value = match.group(0)
    if value.startswith("+"):
        return mask_phone(value)
    return value[:1] + "*" * (len(value) - 5) + value[-4:]


def mask(value: Any, key: str | None = None) -> Any:
    """Mask phone numbers in strings; redact values under sensitive keys."""
    if key is not None and key.lower() in SENSITIVE_KEYS and value is not None:
        if isinstance(value, str) and _PHONE.fullmatch(value.strip()):
            return _PHONE.sub(_mask_digits, value)
        return f"<redacted {len(str(value))} chars>"
    if isinstance(value, str):
        return _PHONE.sub(_mask_digits, value)
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = mask(value, key)
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "botocore", "urllib3", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
