"""Form fields checked one by one with the domain's own rules, so every wrong field gets
its message (the API's message) next to it, instead of only the first one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .. import domain
from ..domain import CommandRejected, InvalidInput

#: field name -> message
Errors = dict[str, str]


def check(errors: Errors, name: str, rule: Callable[[], Any]) -> Any:
    """Run `rule`; on a rejection, note its message under `name` and return None."""
    try:
        return rule()
    except CommandRejected as exc:
        errors.setdefault(name, exc.detail)
        return None


def patient_errors(fields: dict[str, str], phone_region: str) -> Errors:
    errors: Errors = {}
    check(errors, "name", lambda: domain.clean_name(fields.get("name", "")))
    check(errors, "phone", lambda: domain.clean_phone(fields.get("phone", ""), phone_region))
    check(errors, "language", lambda: domain.clean_language(fields.get("language", "")))
    check(errors, "timezone", lambda: domain.clean_timezone(fields.get("timezone", "")))
    return errors


def field_of(message: str, names: tuple[str, ...]) -> str:
    """Which form field a service-layer message is about (its first word), else `form`."""
    first = message.split(" ", 1)[0].rstrip(":").lower()
    return first if first in names else "form"


def local_datetime(raw: str, zone: ZoneInfo) -> datetime:
    """A `datetime-local` field (`2030-01-31T09:30`) as a time of the clinic's zone."""
    try:
        naive = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput("starts_at: enter a date and a time, e.g. 2030-01-31 09:30") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=zone)


def optional_date(raw: str | None, name: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"{name}: enter a date as YYYY-MM-DD") from None


def offsets(raw: str) -> list[str] | None:
    """`24h, 2h` -> ["24h", "2h"]; empty -> None (the clinic's default offsets)."""
    parts = [part for part in raw.replace(";", ",").split(",") if part.strip()]
    return parts or None


def appointment_errors(
    fields: dict[str, str], zone: ZoneInfo, now: datetime
) -> tuple[Errors, datetime | None]:
    """Per-field errors of the booking form, and its start time when that one is valid."""
    errors: Errors = {}
    starts_at = check(
        errors, "starts_at", lambda: local_datetime(fields.get("starts_at", ""), zone)
    )
    if starts_at is not None:
        check(errors, "starts_at", lambda: domain.require_future(starts_at, now))
    check(
        errors,
        "reminder_offsets",
        lambda: domain.parse_offsets(offsets(fields.get("reminder_offsets", ""))),
    )
    return errors, starts_at
