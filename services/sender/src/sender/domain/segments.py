"""How many SMS segments a text takes, as the carriers count them (3GPP TS 23.038 / 23.040).

A text made only of GSM 03.38 characters is sent in the 7-bit alphabet: 160 septets in one
segment, 153 per segment once it is split (the user-data header takes the rest). Extension
characters (`€`, `[`, `{`, ...) take two septets (escape + char) and are never split across
segments. Anything else forces UCS-2 for the whole message: 70 UTF-16 code units in one
segment, 67 per part; a surrogate pair (emoji) is never split either.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: GSM 03.38 default alphabet (one septet each). 0x09 is listed as `Ç` in the spec but
#: handsets render it as `ç`'s capital; we only ever emit `Ç` for it.
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table (escape + char: two septets each).
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE: Final = 160
GSM7_MULTI: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI: Final = 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _pack(unit_sizes: list[int], per_part: int) -> int:
    """Parts needed when units of the given sizes are packed without splitting any."""
    parts, used = 1, 0
    for size in unit_sizes:
        if used + size > per_part:
            parts += 1
            used = 0
        used += size
    return parts


def count_segments(text: str) -> SegmentCount:
    if is_gsm7(text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "GSM-7"
    else:
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    units = sum(sizes)
    segments = 1 if units <= single else _pack(sizes, multi)
    return SegmentCount(encoding=encoding, segments=segments, units=units)  # type: ignore[arg-type]


#: Look-alikes for common characters outside GSM-7 that have no accented base letter.
_FOLD_SPECIAL: Final = {
    "\u00a0": " ",  # no-break space (CLDR uses it in dates)
    "\u202f": " ",  # narrow no-break space (CLDR uses it before AM/PM)
    "\u2009": " ",
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "ç": "c",
    "ª": "a",
    "º": "o",
}


def fold_to_gsm7(text: str) -> str:
    """Replace characters outside GSM-7 by their closest GSM-7 look-alike where one exists
    (`á`->`a`, `ê`->`e`, typographic quotes->`'`); characters without one (e.g. CJK,
    emoji) are kept, so the result may still need UCS-2."""
    out: list[str] = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
        elif ch in _FOLD_SPECIAL:
            out.append(_FOLD_SPECIAL[ch])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            out.append(base if base and is_gsm7(base) else ch)
    return "".join(out)


def normalise_spaces(text: str) -> str:
    """CLDR formats contain no-break spaces; a plain space reads the same on a phone and
    keeps an otherwise GSM-7 text out of UCS-2 (which would halve its length)."""
    return text.replace("\u202f", " ").replace("\u00a0", " ").replace("\u2009", " ")
