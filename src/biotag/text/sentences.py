"""Rule-based sentence splitting with character offsets, tuned for biomedical text.

:func:`split_sentences` never changes the text: it returns ``(start, end)`` offsets into
it, trimmed of whitespace. It breaks

* always at a blank line, and at a line break that ends a paragraph (every line break
  except a hard wrap: a line that does not end in ``.?!:`` followed by one that starts
  in lowercase);
* at ``.``, ``?`` or ``!`` (possibly repeated, possibly followed by closing quotes or
  brackets) followed by whitespace, when the next sentence starts with an uppercase
  letter, an opening bracket or a quote; after a full stop, not when the word before it
  is an abbreviation (``e.g.``, ``et al.``, ``Fig.``, ``spp.``, ``Ph.D.``, ``J. Biol.
  Chem.``...), a single-letter initial (``J. Smith``, ``p. Glu104X``) or a list number
  opening the sentence (``4. Blood pressure``). A capital after a lowercase word
  (``hepatitis B. The``) and a lowercase unit after a number (``24 h. In``) do end one;
* before a lowercase letter only after a plain word (``...deficiency. beta-Glucuronidase``:
  gene and chemical names may start a sentence in lowercase), never after an
  abbreviation-like word (``approx. two``, ``E. coli``, ``i.v. injection``); and before a
  digit only after a plain word, never after a number (``0. 86``, decimals split by a
  stray space as in the NCBI disease corpus); ``?`` and ``!`` break before any letter,
  digit, bracket or quote.

Decimals, EC numbers and dotted names (``2.5``, ``1.2.3.4``, ``Na.K-ATPase``) have no
space after the dot and are never candidates. ``max_chars`` cuts over-long sentences at
whitespace so that downstream models see bounded input.

One pass of a compiled regex finds the candidates; the checks are a few set look-ups
each, so splitting runs at well over 1 MB of text per second.
"""

from __future__ import annotations

import re

from biotag.errors import InputError
from biotag.text.words import check_region

SentenceSpans = list[tuple[int, int]]

# Abbreviations (without their final full stop) after which a full stop does not end a
# sentence even when a capitalised word follows. Case-sensitive: "No." but not "no.".
# Units (mg., min.) are left out on purpose: they often do end a sentence.
ABBREVIATIONS = frozenset(
    """
    e.g i.e et al cf ca vs viz approx resp ref refs Ref Refs Eq Eqs eq eqs Fig Figs fig figs
    Tab Tabs Suppl No Nos Vol vol pp Dr Drs Prof Mr Mrs Ms St Jr Sr Ph.D M.D U.S U.K U.S.A
    sp spp var subsp ssp cv aff Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
    """.split()
)

# Abbreviated journal-title words of citations inside abstracts ("J. Biol. Chem. 273",
# "Proc. Natl. Acad. Sci."): none of them is an English word that ends a sentence.
JOURNAL_ABBREVIATIONS = frozenset(
    """
    Acad Am Ann Arch Biochem Biol Biophys Br Chem Clin Endocrinol Engl Eur Exp Genet Hum
    Immunol Int Invest Lett Med Metab Mol Nat Natl Neurobiol Neurol Neurosci Oncol Pathol
    Pharmacol Physiol Proc Res Rev Sci
    """.split()
)

_NOT_SENTENCE_FINAL = ABBREVIATIONS | JOURNAL_ABBREVIATIONS

# Abbreviations that may end a sentence ("... gen. nov., sp. nov. The type strain") but
# are continued when a lowercase word follows them ("gen. nov.", "nov. spec.").
LOWERCASE_CONTINUED = frozenset("gen nov spec comb fam ord incl conc".split())

_OPENERS = "([{\"'“‘«"
_CLOSERS = ")]}\"'”’»"
# Full stop/question/exclamation marks, closing quotes or brackets, then whitespace.
_CANDIDATE = re.compile(rf"[.?!]+[{re.escape(_CLOSERS)}]*\s+")
_LINE_BREAK = re.compile(r"[ \t\f\v]*(?:\r\n|\r|\n)\s*")
_SENTENCE_FINAL = ".?!:"
_LONGEST_WORD_LOOKED_AT = 40

# A list item number or section numeral that opens a sentence.
_ENUMERATOR = re.compile(r"\d{1,3}|[IVX]{1,4}")

# A number that can start a sentence: a list number ("2. The"), a count ("25 patients"),
# a name ("17beta-Estradiol", "5-HTP"), unlike the second half of a decimal broken by a
# stray space ("than. 005)", "interval. 04-. 28").
_NUMBERED_OR_COUNT = re.compile(r"\d+(?:\.\s|\s+[^\W\d_]|-?[^\W\d_])")

# The next initial of a name ("R. D. Klausner").
_INITIAL = re.compile(r"\s+[A-Z]\.")


def split_sentences(text: str, start: int = 0, end: int | None = None, *, max_chars: int | None = None) -> SentenceSpans:
    """Sentence spans of ``text[start:end]`` as ``(start, end)`` offsets into ``text``.

    Spans are ordered, non-overlapping, trimmed of whitespace and never empty; every
    non-space character of the region is in exactly one of them. With ``max_chars``, a
    sentence longer than that is cut at the last whitespace that keeps the piece within
    ``max_chars`` (at the limit itself when a piece has no whitespace).
    """
    end = check_region(text, start, end)
    if max_chars is not None and max_chars < 1:
        raise InputError(f"max_chars must be at least 1, got {max_chars}", field="max_chars")
    spans: SentenceSpans = []
    for p_start, p_end in _paragraphs(text, start, end):
        spans.extend(_split_paragraph(text, p_start, p_end))
    if max_chars is not None:
        spans = [piece for span in spans for piece in _cut_long(text, span, max_chars)]
    return spans


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Trimmed, non-empty paragraph spans of the region, cut at paragraph-ending line breaks."""
    out = []
    p_start = start
    for m in _LINE_BREAK.finditer(text, start, end):
        before = text[m.start() - 1] if m.start() > start else ""
        after = text[m.end()] if m.end() < end else ""
        blank_line = m.group().count("\n") + m.group().count("\r") - m.group().count("\r\n") > 1
        hard_wrap = not blank_line and before and before not in _SENTENCE_FINAL and after.islower()
        if not hard_wrap:
            out.append((p_start, m.start()))
            p_start = m.end()
    out.append((p_start, end))
    return [t for t in (_trim(text, s, e) for s, e in out) if t]


def _split_paragraph(text: str, start: int, end: int) -> SentenceSpans:
    out = []
    s_start = start
    for m in _CANDIDATE.finditer(text, start, end):
        next_start = m.end()
        if next_start >= end:
            break
        if _is_boundary(text, m.start(), next_start, s_start, end):
            out.append(_trim(text, s_start, next_start))
            s_start = next_start
    out.append(_trim(text, s_start, end))
    return [t for t in out if t]


def _is_boundary(text: str, punct: int, next_start: int, sentence_start: int, end: int) -> bool:
    """Whether the punctuation at ``punct`` (followed by whitespace, then the character at
    ``next_start``) ends a sentence; nothing before ``sentence_start`` or from ``end`` on
    is looked at, so a region splits as if it were the whole text."""
    following = text[next_start]
    opens_sentence = following.isupper() or following in _OPENERS
    if text[punct] != ".":  # ? or !: no abbreviation ends in them
        return opens_sentence or following.isalnum()
    word_start = _word_start(text, punct, sentence_start)
    word = text[word_start:punct].lstrip(_OPENERS)
    if word_start == sentence_start and _ENUMERATOR.fullmatch(word):  # "4. Blood...", "III. The..."
        return False
    if opens_sentence:
        return word not in _NOT_SENTENCE_FINAL and not _is_abbreviating_letter(text, word_start, punct, word, sentence_start, end)
    if following.islower():
        return _is_plain_word(word)
    if following.isdigit():
        return _is_plain_word(word) and _NUMBERED_OR_COUNT.match(text, next_start, end) is not None
    return False



def _word_start(text: str, punct: int, sentence_start: int) -> int:
    """Start of the whitespace-delimited word that ends at ``punct``."""
    lo = max(sentence_start, punct - _LONGEST_WORD_LOOKED_AT)
    i = punct
    while i > lo and not text[i - 1].isspace():
        i -= 1
    return i



def _is_abbreviating_letter(text: str, word_start: int, punct: int, word: str, sentence_start: int, end: int) -> bool:
    """A single letter that abbreviates something: a name (``J. Smith``, ``Smith, J. A.``,
    ``and R. D. Klausner``) or an HGVS prefix (``p. Glu104X``). Not a capital that ends
    a sentence after a lowercase word (``hepatitis B. The``, ``in group A. However``),
    nor a unit after a number (``for 24 h. In``)."""
    if len(word) != 1 or not word.isalpha():
        return False
    if punct - word_start > 1 or _INITIAL.match(text, punct + 1, end):  # "(J." or "R. D."
        return True
    previous_end = word_start
    while previous_end > sentence_start and text[previous_end - 1].isspace():
        previous_end -= 1
    previous = text[_word_start(text, previous_end, sentence_start) : previous_end]
    if word.islower():
        return not any(c.isdigit() for c in previous)
    return not (previous.isalpha() and previous[0].islower())


def _is_plain_word(word: str) -> bool:
    """A word whose full stop ends a sentence before a lowercase word or a number: a word
    that does not look abbreviated, or a closing bracket (``(PD).``, ``(p<0.05).``)."""
    if word.endswith((")", "]")):
        return True
    if not word.isalpha() or len(word) <= 2 or word in _NOT_SENTENCE_FINAL or word in LOWERCASE_CONTINUED:
        return False
    return any(c in "aeiouyAEIOUY" for c in word)  # "incl", "wt", "Ltd" have none


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _cut_long(text: str, span: tuple[int, int], max_chars: int) -> SentenceSpans:
    """``span`` cut into pieces of at most ``max_chars``, each at the last whitespace that
    keeps it within the limit, or at the limit itself when there is none."""
    start, end = span
    pieces = []
    while end - start > max_chars:
        cut = start + max_chars  # text[cut] is the first character past the limit
        while cut > start and not text[cut].isspace():
            cut -= 1
        if cut == start:  # one long word: cut it at the limit
            cut = start + max_chars
        pieces.append(_trim(text, start, cut))
        start = _trim(text, cut, end)[0]  # a piece never ends in whitespace, so this exists
    pieces.append((start, end))
    return pieces
