"""Word-shape features from the original, cased text.

The encoders here are uncased: ``BRCA1``, ``Brca1`` and ``brca1`` reach them as the same
sub-words, and ``CAT`` (catalase) is ``cat``. These binary flags give the model back what
the case and the characters of each word said. They are computed on the word exactly as
it is in the document, never on the tokenizer's normalised form.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

import numpy as np

# flag name -> what it means (the order is the feature layout; append only)
SHAPE_FLAGS: dict[str, str] = {
    "all_caps": "two or more letters, all upper case (BRCA, DNA, TNF)",
    "capitalised": "an upper-case letter followed only by lower-case letters (Aspirin)",
    "lower": "letters, all lower case",
    "mixed_case": "lower-case letters and an upper-case one after the first letter (mRNA, NaCl, hGH, IgG)",
    "single_upper": "one upper-case letter alone (T, B)",
    "has_digit": "contains a digit",
    "all_digits": "only digits",
    "letters_and_digits": "letters and digits (p53, IL6, CD4, HT29)",
    "greek": "a Greek letter, or the name of one as the whole word (α, TNFα, alpha, kappa)",
    "hyphen": "a hyphen or dash, or contains one",
    "punctuation": "no letter or digit at all",
    "roman": "a Roman numeral II-XII other than V and X (type II, class IV)",
    "short": "at most three characters",
    "long": "twelve characters or more",
}
_GREEK_NAMES = frozenset(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega".split()
)
_ROMAN = frozenset("II III IV VI VII VIII IX XI XII".split())  # V and X are too often letters
_HYPHENS = frozenset("-‐‑‒–—―−")


def _is_greek(char: str) -> bool:
    return "\u0370" <= char <= "\u03ff" or unicodedata.name(char, "").startswith("GREEK")


@lru_cache(maxsize=1 << 17)
def word_shape(word: str) -> tuple[int, ...]:
    """The flags of one word, in :data:`SHAPE_FLAGS` order."""
    letters = [c for c in word if c.isalpha() and not _is_greek(c)]  # TNFα is all caps
    upper = sum(c.isupper() for c in letters)
    lower = sum(c.islower() for c in letters)
    digits = sum(c.isdigit() for c in word)
    greek = any(_is_greek(c) for c in word) or word.lower() in _GREEK_NAMES
    mixed = lower >= 1 and any(c.isupper() for c in letters[1:])
    flags = (
        len(letters) >= 2 and lower == 0,
        len(word) >= 2 and word[0].isupper() and lower == len(letters) - 1 and len(letters) == len(word),
        bool(letters) and upper == 0,
        mixed,
        len(word) == 1 and word.isupper(),
        digits > 0,
        digits == len(word) and digits > 0,
        digits > 0 and bool(letters),
        greek,
        any(c in _HYPHENS for c in word),
        not letters and digits == 0,
        word in _ROMAN,
        len(word) <= 3,
        len(word) >= 12,
    )
    return tuple(int(f) for f in flags)


def shape_features(words: Sequence[str]) -> np.ndarray:
    """``uint8 [n_words, len(SHAPE_FLAGS)]``: the shape flags of each word."""
    if not len(words):
        return np.zeros((0, len(SHAPE_FLAGS)), dtype=np.uint8)
    return np.array([word_shape(w) for w in words], dtype=np.uint8)
