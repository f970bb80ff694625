from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sender.domain.messages import (
    MAX_SEGMENTS,
    Clinic,
    LanguageTemplates,
    TemplateError,
    compose_reminder,
    compose_reply,
)
from sender.domain.segments import count_segments
from sender.templates import load_templates

pytestmark = pytest.mark.unit

BOOK = load_templates()
CLINIC = Clinic(name="Riverside Family Clinic", phone="+12025550143")
# Long but realistic values, as clinics and patients really have them.
LONG_CLINIC = Clinic(name="Centre Médical Saint-Étienne-du-Rouvray", phone="+33 2 35 12 34 56")
LONG_NAME = "Maximiliano Alejandro Fernández-Castellanos"
LONG_LOCATION = "Edificio Norte, 3ª planta, consulta 312"
LONG_PROVIDER = "Dra. Alexandra Papadopoulou-Rodríguez"
AWS_OPT_OUT_WORDS = {
    "ARRET",
    "CANCEL",
    "END",
    "OPT-OUT",
    "OPTOUT",
    "QUIT",
    "REMOVE",
    "TD",
    "UNSUBSCRIBE",
}  # STOP is the one we do name, in the HELP text


def test_shipped_languages_include_english_spanish_and_french() -> None:
    assert {"en", "es", "fr"} <= set(BOOK.languages)


@pytest.mark.parametrize(
    ("language", "timezone", "expected"),
    [
        (
            "en",
            "America/New_York",
            "Riverside Family Clinic: Hi Ana, a reminder of your appointment on Thu, December 10 "
            "at 10:30 AM at 12 Main Street. Reply YES to confirm or NO if you cannot come.",
        ),
        (
            "en",
            "America/Los_Angeles",
            "Riverside Family Clinic: Hi Ana, a reminder of your appointment on Thu, December 10 "
            "at 7:30 AM at 12 Main Street. Reply YES to confirm or NO if you cannot come.",
        ),
        (
            "es",
            "Europe/Madrid",
            "Riverside Family Clinic: Hola Ana, le recordamos su cita el jue, 10 de diciembre a "
            "las 16:30 en 12 Main Street. Responda SI para confirmar o NO si no puede venir.",
        ),
        (
            "fr",
            "Europe/Paris",
            "Riverside Family Clinic : Bonjour Ana, rappel de votre rendez-vous le jeu. "
            "10 décembre à 16:30, 12 Main Street. Répondez OUI pour confirmer ou NON si vous ne "
            "pouvez pas venir.",
        ),
    ],
)
def test_reminder_speaks_the_patients_language_in_their_time_zone(
    language: str, timezone: str, expected: str
) -> None:
    sms = compose_reminder(
        BOOK,
        CLINIC,
        name="Ana Lopez",
        language=language,
        timezone=timezone,
        starts_at=datetime(2026, 12, 10, 15, 30, tzinfo=UTC),
        location="12 Main Street",
        provider=None,
    )
    assert sms.text == expected
    assert sms.language == language
    assert sms.encoding == "GSM-7"  # Spanish SÍ folds to SI: it saves a whole segment


def test_an_unknown_language_falls_back_to_english_and_a_regional_one_to_its_base() -> None:
    when = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)
    german = compose_reminder(
        BOOK,
        CLINIC,
        name="Jonas",
        language="de",
        timezone="Europe/Berlin",
        starts_at=when,
        location=None,
        provider=None,
    )
    assert german.language == "en"
    assert "Reply YES" in german.text
    assert "4:30 PM" in german.text
    mexican = compose_reminder(
        BOOK,
        CLINIC,
        name="Lupe",
        language="es-mx",
        timezone="America/Mexico_City",
        starts_at=when,
        location=None,
        provider=None,
    )
    assert mexican.language == "es"
    assert "9:30" in mexican.text
    assert "SI para confirmar" in mexican.text


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_every_shipped_reminder_with_long_real_values_fits_two_segments_in_full(
    language: str,
) -> None:
    # September and Wednesday give long day and month names in every language.
    sms = compose_reminder(
        BOOK,
        LONG_CLINIC,
        name=LONG_NAME,
        language=language,
        timezone="America/New_York",
        starts_at=datetime(2026, 9, 30, 14, 45, tzinfo=UTC),
        location=LONG_LOCATION,
        provider=LONG_PROVIDER,
    )
    assert sms.segments <= MAX_SEGMENTS
    assert count_segments(sms.text).segments == sms.segments
    # Nothing had to be dropped to fit: the template leaves room for real values.
    for part in ("Maximiliano", "Edificio Norte", "312", "Papadopoulou"):
        assert part in sms.text


@pytest.mark.parametrize("language", sorted(BOOK.languages))
@pytest.mark.parametrize("kind", ["help", "confirmed", "declined"])
def test_every_shipped_reply_fits_two_segments(language: str, kind: str) -> None:
    sms = compose_reply(BOOK, LONG_CLINIC, kind, language)  # type: ignore[arg-type]
    assert sms.segments <= MAX_SEGMENTS
    assert "Saint" in sms.text
    if kind == "help":
        assert "+33 2 35 12 34 56" in sms.text
        assert "STOP" in sms.text


def test_oversized_values_are_shortened_never_the_message() -> None:
    sms = compose_reminder(
        BOOK,
        LONG_CLINIC,
        name="X" * 200,
        language="es",
        timezone="Europe/Madrid",
        starts_at=datetime(2026, 9, 30, 14, 45, tzinfo=UTC),
        location=" ".join(["Pabellón de consultas externas"] * 6),
        provider="Dr. " + "Y" * 180,
    )
    assert sms.segments <= MAX_SEGMENTS
    assert "Pabellon de consultas" in sms.text
    assert "..." in sms.text
    assert "YYYY" not in sms.text  # the provider is the first thing to go
    assert sms.text.endswith("Responda SI para confirmar o NO si no puede venir.")


def test_accents_stay_when_folding_would_not_save_a_segment() -> None:
    sms = compose_reply(
        BOOK, Clinic(name="Clínica Sol", phone="+34 912 345 678"), "confirmed", "es"
    )
    assert sms.text.startswith("Clínica Sol: Gracias")  # 1 UCS-2 segment either way
    assert sms.encoding == "UCS-2"
    assert sms.segments == 1


@pytest.mark.parametrize("language", sorted(BOOK.languages))
def test_no_template_asks_for_an_aws_opt_out_word(language: str) -> None:
    templates = BOOK.languages[language]
    for text in (templates.reminder, templates.help, templates.confirmed, templates.declined):
        upper_words = set(re.findall(r"\b[A-ZÁÉÍÓÚ-]{2,}\b", text))
        assert not upper_words & AWS_OPT_OUT_WORDS, text


def test_a_broken_template_file_is_refused_with_its_reason() -> None:
    good = {
        name: "x" for name in ("reminder", "place", "provider", "help", "confirmed", "declined")
    }
    with pytest.raises(TemplateError, match="missing text 'help'"):
        LanguageTemplates.from_mapping("it", {k: v for k, v in good.items() if k != "help"})
    with pytest.raises(TemplateError, match=r"it\.reminder: unknown placeholders \['nmae'\]"):
        LanguageTemplates.from_mapping("it", good | {"reminder": "Ciao {nmae}"})
