"""Readings of a composite mention: one mention, several concepts.

"breast and ovarian cancer" names two diseases, "BRCA1/2" two genes, "spinocerebellar
ataxias 1 and 2" two ataxias. :func:`readings` proposes the ways a mention can be cut
into the names it abbreviates; the linker links every part of every reading and keeps
a reading only when all its parts link better than the whole mention does, so a name
that merely contains "and" ("hand, foot and mouth disease") stays whole.

Conjuncts are separated by ``,``, ``;``, ``and``, ``or``, ``and/or``, ``&``, ``as well
as``. With conjuncts ``c1 … cn``:

* *shared head* -- the last conjunct's trailing words complete the others: "breast,
  brain and kidney cancer" -> breast cancer, brain cancer, kidney cancer; "beta
  adrenergic and muscarinic receptors blockade" -> beta adrenergic receptors blockade...
  (every head length is proposed);
* *shared modifier* -- the first conjunct's leading words complete the others:
  "colorectal adenomas and carcinoma" -> colorectal adenomas, colorectal carcinoma;
  "spinocerebellar ataxias 1 and 2" -> spinocerebellar ataxias 1, spinocerebellar ataxias 2;
* *plain* -- the conjuncts as they are: "HIV and AIDS".

A word with a slash is read as alternatives: "BRCA1/2" -> BRCA1, BRCA2 (a bare number
after the slash takes the letters before the first one's number), "ER/PR status" ->
ER status, PR status.
"""

from __future__ import annotations

import re

_CONJUNCTION = re.compile(r"\s*(?:,|;|\band/or\b|\bas well as\b|\band\b|\bor\b|&)\s*", re.IGNORECASE)
_COMPOSITE_HINT = re.compile(r"[,;/&]|\band\b|\bor\b|\bas well as\b", re.IGNORECASE)
_DETERMINERS = {"the", "a", "an", "both", "either"}
_LETTERS_NUMBER = re.compile(r"(.*?\D)(\d+[a-zA-Z]?)$")
MAX_PARTS = 8


def maybe_composite(mention: str) -> bool:
    """Whether the mention has a coordination or a slash at all (cheap pre-check)."""
    return bool(_COMPOSITE_HINT.search(mention))


def _words(text: str) -> list[str]:
    words = text.split()
    while words and words[0].lower() in _DETERMINERS:
        words = words[1:]
    return words


def _conjuncts(mention: str) -> list[list[str]]:
    parts = [_words(p) for p in _CONJUNCTION.split(mention)]
    return [p for p in parts if p]


def _coordination_readings(mention: str) -> list[list[str]]:
    conjuncts = _conjuncts(mention)
    if not 2 <= len(conjuncts) <= MAX_PARTS:
        return []
    readings = [[" ".join(c) for c in conjuncts]]
    first, last = conjuncts[0], conjuncts[-1]
    for head_length in range(1, len(last)):
        head = last[-head_length:]
        readings.append([" ".join(c + head) for c in conjuncts[:-1]] + [" ".join(last)])
    for modifier_length in range(1, len(first)):
        modifier = first[:modifier_length]
        # "ataxias 1 and 2": the later conjuncts replace the first one's tail
        readings.append([" ".join(first)] + [" ".join(modifier + c) for c in conjuncts[1:]])
    return readings


def _slash_alternatives(word: str) -> list[str] | None:
    if "/" not in word or word.lower() == "and/or":
        return None
    pieces = [p for p in word.split("/") if p]
    if not 2 <= len(pieces) <= MAX_PARTS:
        return None
    stem = _LETTERS_NUMBER.fullmatch(pieces[0])
    out = [pieces[0]]
    for piece in pieces[1:]:
        # BRCA1/2 -> BRCA2; IL-4/IL-13 keeps IL-13
        out.append(stem[1] + piece if stem and piece[0].isdigit() and len(piece) <= 3 else piece)
    return out


def _slash_readings(mention: str) -> list[list[str]]:
    words = mention.split()
    readings = []
    for i, word in enumerate(words):
        alternatives = _slash_alternatives(word)
        if alternatives:
            readings.append([" ".join(words[:i] + [alt] + words[i + 1 :]) for alt in alternatives])
            if len(words) > 1:
                readings.append(alternatives)
    return readings


def readings(mention: str) -> list[list[str]]:
    """The ways to read ``mention`` as several names (each reading is a list of two or
    more parts, distinct readings, no empty parts); empty when it is not composite."""
    if not maybe_composite(mention):
        return []
    seen: set[tuple[str, ...]] = set()
    out = []
    for reading in _coordination_readings(mention) + _slash_readings(mention):
        parts = tuple(p.strip(" ,;") for p in reading)
        if len(parts) >= 2 and all(parts) and parts not in seen:
            seen.add(parts)
            out.append(list(parts))
    return out
