"""Value types shared by every event: phone numbers, languages, time zones, offsets."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import AfterValidator, AwareDatetime, Field, PlainSerializer

#: Languages the system has reply keywords and SMS templates for. A patient may be
#: registered with any of these; anything else is refused at the admin API.
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es", "fr")
DEFAULT_LANGUAGE = "en"


class InvalidPhoneNumber(ValueError):
    """A phone number that cannot be read or is not a possible, valid number."""


def to_e164(raw: str, default_region: str | None = None) -> str:
    """Return `raw` in E.164 (`+15555550100`), reading national formats with `default_region`.

    Raises InvalidPhoneNumber with a reason a clinic clerk can act on.
    """
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(
            f"not a phone number: {exc.args[0] if exc.args else exc}"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _require_e164(value: str) -> str:
    if not value.startswith("+"):
        raise InvalidPhoneNumber("phone number must be in E.164 format, e.g. +15555550100")
    e164 = to_e164(value)
    if e164 != value:
        # the E.164 form is not echoed: error messages end up in logs and dead letters
        raise InvalidPhoneNumber("phone number must be in E.164 format, e.g. +15555550100")
    return value


def mask_phone(e164: str) -> str:
    """`+15555550100` -> `+1******0100`: enough to tell numbers apart in a log, no more."""
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:2] + "*" * (len(e164) - 6) + e164[-4:]


def _require_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    if value not in _known_timezones():
        raise ValueError(f"unknown IANA time zone {value!r}")
    return value


_TZ_CACHE: set[str] = set()


def _known_timezones() -> set[str]:
    if not _TZ_CACHE:
        _TZ_CACHE.update(available_timezones())
    return _TZ_CACHE


def _require_language(value: str) -> str:
    # Events carry the patient's language as registered; a consumer that has no text for
    # it falls back to English, so only the form is checked here, not membership.
    if not (2 <= len(value) <= 8) or not value.replace("-", "").isalpha():
        raise ValueError(f"not a language code: {value!r}")
    return value.lower()


#: A phone number in E.164 form, validated with libphonenumber.
PhoneNumber = Annotated[
    str,
    Field(examples=["+15555550100"], json_schema_extra={"format": "e164"}),
    AfterValidator(_require_e164),
]
#: An IANA time zone name such as `America/New_York`.
TimeZoneName = Annotated[
    str, Field(examples=["America/New_York"]), AfterValidator(_require_timezone)
]
#: A language code such as `en`, `es`, `fr`.
LanguageCode = Annotated[str, Field(examples=["en"]), AfterValidator(_require_language)]
#: A timezone-aware instant, serialised in ISO 8601 with its offset.
UtcDatetime = Annotated[
    AwareDatetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")
]
#: How long before the appointment a reminder goes out, in whole minutes.
OffsetMinutes = Annotated[int, Field(gt=0, le=60 * 24 * 30)]
