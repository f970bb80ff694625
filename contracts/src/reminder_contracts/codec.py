"""JSON (de)serialisation of events, and the versioning rule applied on the way in."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .events import EVENT_TYPES, Event


class MalformedEvent(ValueError):
    """Not an event: bad JSON, a missing envelope field, a field of the wrong type."""


class UnknownEventType(ValueError):
    """An event type this consumer does not know: skipped, per the versioning rule."""


class UnsupportedEventVersion(ValueError):
    """An event version newer than this consumer knows: dead-lettered for a later replay."""


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(raw: bytes | str) -> Event:
    """Parse one event, applying the versioning rule of `reminder_contracts.events`."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent("an event is a JSON object")
    event_type = data.get("event_type")
    if not isinstance(event_type, str):
        raise MalformedEvent("missing event_type")
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type)
    version = data.get("event_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedEvent("event_version must be a positive integer")
    if version > cls.VERSION:
        raise UnsupportedEventVersion(
            f"{event_type} v{version} (this consumer knows v{cls.VERSION})"
        )
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        raise MalformedEvent(_short(exc)) from None


def _short(exc: ValidationError) -> str:
    # Field locations and messages only: `input` values could be phone numbers or texts.
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:5])
