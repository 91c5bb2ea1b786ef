"""String normalisation for dictionary lookup: one key for the many ways a name is written.

Two keys are built from a name:

* :func:`normalize` -- the *exact* key: Unicode compatibility forms folded (``ﬁ`` ->
  ``fi``, ``µ`` -> ``μ``), Greek letters spelled out as words (``TNF-α`` -> ``tnf
  alpha``), accents stripped, lower case, possessive ``'s`` dropped (``Alzheimer's``
  -> ``alzheimer``), British spellings made American (``tumour``, ``haemorrhage``,
  ``oesophageal``, ``anaemia`` -> ``tumor``, ``hemorrhage``, ``esophageal``, ``anemia``),
  every other character that is not a letter or digit turned into a space, spaces
  collapsed, and a space between a word and the digits after it dropped (``HT-29`` =
  ``HT29``, ``IL-6`` = ``IL6``, ``RPE-1`` = ``RPE1``: gene and cell-line names are
  written both ways). Names equal under this key are the same name.
* :func:`loose_key` -- the *variant* key, from the exact key: words split between
  letters and digits (``il6`` = ``il 6``), plurals made singular (``tumors`` ->
  ``tumor``, ``deficiencies`` -> ``deficiency``), Roman numerals 2-10 read as digits
  (``type ii`` = ``type 2``), filler words dropped (``of``, ``the``, ``with``...) and
  the words sorted, so ``Cancer of the Breast``, ``breast cancers`` and MeSH's inverted
  ``Cancer, Breast`` share one key.

Both are pure functions of the string, applied the same way to dictionary names at
index time and to mentions at query time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters NFKD does not decompose into a base letter plus marks.
_TRANSLITERATION = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "ı": "i"})
_POSSESSIVE = re.compile(r"(?<=\w)['’`]s\b")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD_SPACE_DIGITS = re.compile(r"(?<=[a-z]) (?=[0-9])")

# British -> American spellings found in biomedical names (MeSH and MEDIC write
# American, abstracts often British). Applied to whole words' parts, longest first.
_SPELLINGS = (
    ("oesophag", "esophag"),
    ("oestr", "estr"),
    ("oedem", "edem"),
    ("haem", "hem"),
    ("aemia", "emia"),
    ("aemic", "emic"),
    ("anaesth", "anesth"),
    ("ischaem", "ischem"),
    ("leukaem", "leukem"),
    ("paed", "ped"),
    ("gynaec", "gynec"),
    ("foet", "fet"),
    ("caesar", "cesar"),
    ("diarrhoe", "diarrhe"),
    ("dyspnoe", "dyspne"),
    ("coeliac", "celiac"),
    ("tumour", "tumor"),
    ("colour", "color"),
    ("behaviour", "behavior"),
    ("sulph", "sulf"),
    ("aluminium", "aluminum"),
    ("isation", "ization"),
)
_SPELLING = re.compile("|".join(british for british, _ in _SPELLINGS))
_AMERICAN = dict(_SPELLINGS)

_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10"}
# Words that change nothing about which concept a name denotes.
FILLER_WORDS = frozenset("of the a an in with to for by on due nos".split())
# Singular forms that -s rules get wrong, and words ending in s that are not plurals.
_SINGULAR = {"children": "child", "feet": "foot", "teeth": "tooth", "men": "man", "women": "woman", "mice": "mouse", "lice": "louse", "data": "datum"}
_NOT_PLURAL_ENDINGS = ("ss", "us", "is", "os", "as", "ys", "xs")


def _greek_name(char: str) -> str | None:
    """``alpha`` for α or Α (from the Unicode name), None for other characters."""
    try:
        name = unicodedata.name(char)
    except ValueError:
        return None
    if name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")) and " WITH " not in name:
        return name.rsplit(" ", 1)[-1].lower()
    return None


_GREEK = {chr(code): f" {name} " for code in range(0x370, 0x400) if (name := _greek_name(chr(code)))}
_GREEK_TABLE = str.maketrans(_GREEK)


def normalize(text: str) -> str:
    """The exact lookup key of a name (see the module docstring); ``""`` when nothing
    alphanumeric is left."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_GREEK_TABLE).translate(_TRANSLITERATION)
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _POSSESSIVE.sub("", text.lower())
    text = _WORD_SPACE_DIGITS.sub("", _NOT_ALNUM.sub(" ", text).strip())
    if _SPELLING.search(text):
        text = _SPELLING.sub(lambda m: _AMERICAN[m[0]], text)
    return text


def singular(word: str) -> str:
    """An English noun's singular, by suffix rules good enough for lookup keys."""
    if word in _SINGULAR:
        return _SINGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_NOT_PLURAL_ENDINGS):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-1]


_PLURAL = {singular: plural for plural, singular in _SINGULAR.items()} | {"fish": "fish", "sheep": "sheep", "deer": "deer"}


def plural(word: str) -> str:
    """An English noun's plural (``mouse`` -> ``mice``, ``fly`` -> ``flies``)."""
    lower = word.lower()
    if lower in _PLURAL:
        return word[: len(word) - len(lower)] + _PLURAL[lower] if word.islower() else _PLURAL[lower]
    if lower.endswith("y") and len(lower) > 2 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


@lru_cache(maxsize=65536)
def _loose_word(word: str) -> str:
    return _ROMAN.get(word) or singular(word)


def loose_tokens(normalized: str) -> list[str]:
    """The words of a normalised name as the variant key sees them: split at
    letter/digit boundaries, singular, Roman numerals as digits, filler words dropped
    (unless nothing else is left)."""
    words = _LETTER_DIGIT.sub(" ", normalized).split()
    kept = [_loose_word(w) for w in words if w not in FILLER_WORDS]
    return kept or [_loose_word(w) for w in words]


def loose_key(normalized: str) -> str:
    """The variant key of an already normalised name: its :func:`loose_tokens`, sorted."""
    return " ".join(sorted(loose_tokens(normalized)))


def keys(text: str) -> tuple[str, str]:
    """``(normalize(text), loose_key(normalize(text)))``."""
    exact = normalize(text)
    return exact, loose_key(exact)
