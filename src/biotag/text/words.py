"""Word tokenisation with character offsets, the way the biomedical NER corpora tokenise.

The sentence-level benchmarks in ``data/ner`` that come from the MTL-Bioinformatics-2016
release (BC2GM, NCBI-disease, BC5CDR, LINNAEUS) cut text into maximal runs of letters
and digits, and make every other non-space character a token of its own: ``IL-2`` is
``IL - 2``, ``(p53)`` is ``( p53 )``, ``5'-UTR`` is ``5 ' - UTR``, ``2.5`` is ``2 . 5``,
``Na+/K+`` is ``Na + / K +``. That rule alone reproduces every token of BC2GM,
NCBI-disease and BC5CDR (LINNAEUS keeps a few symbol runs such as ``+/-`` whole).
(JNLPBA and S800 keep hyphenated words whole; our words are a refinement of theirs, so
their entity boundaries still fall on our word boundaries.)

Our models predict one label per word, so every entity boundary must be a word boundary.
With the rule above alone, 0.13 % of the mention boundaries of the document-level corpora
(NCBI-disease, BC5CDR, BioRED, GNormPlus, S800, BioID, NLM-Gene) and 2.7 % of NLM-Chem's
fall inside a word. Splitting letter/digit or lower/upper transitions everywhere would
fix few of them and shatter many words (``BRCA1``, ``p53``, ``mRNA``: up to 1.5 % of all
corpus tokens), so only four affixes that glue an entity to a modifier are split off,
each rarely firing elsewhere: a protein-change suffix (``PTPN22R620W``, ``KrasG12D``,
``rtM204V``), a knockout suffix (``ARKO``, ``Wt1cKO``), a deletion suffix
(``CCR5Delta32``, ``rDEN2Delta30``) and amino-acid residues (``Ser326Cys``, ``Asn136``).
That leaves 0.015 % (NCBI-disease), 0.026 % (BC5CDR), 0.044 % (BioRED), 0.048 %
(GNormPlus), 0.027 % (S800), 0 % (BioID), 0.33 % (NLM-Gene) and 0.57 % (NLM-Chem)
misaligned, mostly annotation quirks (mentions that end inside a word, ``disorde|r``;
glued words with a missing space; ``CD4+CD11ahi`` cell-marker strings), while 99.96 %
of the tokens of BC2GM, NCBI-disease and BC5CDR are still reproduced (the others are
mutation tokens such as ``Arg95Stop``).

Offsets are ``(start, end)`` pairs, ``end`` exclusive, into the text that was passed in.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Sequence

import numpy as np

from biotag.errors import InputError

WordSpans = list[tuple[int, int]]
Pairs = Sequence[tuple[int, int]] | np.ndarray  # (start, end) pairs, or an (n, 2) array

# A run of letters/digits (any script; underscore excluded because the corpora split it
# off), or any single other non-space character.
_WORD = re.compile(r"[^\W_]+|\S")

# Places inside a letter/digit run where an entity boundary usually is. Each alternative
# consumes the character before the split point, so the split is at ``match.end()``;
# ``(?![^\W_])`` means "at the end of the letter/digit run".
_AMINO_ACID = "ACDEFGHIKLMNPQRSTVWY"
_AMINO_ACID_3 = "Ala|Arg|Asn|Asp|Cys|Gln|Glu|Gly|His|Ile|Leu|Lys|Met|Phe|Pro|Ser|Thr|Trp|Tyr|Val"
_INNER_SPLIT = re.compile(
    # gene + protein change: PTPN22|R620W, Kras|G12D, rt|M204V (not MCF10A: needs a
    # lowercase letter or a digit before the change, and two or more digits in it)
    rf"[a-z0-9](?=[{_AMINO_ACID}]\d{{2,}}[{_AMINO_ACID}](?![^\W_]))"
    # amino-acid residues, chemicals in NLM-Chem: Ser|326|Cys, Asn|136, Arg|95|Ter (not
    # Valine2, nor the mouse gene Trp53)
    rf"|(?<![^\W_])(?!Trp53(?!\d))(?:{_AMINO_ACID_3})(?=\d)|\d(?=(?:{_AMINO_ACID_3}|Ter|Stop)(?![^\W_]))"
    # gene + knockout: AR|KO, STAT6|KO, Wt1|cKO (two characters before, so RKO stays whole)
    r"|(?<=[^\W_])[^\W_](?<!c)(?=c?KO(?![^\W_]))"
    # gene + deletion: CCR5|Delta32, rDEN2|Delta30, VV|DeltaK3L (not PKCdelta)
    r"|[0-9A-Z](?=Delta)|[0-9](?=delta)"
)


def check_region(text: str, start: int, end: int | None) -> int:
    """The region's end (``len(text)`` for ``None``); raises InputError naming the bad bound
    when ``[start, end)`` is not inside the text."""
    n = len(text)
    end = n if end is None else end
    if not (0 <= start <= end <= n):
        bad = "start" if not 0 <= start <= n else "end"
        raise InputError(f"region [{start}, {end}) is not inside the text (0..{n})", field=bad)
    return end


def word_spans(text: str, start: int = 0, end: int | None = None) -> WordSpans:
    """Word tokens of ``text[start:end]`` as ``(start, end)`` offsets into ``text``.

    The region is tokenised as if it were the whole string, so a word that crosses
    ``start`` or ``end`` is cut there; every non-space character of the region lies in
    exactly one word.
    """
    end = check_region(text, start, end)
    region = text if (start == 0 and end == len(text)) else text[start:end]
    spans = [m.span() for m in _WORD.finditer(region)]
    splits = [m.end() for m in _INNER_SPLIT.finditer(region)]
    if splits:
        spans = _split_at(spans, splits)
    if start:
        spans = [(s + start, e + start) for s, e in spans]
    return spans


def _split_at(spans: WordSpans, splits: list[int]) -> WordSpans:
    """``spans`` with the words that contain a split position cut there (splits sorted)."""
    out: WordSpans = []
    done = 0  # spans[:done] are copied to out already
    i = 0
    while i < len(splits):
        k = bisect_right(spans, splits[i], key=_start) - 1  # the word holding splits[i]
        s, e = spans[k]
        out.extend(spans[done:k])
        cuts = []
        while i < len(splits) and splits[i] < e:
            if splits[i] > s:
                cuts.append(splits[i])
            i += 1
        for c in cuts:
            out.append((s, c))
            s = c
        out.append((s, e))
        done = k + 1
    out.extend(spans[done:])
    return out


def words(text: str, start: int = 0, end: int | None = None) -> list[str]:
    """The word strings of :func:`word_spans`."""
    return [text[s:e] for s, e in word_spans(text, start, end)]


# -- mapping between character and word offsets ----------------------------------------


def char_span_to_word_span(word_offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """Indices ``(i, j)`` (``j`` exclusive) of the words that overlap ``[start, end)``.

    A span that begins or ends inside a word covers that whole word. ``None`` when the
    span overlaps no word (it is empty or lies in whitespace). ``word_offsets`` must be
    sorted and non-overlapping, as :func:`word_spans` returns them.
    """
    i = bisect_right(word_offsets, start, key=_end)  # first word ending after start
    j = bisect_left(word_offsets, end, key=_start)  # first word starting at or after end
    return (i, j) if i < j else None


def word_span_to_char_span(word_offsets: Sequence[tuple[int, int]], i: int, j: int) -> tuple[int, int]:
    """Character span ``(start, end)`` of words ``i..j-1``."""
    if not (0 <= i < j <= len(word_offsets)):
        raise InputError(f"word span [{i}, {j}) is empty or outside the {len(word_offsets)} words", field="word span")
    return word_offsets[i][0], word_offsets[j - 1][1]


def char_spans_to_word_spans(word_offsets: Pairs, spans: Pairs) -> np.ndarray:
    """:func:`char_span_to_word_span` for many spans at once: an ``(m, 2)`` int array of
    ``(i, j)``; rows with ``i == j`` are spans that cover no word."""
    offsets = _as_pairs(word_offsets)
    queries = _as_pairs(spans)
    i = np.searchsorted(offsets[:, 1], queries[:, 0], side="right")
    j = np.searchsorted(offsets[:, 0], queries[:, 1], side="left")
    j = np.maximum(i, j)
    return np.stack([i, j], axis=1)


def word_spans_to_char_spans(word_offsets: Pairs, spans: Pairs) -> np.ndarray:
    """:func:`word_span_to_char_span` for many word spans at once: an ``(m, 2)`` int array."""
    offsets = _as_pairs(word_offsets)
    queries = _as_pairs(spans)
    n = len(offsets)
    bad = (queries[:, 0] < 0) | (queries[:, 0] >= queries[:, 1]) | (queries[:, 1] > n)
    if bad.any():
        i, j = queries[np.argmax(bad)]
        raise InputError(f"word span [{i}, {j}) is empty or outside the {n} words", field="word span")
    return np.stack([offsets[queries[:, 0], 0], offsets[queries[:, 1] - 1, 1]], axis=1)


def _as_pairs(values: Pairs) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1, 2)


def _start(span: tuple[int, int]) -> int:
    return span[0]


def _end(span: tuple[int, int]) -> int:
    return span[1]
