"""The reply parser: what a patient's messy SMS means."""

from __future__ import annotations

import pytest

from inbound.domain.keywords import Intent, understand, words

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "intent", "keyword", "languages"),
    [
        # confirm, en / es / fr, messy
        ("  Yes!!! 👍", Intent.CONFIRM, "YES", ("en",)),
        ("yes", Intent.CONFIRM, "YES", ("en",)),
        ("YES see you then", Intent.CONFIRM, "YES", ("en",)),
        ("y", Intent.CONFIRM, "Y", ("en",)),
        ("Y.", Intent.CONFIRM, "Y", ("en",)),
        ("1", Intent.CONFIRM, "1", ()),
        ("1️⃣", Intent.CONFIRM, "1", ()),
        ("Confirm", Intent.CONFIRM, "CONFIRM", ("en",)),
        ("sí", Intent.CONFIRM, "SI", ("es",)),
        ("SI", Intent.CONFIRM, "SI", ("es",)),
        ("¡Sí, gracias!", Intent.CONFIRM, "SI", ("es",)),
        ("Confirmo", Intent.CONFIRM, "CONFIRMO", ("es",)),
        ("oui.", Intent.CONFIRM, "OUI", ("fr",)),
        ("OUI merci", Intent.CONFIRM, "OUI", ("fr",)),
        ("Confirmé", Intent.CONFIRM, "CONFIRME", ("fr",)),
        ("\tyes\n", Intent.CONFIRM, "YES", ("en",)),
        # decline
        ("No", Intent.DECLINE, "NO", ("en", "es")),
        ("no, lo siento", Intent.DECLINE, "NO", ("en", "es")),
        ("n", Intent.DECLINE, "N", ("en",)),
        ("2", Intent.DECLINE, "2", ()),
        ("Non", Intent.DECLINE, "NON", ("fr",)),
        ("non!!", Intent.DECLINE, "NON", ("fr",)),
        # every AWS opt-out word
        ("stop", Intent.OPT_OUT, "STOP", ()),
        ("STOP.", Intent.OPT_OUT, "STOP", ()),
        ("Arrêt", Intent.OPT_OUT, "ARRET", ("fr",)),
        ("ARRET", Intent.OPT_OUT, "ARRET", ("fr",)),
        ("cancel", Intent.OPT_OUT, "CANCEL", ()),
        ("End", Intent.OPT_OUT, "END", ()),
        ("opt-out", Intent.OPT_OUT, "OPTOUT", ()),
        ("OPT-OUT", Intent.OPT_OUT, "OPTOUT", ()),
        ("optout", Intent.OPT_OUT, "OPTOUT", ()),
        ("opt out", Intent.OPT_OUT, "OPTOUT", ()),
        ("Quit", Intent.OPT_OUT, "QUIT", ()),
        ("remove me", Intent.OPT_OUT, "REMOVE", ()),
        ("td", Intent.OPT_OUT, "TD", ()),
        ("Unsubscribe", Intent.OPT_OUT, "UNSUBSCRIBE", ()),
        # opt in
        ("start", Intent.OPT_IN, "START", ()),
        ("UNSTOP", Intent.OPT_IN, "UNSTOP", ()),
        # help
        ("help", Intent.HELP, "HELP", ("en",)),
        ("HELP?", Intent.HELP, "HELP", ("en",)),
        ("ayuda", Intent.HELP, "AYUDA", ("es",)),
        ("Aide", Intent.HELP, "AIDE", ("fr",)),
    ],
)
def test_keywords_are_read_from_the_first_word(
    text: str, intent: Intent, keyword: str, languages: tuple[str, ...]
) -> None:
    understood = understand(text)
    assert (understood.intent, understood.keyword, understood.languages) == (
        intent,
        keyword,
        languages,
    )


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("not yet", "NOT"),
        ("yesterday", "YESTERDAY"),
        ("Yesss", "YESSS"),
        ("nothing", "NOTHING"),
        ("12", "12"),
        ("Can I come at 3pm instead?", "CAN"),
        ("stopped by yesterday", "STOPPED"),
        ("I said yes", "I"),
        ("please cancel my appointment", "PLEASE"),
        ("", ""),
        ("   ", ""),
        ("👍", ""),
        ("!!!", ""),
    ],
)
def test_free_text_is_not_understood(text: str, keyword: str) -> None:
    understood = understand(text)
    assert understood.intent is Intent.NOT_UNDERSTOOD
    assert understood.keyword == keyword


def test_words_strip_accents_punctuation_and_emoji() -> None:
    assert words("  ¡Sí! 👍 d'accord, À bientôt…") == ["SI", "DACCORD", "A", "BIENTOT"]


@pytest.mark.parametrize(
    ("text", "patient_language", "expected"),
    [
        ("oui", "en", "fr"),  # the keyword's own language wins
        ("sí", None, "es"),
        ("no", "es", "es"),  # shared by en and es: the patient's, when it is one of them
        ("no", "fr", "en"),
        ("no", None, "en"),
        ("stop", "fr", "fr"),  # language-neutral: the patient's
        ("1", "es", "es"),
        ("1", None, "en"),  # unknown number, neutral keyword: the default
        ("whatever", "es", "es"),
    ],
)
def test_event_language_is_the_keywords_else_the_patients(
    text: str, patient_language: str | None, expected: str
) -> None:
    assert understand(text).language_for(patient_language) == expected
