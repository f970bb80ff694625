"""Understanding a patient's SMS reply: the first word, read forgivingly, in en/es/fr.

Pure logic. The text is normalised (Unicode compatibility form, accents, punctuation and
emoji stripped, case-folded) and only its first word decides, so "  Yes!!! 👍" is YES and
"yesterday" or "not yet" are not understood: a reply the system is unsure of goes to staff
rather than being guessed.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass


class Intent(enum.Enum):
    CONFIRM = "confirm"
    DECLINE = "decline"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NOT_UNDERSTOOD = "not_understood"


#: Languages a keyword belongs to; () means language-neutral (digits, AWS keywords):
#: the event then carries the patient's own language.
_Languages = tuple[str, ...]

_KEYWORDS: dict[str, tuple[Intent, _Languages]] = {
    # confirm
    "YES": (Intent.CONFIRM, ("en",)),
    "Y": (Intent.CONFIRM, ("en",)),
    "YEP": (Intent.CONFIRM, ("en",)),
    "YEAH": (Intent.CONFIRM, ("en",)),
    "CONFIRM": (Intent.CONFIRM, ("en",)),
    "CONFIRMED": (Intent.CONFIRM, ("en",)),
    "OK": (Intent.CONFIRM, ()),
    "OKAY": (Intent.CONFIRM, ("en",)),
    "1": (Intent.CONFIRM, ()),
    "SI": (Intent.CONFIRM, ("es",)),  # also "SÍ" once accents are stripped
    "CONFIRMO": (Intent.CONFIRM, ("es",)),
    "CONFIRMAR": (Intent.CONFIRM, ("es",)),
    "CONFIRMADO": (Intent.CONFIRM, ("es",)),
    "OUI": (Intent.CONFIRM, ("fr",)),
    "CONFIRME": (Intent.CONFIRM, ("fr",)),
    "CONFIRMER": (Intent.CONFIRM, ("fr",)),
    # decline
    "NO": (Intent.DECLINE, ("en", "es")),
    "N": (Intent.DECLINE, ("en",)),
    "NOPE": (Intent.DECLINE, ("en",)),
    "2": (Intent.DECLINE, ()),
    "NON": (Intent.DECLINE, ("fr",)),
    # AWS's own opt-out words: AWS opts the number out whatever we do, so we must agree.
    # Hence CANCEL never means "cancel my appointment".
    "ARRET": (Intent.OPT_OUT, ("fr",)),
    "CANCEL": (Intent.OPT_OUT, ()),
    "END": (Intent.OPT_OUT, ()),
    "OPTOUT": (Intent.OPT_OUT, ()),  # also "OPT-OUT" and "opt out"
    "QUIT": (Intent.OPT_OUT, ()),
    "REMOVE": (Intent.OPT_OUT, ()),
    "STOP": (Intent.OPT_OUT, ()),
    "TD": (Intent.OPT_OUT, ()),
    "UNSUBSCRIBE": (Intent.OPT_OUT, ()),
    # opt back in
    "START": (Intent.OPT_IN, ()),
    "UNSTOP": (Intent.OPT_IN, ()),
    # help
    "HELP": (Intent.HELP, ("en",)),
    "AYUDA": (Intent.HELP, ("es",)),
    "AIDE": (Intent.HELP, ("fr",)),
}

#: Words people type in two parts that mean one keyword ("opt out").
_TWO_WORD_KEYWORDS = frozenset({"OPTOUT"})

#: Letters and digits survive; apostrophes and hyphens join ("opt-out" -> OPTOUT);
#: every other character (punctuation, symbols, emoji) separates words.
_JOINERS = re.compile("[-'\u2019\u2010\u2011]")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True, slots=True)
class Understood:
    intent: Intent
    #: The first word as understood, upper case ("SI" for "sí"); "" for a text with no word.
    keyword: str
    #: The languages the keyword belongs to; empty for language-neutral ones.
    languages: _Languages = ()

    def language_for(self, patient_language: str | None, default: str = "en") -> str:
        """The event's language: the keyword's own, else the patient's, else `default`.

        A keyword shared by languages ("NO": en and es) takes the patient's language when
        it is one of them.
        """
        if patient_language is not None and (
            not self.languages or patient_language in self.languages
        ):
            return patient_language
        if self.languages:
            return self.languages[0]
        return default


def words(text: str) -> list[str]:
    """The text's words, normalised: no accents, punctuation or emoji; upper case."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = _JOINERS.sub("", without_marks.casefold())
    return [word.upper() for word in _SEPARATORS.split(folded) if word]


def understand(text: str) -> Understood:
    """What a reply means, from its first word (or the first two, for "opt out")."""
    found = words(text)
    if not found:
        return Understood(Intent.NOT_UNDERSTOOD, "")
    first = found[0]
    if len(found) > 1 and first + found[1] in _TWO_WORD_KEYWORDS:
        first = first + found[1]
    meaning = _KEYWORDS.get(first)
    if meaning is None:
        return Understood(Intent.NOT_UNDERSTOOD, first[:40])
    intent, languages = meaning
    return Understood(intent, first, languages)
