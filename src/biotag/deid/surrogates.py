"""Consistent surrogates: realistic, made-up replacements for PHI.

One :class:`Surrogates` object serves one patient or document key:

* the same original string (ignoring case and spacing) always gets the same surrogate,
  and so does the same word inside names ("Radu" and "Radu Lange" -> "Ortiz" and
  "Ortiz Baker");
* every date moves by one offset of days drawn for the key (:mod:`biotag.deid.dates`),
  so intervals between dates are kept;
* everything is drawn from a RNG seeded by ``(seed, key)``: the same seed gives the same
  output, and without the seed the offset cannot be recomputed (keep it secret);
* nothing needs the network: names and places come from the small lists below, numbers
  from reserved ranges where one exists (555-01xx phone numbers, the TEST-NET IP block
  192.0.2.0/24, example.org addresses), else random digits in the original's layout.

A candidate is refused when it equals, or contains as a whole word, any PHI string
detected in the current document (:class:`Forbidden`): a surrogate never re-introduces
an original. :class:`Surrogates` returns None when no acceptable surrogate is found after a
few draws; the caller then writes the type tag.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Iterable

from biotag.deid.dates import shift_date

FIRST_NAMES = (
    "Abel Ada Alma Amos Anita Arlo Beatrix Bruno Carmen Cecil Clara Dario Delia Edgar Elsa Emil Enzo Esme Felix "
    "Flora Gideon Greta Hugo Ida Igor Ines Ivo Jasper Jonas Judith Kasper Lena Leon Lidia Lorenzo Lucia Magnus "
    "Marta Milo Mira Nadia Nico Nora Odin Olga Oscar Otto Paloma Pavel Petra Quentin Rosa Rufus Sabine Selma "
    "Silas Soren Tamsin Teodor Thea Tobias Ulla Vera Viggo Wanda Xenia Yara Yusuf Zelda Zeno"
).split()
LAST_NAMES = (
    "Abernathy Ashby Baxendale Birchwood Blackwell Brannigan Calloway Cartwright Delacroix Draycott Eastwood "
    "Ellingham Fairbanks Farrington Galloway Greenhalgh Hallworth Hargreaves Ingleby Isherwood Jarrow Kellerman "
    "Kingsley Lachlan Lockwood Marchbank Merriweather Northcott Oakley Ormsby Pemberton Pickering Quarles "
    "Radcliffe Ravenscroft Sandoval Sherwood Stanfield Thackeray Thornbury Underhill Vanderberg Wakefield "
    "Westbrook Whitlock Winterbourne Yardley Zabrowski"
).split()
PLACES = (
    "Ashford Bramley Carrow Dunmore Elmsworth Fairhaven Glenrock Harwich Ivybridge Kelso Larkfield Millbrook "
    "Northam Oakridge Pinecrest Quarry Redmere Stonebridge Thornfield Westmere"
).split()
NAME_WORDS = FIRST_NAMES + LAST_NAMES

_WORD = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_|\s+")


def _case_like(original: str, word: str) -> str:
    if original.isupper() and len(original) > 1:
        return word.upper()
    if original.islower():
        return word.lower()
    return word[:1].upper() + word[1:].lower()


def _restyle(surrogate: str, original: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return surrogate.upper()
    if letters and all(c.islower() for c in letters):
        return surrogate.lower()
    return surrogate


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def key_seed(seed: int | str, key: str) -> int:
    """A 64-bit RNG seed from the secret ``seed`` and a patient/document key."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{key}".encode("utf-8")).digest()[:8], "big")


def draw_offset(rng: random.Random, low: int = 30, high: int = 330) -> int:
    """Days to move dates by: ``low..high`` either way (never a whole year, so a
    year-less "7/22" never maps onto itself)."""
    return rng.randint(low, high) * rng.choice((-1, 1))


class Surrogates:
    """Surrogates for one key; :meth:`get` is consistent across calls."""

    ATTEMPTS = 20

    def __init__(self, key: str, seed: int | str = 0) -> None:
        self.key = key
        self.rng = random.Random(key_seed(seed, key))
        self.date_offset = draw_offset(self.rng)
        self._spans: dict[tuple[str, str], str] = {}
        self._words: dict[str, str] = {}

    # -- public ---------------------------------------------------------------------
    def get(self, original: str, kind: str, forbidden: "Forbidden") -> str | None:
        """The surrogate of ``original`` (a PHI string of type ``kind``), or None when
        none acceptable under ``forbidden`` (the current document's PHI) was drawn."""
        key = (_family(kind), _norm(original))
        known = self._spans.get(key)
        if known is not None:
            known = _restyle(known, original)  # "JONES" after "Jones": same surrogate, upper case
            if forbidden.allows(known, original):
                return known
        for attempt in range(self.ATTEMPTS):
            candidate = self._draw(original, kind, attempt, forbidden)
            if candidate is not None and forbidden.allows(candidate, original):
                self._spans[key] = candidate
                return candidate
        return None

    # -- generation -----------------------------------------------------------------
    def _draw(self, original: str, kind: str, attempt: int, forbidden: "Forbidden") -> str | None:
        family = _family(kind)
        if family == "DATE" and attempt == 0:
            shifted = shift_date(original, self.date_offset)
            if shifted is not None:
                return shifted
        if family == "EMAIL":
            return f"{self.rng.choice(FIRST_NAMES).lower()}.{self.rng.choice(LAST_NAMES).lower()}{self.rng.randint(1, 99)}@example.org"
        if family == "URL":
            return f"https://www.example.org/{self.rng.choice(LAST_NAMES).lower()}"
        if family == "IP":
            return f"192.0.2.{self.rng.randint(1, 254)}"
        if family == "PHONE":
            return self._phone(original)
        if family == "AGE":
            return str(self.rng.randint(90, 104))
        return self._by_shape(original, kind, forbidden, fresh=attempt > 0)

    def _phone(self, original: str) -> str:
        """555-01xx: the North American range kept for fiction, in the original's layout."""
        slots = sum(c.isdigit() for c in original)
        if slots < 10:
            return self._digits_like(original)
        digits = iter(f"{self.rng.randint(201, 989)}55501{self.rng.randint(0, 99):02d}" + "".join(str(self.rng.randint(0, 9)) for _ in range(slots - 10)))
        return "".join(next(digits) if c.isdigit() else c for c in original)

    def _digits_like(self, text: str) -> str:
        out = []
        for i, c in enumerate(text):
            if c.isdigit():
                out.append(str(self.rng.randint(1 if i == 0 or not text[i - 1].isdigit() else 0, 9)))
            else:
                out.append(c)
        return "".join(out)

    def _by_shape(self, original: str, kind: str, forbidden: "Forbidden", fresh: bool) -> str:
        """Word by word: letters -> a name (or place) in the same case, one letter -> a
        letter, digits -> random digits, punctuation and spaces kept."""
        words = PLACES if kind.upper() in ("LOCATION", "ZIP") else NAME_WORDS
        out = []
        for piece in _WORD.findall(original):
            if piece[0].isalpha() and len(piece) > 1:
                out.append(self._word(piece, words, forbidden, fresh))
            elif piece[0].isalpha():
                out.append(_case_like(piece, self.rng.choice("ABCDEFGHJKLMNPRSTVW")))
            elif piece[0].isdigit():
                out.append(self._digits_like(piece))
            else:
                out.append(piece)
        return "".join(out)

    def _word(self, word: str, words: list[str], forbidden: "Forbidden", fresh: bool) -> str:
        key = word.lower()
        known = self._words.get(key)
        if known is None or fresh or known.lower() in forbidden.strings:
            known = self.rng.choice([w for w in words if w.lower() not in forbidden.strings and w.lower() != key] or words)
            self._words[key] = known
        return _case_like(word, known)


def _family(kind: str) -> str:
    kind = kind.upper()
    return {"TIME": "DATE", "DATE_TIME": "DATE", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "FAX": "PHONE"}.get(kind, kind)


class Forbidden:
    """The PHI strings of one document (lower-cased, spacing normalised), and a search for
    any of them as a whole word. Strings without a letter or digit are left out: a span
    of punctuation is replaced, but "-" is no identifier to hunt for elsewhere."""

    def __init__(self, strings: Iterable[str]) -> None:
        self.strings = {_norm(s) for s in strings if any(c.isalnum() for c in s)}
        ordered = sorted(self.strings, key=len, reverse=True)
        # spacing inside a string may differ between occurrences ("Ann  Smith")
        alternatives = [r"\s+".join(re.escape(part) for part in s.split(" ")) for s in ordered]
        self.pattern = re.compile("|".join(rf"(?<!\w)(?:{a})(?!\w)" for a in alternatives), re.IGNORECASE) if ordered else None

    def find(self, text: str) -> list[tuple[int, int]]:
        """Where PHI strings occur in ``text`` as whole words."""
        return [m.span() for m in self.pattern.finditer(text)] if self.pattern is not None else []

    def allows(self, candidate: str, original: str) -> bool:
        """A surrogate that is not empty, not the original and holds no PHI string."""
        if not candidate.strip() or _norm(candidate) == _norm(original) or _norm(candidate) in self.strings:
            return False
        return self.pattern is None or self.pattern.search(candidate) is None
