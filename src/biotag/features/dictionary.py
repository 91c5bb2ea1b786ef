"""Dictionary (gazetteer) matching over normalised words: per-type B/I/O features.

Names and text are compared under the linking module's exact key
(:func:`biotag.linking.normalize.normalize`: case folded, Greek letters spelled out,
British spellings made American, punctuation dropped, ``IL-6`` = ``IL6``). A sentence's
words are normalised one by one and joined into one string whose word boundaries are
known; a name matches where its key starts at a word's start and ends at a word's end.

The keys live in a ``marisa-trie`` (a compact, memory-mappable succinct trie: the 2.6 M
keys of the default dictionaries take tens of MB on disk instead of gigabytes in a
character automaton). At each word start one ``iter_prefixes_with_ids`` call returns every
key that starts there; per entity type the leftmost-longest non-overlapping matches are
kept, so ``breast cancer`` wins over ``breast`` and ``cancer`` for diseases while a gene
name inside it stays a gene match.

Case-aware rules for short and ambiguous names (gene symbols that are English words):

* a key of fewer than two characters, or without a letter, is dropped;
* a one-word *symbol* (an upper-case letter after its first character: ``CAT``, ``WAS``,
  ``MICE``, ``IMPACT``, ``IL-6``, ``NaCl``) matches only the same letters and digits in the
  same case (``CAT``, not ``cat`` or ``Cat``);
* a key whose words are all :data:`COMMON_WORDS` or at most three characters long is
  *ambiguous* (``was``, ``as a``, ``and 3``, ``T cell``, ``rat``): with an upper-case letter
  other than a single word's first (``T cell``) it matches only in the same case; otherwise
  (``was``, MeSH's ``Lead``, the mouse symbol ``Was``, ``rat``) it is dropped when every word
  is common or at most two characters long, and matches in any case if not (``rat``, ``dog``).
* every other name matches in any case.

On disk a matcher is a folder: ``keys.marisa`` (the trie), ``flags.npy`` (per key: the
types it matches in any case, and whether case-sensitive forms exist), ``forms.marisa``
(the case-sensitive forms, each prefixed by its type's index) and ``dictionary.json``
(types, counts, sources). No pickle; both tries are memory-mapped on load.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from biotag.errors import InputError
from biotag.linking.normalize import normalize

O, B, I = 0, 1, 2
MAX_KEY_CHARS = 120  # longer names (gene descriptions, IUPAC strings) are not matched
CASE_SENSITIVE = 0x80  # flag bit: the key has case-sensitive forms (in the JSON side table)
KEYS_FILE, FLAGS_FILE, FORMS_FILE, META_FILE = "keys.marisa", "flags.npy", "forms.marisa", "dictionary.json"
FORMAT_VERSION = 2
RULES_VERSION = 3  # part of the cache key: a change of the rules above builds a new matcher

# English words that are also symbols or names in the dictionaries (gene symbols WAS,
# SET, IMPACT, CAMP; MeSH Lead; cell line and taxon names), and Greek letter names: such
# names need case to count as a match (or, written lower case, are dropped). Chosen from
# the noisiest matches on bern2-benchmark-1k abstracts plus English function words.
COMMON_WORDS = frozenset(
    """
    a an as at be by do go he if in is it me my no of on or so to up us we
    age ago all and any are bad big but can did due end far few for get got had has her him
    his how its key let low man may men min max new nor not now off old one our out own per
    put run saw see set she six ten the too top two use via was way who why yet you
    alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega
    cell collection hybrid maximum minimum permit rare root spot
    able about above after again against also although among another anti aims away back
    based because been before being below best better between both bring called came cannot
    care case cases cause cells change close come common could daily damage data dead deal
    does done down during each early either else ends even ever every face fact fast fine
    first five form found four free from full gave give given goes going good great group
    half hand hard have heart help hence here high hole home hope however impact into just
    keep kind know known large last late later lead least left less level life light like
    line lines little live long look made main major make many mark mass might minor miss
    more most move much must near need never next nine none note only open other over part
    past peak play point poor post rest right role rule said same seen sets seven shall
    short show side since single sink size slow small some soon spring start step still
    such sure take than that their them then there these they thin this those three through
    time times total tube turn type types under unit upon used very wall well were what
    when where which while whole wide will with within without work would year years your
    zero
    """.split()
)


@lru_cache(maxsize=1 << 18)
def word_key(word: str) -> str:
    """A word's normalised form (``""`` for punctuation)."""
    return normalize(word)


@lru_cache(maxsize=1 << 16)
def alnum(text: str) -> str:
    """The letters and digits of ``text``, case kept and Greek letters spelled out in lower
    case (``TNF-α`` = ``TNFalpha``): what a case-sensitive form compares."""
    return "".join(_greek_name(c) or c for c in text if c.isalnum())


def _greek_name(char: str) -> str | None:
    if not "\u0370" <= char <= "\u03ff":
        return None
    name = unicodedata.name(char, "")
    return name.rsplit(" ", 1)[-1].lower() if name.startswith("GREEK") and " WITH " not in name else None


def _form_key(type_index: int, form: str) -> str:
    return chr(48 + type_index) + form


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # first word
    end: int  # one past the last word
    type: str


class DictionaryMatcher:
    """Finds dictionary names in word lists; see the module docstring for the rules."""

    def __init__(self, trie, flags: np.ndarray, types: Sequence[str], forms, info: dict | None = None) -> None:
        """``forms``: a trie of ``chr(48 + type index) + alnum(name)`` of the names that
        match only in their own case."""
        self.trie = trie
        self.flags = flags
        self.types = tuple(types)
        self.forms = forms
        self.info = dict(info or {})

    # -- building ----------------------------------------------------------------------
    @classmethod
    def build(cls, entries: Iterable[tuple[str, str]], types: Sequence[str], *, common_words: Iterable[str] = COMMON_WORDS, info: dict | None = None) -> "DictionaryMatcher":
        """A matcher over ``(name, type)`` pairs; names of types outside ``types`` are skipped."""
        import marisa_trie

        types = tuple(types)
        if not types or len(types) > 7:
            raise InputError(f"a dictionary matcher serves 1 to 7 entity types, got {list(types)}", field="types")
        index = {t: i for i, t in enumerate(types)}
        common = frozenset(common_words)
        any_case: dict[str, int] = {}
        cased: dict[str, dict[int, set[str]]] = {}
        counts = {"names": 0, "dropped": 0, "case_sensitive": 0}
        for name, entity_type in entries:
            t = index.get(entity_type)
            if t is None:
                continue
            counts["names"] += 1
            key = normalize(name)
            if len(key) < 2 or len(key) > MAX_KEY_CHARS or not any(c.isalpha() for c in key):
                counts["dropped"] += 1
                continue
            words = key.split()
            symbol = len(words) == 1 and any(c.isupper() for c in name[1:])
            ambiguous = all(w in common or len(w) <= 3 for w in words)
            # case tells a name from a word unless it is only a capitalised first letter
            # (MeSH's "Lead", the mouse symbol "Was": as likely a sentence start)
            has_case = any(c.isupper() for c in name) and not (len(words) == 1 and name[:1].isupper() and not symbol)
            if symbol or (ambiguous and has_case):
                cased.setdefault(key, {}).setdefault(t, set()).add(alnum(name))
                counts["case_sensitive"] += 1
                continue
            if ambiguous and all(w in common or len(w) <= 2 for w in words):
                counts["dropped"] += 1
                continue
            any_case[key] = any_case.get(key, 0) | (1 << t)
        trie = marisa_trie.Trie(list(any_case.keys() | cased.keys()))
        flags = np.zeros(len(trie), dtype=np.uint8)
        for key, bits in any_case.items():
            flags[trie[key]] |= bits
        for key in cased:
            flags[trie[key]] |= CASE_SENSITIVE
        forms = marisa_trie.Trie([_form_key(t, f) for by_type in cased.values() for t, fs in by_type.items() for f in fs])
        counts["keys"] = len(trie)
        return cls(trie, flags, types, forms, {**(info or {}), "counts": counts})

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.trie.save(str(directory / KEYS_FILE))
        self.forms.save(str(directory / FORMS_FILE))
        np.save(directory / FLAGS_FILE, self.flags)
        meta = {"format": FORMAT_VERSION, "types": list(self.types), **self.info}
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> "DictionaryMatcher":
        """Load a saved matcher (the trie memory-mapped by default: loading is instant and
        processes share the pages)."""
        import marisa_trie

        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise InputError("not a dictionary-feature folder (no dictionary.json)", path=str(directory), field="dictionary")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            trie, forms = marisa_trie.Trie(), marisa_trie.Trie()
            (trie.mmap if mmap else trie.load)(str(directory / KEYS_FILE))
            (forms.mmap if mmap else forms.load)(str(directory / FORMS_FILE))
            flags = np.load(directory / FLAGS_FILE)
            types = meta.pop("types")
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format')}, this biotag reads {FORMAT_VERSION}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"unreadable dictionary features: {error}", path=str(directory), field="dictionary") from None
        if len(flags) != len(trie):
            raise InputError(f"flags.npy has {len(flags)} rows for {len(trie)} keys", path=str(directory), field="dictionary")
        return cls(trie, flags, types, forms, meta)

    # -- matching ----------------------------------------------------------------------
    def matches(self, words: Sequence[str]) -> list[Match]:
        """Leftmost-longest non-overlapping matches per type, sorted by start."""
        text, starts, ends = self._normalised(words)
        if not text:
            return []
        candidates: list[tuple[int, int, int]] = []  # (start word, end word, type bits)
        trie, flags, forms = self.trie, self.flags, self.forms
        for position, first in starts.items():
            if position and text[position - 1] != " ":
                continue  # glued to the word before (IL|6 -> il6): no key starts here
            for key, key_id in trie.iter_prefixes_with_ids(text[position : position + MAX_KEY_CHARS]):
                stop = position + len(key)
                last = ends.get(stop)
                if last is None or (stop < len(text) and text[stop] != " "):
                    continue
                bits = int(flags[key_id])
                if bits & CASE_SENSITIVE:
                    bits &= ~CASE_SENSITIVE
                    written = alnum("".join(words[first : last + 1]))
                    for t in range(len(self.types)):
                        if _form_key(t, written) in forms:
                            bits |= 1 << t
                if bits:
                    candidates.append((first, last + 1, bits))
        out: list[Match] = []
        for t, name in enumerate(self.types):
            mine = sorted(((a, b) for a, b, bits in candidates if bits >> t & 1), key=lambda s: (s[0], -s[1]))
            taken = 0
            for a, b in mine:
                if a >= taken:
                    out.append(Match(a, b, name))
                    taken = b
        out.sort(key=lambda m: (m.start, -m.end, m.type))
        return out

    def features(self, words: Sequence[str]) -> np.ndarray:
        """``uint8 [n_words, n_types]``: per type, O (0), B (1) or I (2) of a match."""
        out = np.zeros((len(words), len(self.types)), dtype=np.uint8)
        index = {t: i for i, t in enumerate(self.types)}
        for m in self.matches(words):
            t = index[m.type]
            out[m.start, t] = B
            out[m.start + 1 : m.end, t] = I
        return out

    @staticmethod
    def _normalised(words: Sequence[str]) -> tuple[str, dict[int, int], dict[int, int]]:
        """The words' keys joined into one string (no space between a word ending in a
        letter and one starting with a digit, as :func:`normalize` does inside a name),
        with the character position where each non-empty word starts and ends."""
        parts: list[str] = []
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        length = 0
        n = len(words)
        i = 0
        while i < n:
            word = words[i]
            if word in ("'", "’") and i + 1 < n and words[i + 1] in ("s", "S"):
                i += 2  # a possessive 's, which names drop too (Alzheimer's disease)
                continue
            key = word_key(word)
            if key:
                if parts:
                    glue = parts[-1][-1].isalpha() and key[0].isdigit()
                    if not glue:
                        parts.append(" ")
                        length += 1
                starts[length] = i
                parts.append(key)
                length += len(key)
                ends[length] = i
            i += 1
        return "".join(parts), starts, ends
