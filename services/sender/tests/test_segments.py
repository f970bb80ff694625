from __future__ import annotations

import pytest

from sender.domain.segments import count_segments, fold_to_gsm7

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("é" * 160, "GSM-7", 1),  # é is in the GSM-7 basic table
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("á" * 70, "UCS-2", 1),  # á is not GSM-7: the whole text goes UCS-2
        ("á" * 71, "UCS-2", 2),
        ("á" * 134, "UCS-2", 2),
        ("á" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # a surrogate pair is two code units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments_follow_gsm7_and_ucs2_limits(text: str, encoding: str, segments: int) -> None:
    counted = count_segments(text)
    assert (counted.encoding, counted.segments) == (encoding, segments)


def test_an_extension_character_is_not_split_across_segments() -> None:
    # 152 plain septets + '€' (2 septets) cannot share the first 153-septet part.
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3


def test_a_single_non_gsm_character_switches_to_ucs2() -> None:
    assert count_segments("Hello José").encoding == "GSM-7"
    assert count_segments("Hello María").encoding == "UCS-2"


def test_folding_keeps_gsm_accents_and_replaces_the_others() -> None:
    assert fold_to_gsm7("María Sánchez, ¿SÍ? café à Noël façade") == (
        "Maria Sanchez, ¿SI? café à Noel facade"
    )
    assert fold_to_gsm7("3:30\u202fPM \u2013 l\u2019été\u2026") == "3:30 PM - l'été..."
    assert fold_to_gsm7("王小明") == "王小明"  # nothing close in GSM-7: kept
