"""``law_checks.unprintable``'s fast path (str.isprintable) answers as the per-character check it short-cuts."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from lrpredict.law_checks import _BIDI, _per_character, unprintable


def _oracle(text: str, multiline: bool, line_separators: bool | None) -> str | None:
    """The per-character check the fast path short-cuts (``law_checks._per_character``)."""
    return _per_character(text, multiline, (not multiline) if line_separators is None else line_separators)


SAMPLES = ["", "plain ascii", "two\nlines\tand a tab", "×≈θ̂ ±0.21 (90%)", "bell\x07", "del\x7f", "nbsp\u00a0x",
           "rtl \u202e override", "line\u2028sep", "para\u2029sep", "surrogate \ud800", "zwsp\u200b"]  # fmt: skip


def test_law_checks_unprintable_fast_path_matches_the_per_character_check_on_samples() -> None:
    for text in SAMPLES:
        for multiline in (True, False):
            for separators in (None, True, False):
                expected = _oracle(text, multiline, separators)
                assert unprintable(text, multiline=multiline, line_separators=separators) == expected, repr(text)


@given(
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    st.booleans(),
    st.sampled_from([None, True, False]),
)
def test_law_checks_unprintable_fast_path_matches_the_per_character_check(
    text: str, multiline: bool, separators: bool | None
) -> None:
    assert unprintable(text, multiline=multiline, line_separators=separators) == _oracle(text, multiline, separators)


def test_law_checks_no_character_isprintable_accepts_is_one_the_check_refuses() -> None:
    """The fast path's premise, over every code point."""
    flagged = {"Cc", "Cs", "Zl", "Zp"}
    wrong = [
        i
        for i in range(0x110000)
        if chr(i).isprintable() and (unicodedata.category(chr(i)) in flagged or chr(i) in _BIDI)
    ]
    assert wrong == []
