"""Word tokenisation (biotag.text.words): corpus conventions, entity alignment, offset maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sentences import pubtator_documents

from biotag.errors import InputError
from biotag.text.words import (
    char_span_to_word_span,
    char_spans_to_word_spans,
    word_span_to_char_span,
    word_spans,
    word_spans_to_char_spans,
    words,
)

# -- the corpora's conventions ------------------------------------------------------------

CONVENTIONS = [
    ("IL-2", ["IL", "-", "2"]),
    ("BRCA1-associated", ["BRCA1", "-", "associated"]),
    ("(p53)", ["(", "p53", ")"]),
    ("5'-UTR", ["5", "'", "-", "UTR"]),
    ("2.5 mg", ["2", ".", "5", "mg"]),
    ("Na+/K+-ATPase", ["Na", "+", "/", "K", "+", "-", "ATPase"]),
    ("Parkinson's disease", ["Parkinson", "'", "s", "disease"]),
    ("mRNA cDNA 3beta IE86 16S", ["mRNA", "cDNA", "3beta", "IE86", "16S"]),
    ("TNF-α Ca²⁺ 37°C", ["TNF", "-", "α", "Ca²", "⁺", "37", "°", "C"]),  # as "Ca2 +"
    ("CVCL_0594", ["CVCL", "_", "0594"]),
]


@pytest.mark.parametrize("text, expected", CONVENTIONS)
def test_tokenises_like_the_ner_corpora(text, expected):
    assert words(text) == expected


AFFIXES = [
    ("PTPN22R620W KrasG12D rtM204V", ["PTPN22", "R620W", "Kras", "G12D", "rt", "M204V"]),
    ("ARKO STAT6KO Wt1cKO", ["AR", "KO", "STAT6", "KO", "Wt1", "cKO"]),
    ("CCR5Delta32 rDEN2Delta30 CCR5delta32", ["CCR5", "Delta32", "rDEN2", "Delta30", "CCR5", "delta32"]),
    ("Ser326Cys Asn136 Arg95Ter", ["Ser", "326", "Cys", "Asn", "136", "Arg", "95", "Ter"]),
    # look-alikes that stay whole
    ("MCF10A HEK293T RKO PKCdelta", ["MCF10A", "HEK293T", "RKO", "PKCdelta"]),
    ("Trp53 Valine2 BRAFV600E", ["Trp53", "Valine2", "BRAFV600E"]),
]


@pytest.mark.parametrize("text, expected", AFFIXES)
def test_splits_modifier_affixes_off_entity_names(text, expected):
    assert words(text) == expected


def test_region_offsets_refer_to_the_whole_text():
    text = "The IL-2 gene"
    assert word_spans(text, 4, 8) == [(4, 6), (6, 7), (7, 8)]
    assert word_spans(text, 5, 5) == []
    with pytest.raises(InputError) as err:
        word_spans(text, 3, 99)
    assert err.value.field == "end"


CONLL_FILES = ["NCBI-disease/devel.tsv", "BC5CDR/devel.tsv", "BC2GM/test.tsv"]


@pytest.mark.parametrize("name", CONLL_FILES)
def test_reproduces_the_tokens_of_the_mtl_corpora(shared_data, name):
    """Re-tokenising each sentence's tokens joined by spaces gives the tokens back."""
    total = same = 0
    sentence: list[str] = []
    for line in (shared_data / "ner" / name).read_text(encoding="utf-8").split("\n") + [""]:
        if line.strip():
            sentence.append(line.split("\t")[0])
        elif sentence:
            text = " ".join(sentence)
            starts = np.cumsum([0] + [len(t) + 1 for t in sentence[:-1]])
            gold = {(int(s), int(s) + len(t)) for s, t in zip(starts, sentence, strict=True)}
            total += len(gold)
            same += len(gold.intersection(word_spans(text)))
            sentence = []
    assert total > 20_000
    assert same / total > 0.999, same / total


# The fraction of gold mention boundaries (start and end of each mention) that fall inside
# a word, per corpus, all files. Measured: ncbi-disease 0.015 %, bc5cdr 0.026 %, biored
# 0.044 %, gnormplus 0.048 %, species-s800 0.027 %, bioid 0 %; the rest are annotation
# quirks (mentions ending inside a word such as "disorde|r", glued words with no space).
ALIGNMENT_LIMITS = {
    "ncbi-disease/NCBI*_corpus.txt": 0.0005,
    "bc5cdr/*.PubTator.txt": 0.0005,
    "biored/*.PubTator": 0.001,
    "gnormplus/*.PubTator": 0.001,
    "species-s800/S800_*.PubTator.txt": 0.0005,
    "bioid/*.PubTator": 0.0,
}


@pytest.mark.parametrize("pattern", ALIGNMENT_LIMITS)
def test_gold_mention_boundaries_fall_on_word_boundaries(shared_data, pattern):
    boundaries = misaligned = 0
    for path in sorted((shared_data / "pubtator").glob(pattern)):
        for doc in pubtator_documents(path):
            offsets = word_spans(doc.text)
            for entity in doc.entities:
                covering = char_span_to_word_span(offsets, entity.start, entity.end)
                assert covering is not None
                start, end = word_span_to_char_span(offsets, *covering)
                boundaries += 2
                misaligned += (start != entity.start) + (end != entity.end)
    assert boundaries > 5000
    assert misaligned / boundaries <= ALIGNMENT_LIMITS[pattern], (misaligned, boundaries)


# -- character <-> word offsets -------------------------------------------------------------


def test_char_span_to_word_span():
    text = "The IL-2 gene."
    offsets = word_spans(text)  # The IL - 2 gene .
    assert char_span_to_word_span(offsets, 4, 8) == (1, 4)
    assert char_span_to_word_span(offsets, 5, 6) == (1, 2)  # inside "IL": covers the word
    assert char_span_to_word_span(offsets, 3, 4) is None  # whitespace only
    assert char_span_to_word_span(offsets, 6, 6) is None  # empty
    assert char_span_to_word_span(offsets, 0, len(text)) == (0, 6)
    assert char_span_to_word_span([], 0, 3) is None


def test_word_span_to_char_span():
    offsets = word_spans("The IL-2 gene.")
    assert word_span_to_char_span(offsets, 1, 4) == (4, 8)
    assert word_span_to_char_span(offsets, 5, 6) == (13, 14)
    for i, j in [(2, 2), (-1, 2), (3, 7)]:
        with pytest.raises(InputError):
            word_span_to_char_span(offsets, i, j)


def test_vectorised_maps_raise_on_bad_word_spans():
    with pytest.raises(InputError):
        word_spans_to_char_spans([(0, 3)], [(0, 2)])


spans_text = st.text(alphabet="ab1 -(.\n", max_size=40)


@settings(max_examples=200, deadline=None)
@given(spans_text, st.lists(st.tuples(st.integers(0, 45), st.integers(0, 45)), max_size=10))
def test_vectorised_maps_agree_with_the_scalar_ones(text, queries):
    offsets = word_spans(text)
    queries = [(min(a, b), max(a, b)) for a, b in queries]
    many = char_spans_to_word_spans(offsets, queries)
    assert many.shape == (len(queries), 2)
    for (s, e), (i, j) in zip(queries, many.tolist(), strict=True):
        one = char_span_to_word_span(offsets, s, e)
        assert (one is None and i == j) or one == (i, j)
        non_space = [p for p in range(s, min(e, len(text))) if not text[p].isspace()]
        if one is None:
            assert non_space == []
        else:  # the covering words hold every non-space character of the span
            ws, we = word_span_to_char_span(offsets, *one)
            assert tuple(word_spans_to_char_spans(offsets, [one])[0]) == (ws, we)
            assert all(ws <= p < we for p in non_space)
    assert char_spans_to_word_spans(offsets, np.zeros((0, 2), dtype=int)).shape == (0, 2)


# -- properties ---------------------------------------------------------------------------

WORD_ALPHABET = st.sampled_from(list("aZ9 \t\n-_.+'(é²") + ["KO", "Delta3", "R620W", "Ser3", "5Cys", "mRNA"])
word_texts = st.lists(WORD_ALPHABET, max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(word_texts)
def test_words_are_ordered_and_cover_every_non_space_character_once(text):
    offsets = word_spans(text)
    covered = []
    previous_end = 0
    for s, e in offsets:
        assert previous_end <= s < e <= len(text)
        assert not any(c.isspace() for c in text[s:e])
        covered.extend(range(s, e))
        previous_end = e
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]


@settings(max_examples=300, deadline=None)
@given(word_texts, st.data())
def test_a_region_tokenises_as_if_it_were_the_whole_text(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert word_spans(text, start, end) == [(s + start, e + start) for s, e in word_spans(text[start:end])]


@settings(max_examples=300, deadline=None)
@given(word_texts, word_texts)
def test_text_split_at_whitespace_tokenises_the_same(left, right):
    """Words of a sentence are the words of the whole text inside it (idempotent on
    substrings bounded by whitespace)."""
    text = left + " " + right
    assert word_spans(text) == word_spans(text, 0, len(left)) + word_spans(text, len(left) + 1)
