"""The texts the sender writes: reminders, the HELP text and acknowledgements.

Wording lives in data files, one per language (`sender/templates/<lang>.toml`); this module
fills them in. Dates and times are formatted by Babel (CLDR) in the patient's locale and
time zone. Every text is kept within `MAX_SEGMENTS` SMS segments: accents are folded to
GSM-7 look-alikes only when that saves a segment, then the optional parts (provider, the
tail of a long location) are dropped until it fits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time

from .segments import Encoding, count_segments, fold_to_gsm7, normalise_spaces

DEFAULT_LANGUAGE: Final = "en"
MAX_SEGMENTS: Final = 2
#: A pathological "first name" (the whole name is one 200-character word) is cut here.
MAX_FIRST_NAME: Final = 30
ELLIPSIS: Final = "..."

ReplyKind = Literal["help", "confirmed", "declined"]

#: Placeholders each template may use; checked when templates are loaded.
PLACEHOLDERS: Final[Mapping[str, frozenset[str]]] = {
    "reminder": frozenset({"clinic", "first_name", "date", "time", "place", "provider"}),
    "place": frozenset({"location"}),
    "provider": frozenset({"provider"}),
    "help": frozenset({"clinic", "clinic_phone"}),
    "confirmed": frozenset({"clinic", "clinic_phone"}),
    "declined": frozenset({"clinic", "clinic_phone"}),
}


class TemplateError(ValueError):
    """A template file that is missing a text or uses an unknown placeholder."""


@dataclass(frozen=True)
class LanguageTemplates:
    language: str
    reminder: str
    place: str
    provider: str
    help: str
    confirmed: str
    declined: str

    @classmethod
    def from_mapping(cls, language: str, data: Mapping[str, object]) -> LanguageTemplates:
        import string

        texts: dict[str, str] = {}
        for name, allowed in PLACEHOLDERS.items():
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise TemplateError(f"{language}: missing text {name!r}")
            used = {field for _, field, _, _ in string.Formatter().parse(value) if field}
            if unknown := used - allowed:
                raise TemplateError(f"{language}.{name}: unknown placeholders {sorted(unknown)}")
            texts[name] = value
        return cls(language=language, **texts)


@dataclass(frozen=True)
class TemplateBook:
    """All shipped languages; an unknown language falls back to its base, then English."""

    languages: Mapping[str, LanguageTemplates]

    def __post_init__(self) -> None:
        if DEFAULT_LANGUAGE not in self.languages:
            raise TemplateError(f"the {DEFAULT_LANGUAGE!r} templates are required (fallback)")

    def for_language(self, language: str) -> LanguageTemplates:
        code = language.lower().replace("_", "-")
        for candidate in (code, code.split("-")[0]):
            if candidate in self.languages:
                return self.languages[candidate]
        return self.languages[DEFAULT_LANGUAGE]


@dataclass(frozen=True)
class Clinic:
    name: str
    phone: str


@dataclass(frozen=True)
class ComposedSms:
    text: str
    language: str  # the language of the text actually written (after fallback)
    encoding: Encoding
    segments: int


def _locale_for(language: str, templates: LanguageTemplates) -> Locale:
    """The patient's own locale (e.g. es-MX) when it is a variant of the text's language."""
    for candidate in (language.replace("-", "_"), templates.language):
        try:
            locale = Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
        if locale.language == templates.language:
            return locale
    return Locale.parse(templates.language)


def format_when(starts_at: datetime, timezone: str, locale: Locale) -> tuple[str, str]:
    """(date, time) of the appointment as the patient reads it, in their time zone."""
    local = starts_at.astimezone(ZoneInfo(timezone))
    date = format_skeleton("MMMMEd", local, locale=locale)
    time = format_time(local, format="short", locale=locale)
    return normalise_spaces(date), normalise_spaces(time)


def _fit(text: str) -> tuple[str, Encoding, int]:
    """The text as sent: exact, or folded to GSM-7 when folding saves a segment."""
    exact = count_segments(text)
    folded_text = fold_to_gsm7(text)
    folded = count_segments(folded_text)
    if exact.segments <= folded.segments:
        return text, exact.encoding, exact.segments
    return folded_text, folded.encoding, folded.segments


def _shortened(value: str) -> Iterator[str]:
    """Ever shorter forms of a free-text value, cut at word boundaries."""
    words = value.split()
    for keep in range(len(words) - 1, 0, -1):
        yield " ".join(words[:keep]).rstrip(",;:-") + ELLIPSIS


def compose_reminder(
    book: TemplateBook,
    clinic: Clinic,
    *,
    name: str,
    language: str,
    timezone: str,
    starts_at: datetime,
    location: str | None,
    provider: str | None,
) -> ComposedSms:
    templates = book.for_language(language)
    date, time = format_when(starts_at, timezone, _locale_for(language, templates))
    first_name = name.split()[0][:MAX_FIRST_NAME] if name.split() else name[:MAX_FIRST_NAME]

    def render(location_text: str | None, provider_text: str | None) -> str:
        place = templates.place.format(location=location_text) if location_text else ""
        with_whom = templates.provider.format(provider=provider_text) if provider_text else ""
        return templates.reminder.format(
            clinic=clinic.name,
            first_name=first_name,
            date=date,
            time=time,
            place=place,
            provider=with_whom,
        )

    location = location.strip() if location and location.strip() else None
    provider = provider.strip() if provider and provider.strip() else None

    def candidates() -> Iterator[str]:
        # Most informative first; the place matters more than the provider's name.
        yield render(location, provider)
        if provider:
            yield render(location, None)
        if location:
            for shorter in _shortened(location):
                yield render(shorter, None)
            yield render(None, None)

    last: tuple[str, Encoding, int] | None = None
    for text in candidates():
        last = _fit(text)
        if last[2] <= MAX_SEGMENTS:
            break
    assert last is not None
    return ComposedSms(
        text=last[0], language=templates.language, encoding=last[1], segments=last[2]
    )


def compose_reply(
    book: TemplateBook, clinic: Clinic, kind: ReplyKind, language: str
) -> ComposedSms:
    templates = book.for_language(language)
    template = {
        "help": templates.help,
        "confirmed": templates.confirmed,
        "declined": templates.declined,
    }[kind]
    text, encoding, segments = _fit(template.format(clinic=clinic.name, clinic_phone=clinic.phone))
    return ComposedSms(text=text, language=templates.language, encoding=encoding, segments=segments)
