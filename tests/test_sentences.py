"""Sentence splitting (biotag.text.sentences) and document segmentation (biotag.text.segment)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.document import Document, Passage, Span
from biotag.errors import InputError, ValidationError
from biotag.text.segment import segment, sentence_words
from biotag.text.sentences import split_sentences


def sentences(text: str, **options) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, **options)]


def assert_well_formed(text: str, spans: list[tuple[int, int]], start: int = 0, end: int | None = None) -> None:
    """In the region, ordered, non-overlapping, trimmed, non-empty, covering every non-space character."""
    end = len(text) if end is None else end
    previous_end = start
    for s, e in spans:
        assert previous_end <= s < e <= end
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert text[previous_end:s].strip() == ""
        previous_end = e
    assert text[previous_end:end].strip() == ""


# -- abbreviations and sentence ends, by hand -------------------------------------------

ONE_SENTENCE = [
    "Bacteria, e.g. E. coli and S. aureus, were grown overnight.",
    "Several cytokines, i.e. IL-2 and IL-4, were measured.",
    "As reported by Smith et al. The mechanism remained unclear in their hands.",
    "As shown in Fig. 2 and Figs. 3-5, expression rose approx. twofold.",
    "Wild type vs. Mutant mice were compared (cf. Ref. 12 and Eq. 3 in Tab. 2).",
    "Dose was ca. 5 mg (resp. 10 mg) as in ref. 7 and No. 4.",
    "Dr. J. Smith, Ph.D., from St. Louis, U.S. Army, and Jr. staff took part.",
    "Candida sp. Strain X and Bacillus spp. Isolates differ from var. Major and subsp. Aureus.",
    "The ratio was 2.5 mg/kg at p < 0.05 in all 1.2.3.4 EC reactions.",
    "The Na.K-ATPase and the 1.14.13.39 enzyme were assayed.",
    "Mutation c.310 G>T (p. Glu104X) was found.",
    "Cotterillia bromelicola nov. gen., nov. spec. was described.",
    "Proteins were given i.v. twice daily.",
    "Values were 0. 86 and 0. 57 in the original corpus text.",
    "Work by C. L. Wu and D. W. Melton (1993) Nature Genet. 3, 235-240 was cited.",
    "J. Biol. Chem. 273, 22068-22075 describes it.",
]


@pytest.mark.parametrize("text", ONE_SENTENCE)
def test_abbreviations_decimals_and_initials_do_not_end_a_sentence(text):
    assert sentences(text) == [text]


SPLITS = [
    ("Cells grew. They died.", ["Cells grew.", "They died."]),
    ("Is it toxic? Yes! It is.", ["Is it toxic?", "Yes!", "It is."]),
    ('It was termed "meth mouth." Although rare, it occurs.', ['It was termed "meth mouth."', "Although rare, it occurs."]),
    ("Levels rose (p < 0.05). (B) Cells shrank.", ["Levels rose (p < 0.05).", "(B) Cells shrank."]),
    ("It was absent. beta-Catenin was high.", ["It was absent.", "beta-Catenin was high."]),
    ("Patients had hepatitis B. The virus persisted.", ["Patients had hepatitis B.", "The virus persisted."]),
    ("Rats were observed for 24 h. In contrast, mice were not.", ["Rats were observed for 24 h.", "In contrast, mice were not."]),
    ("Rats were dosed with dex. 4. Blood pressure rose.", ["Rats were dosed with dex.", "4. Blood pressure rose."]),
    ("It was checked (p<0.05). cTnT rose.", ["It was checked (p<0.05).", "cTnT rose."]),
    ("The dose was given i.v. Nine rats responded.", ["The dose was given i.v.", "Nine rats responded."]),
    ("Nothing was found etc. Then it ended.", ["Nothing was found etc.", "Then it ended."]),
    ("Cells were seen in studies. 17beta-Estradiol was added.", ["Cells were seen in studies.", "17beta-Estradiol was added."]),
]


@pytest.mark.parametrize("text, expected", SPLITS)
def test_sentence_ends_split(text, expected):
    assert sentences(text) == expected


def test_line_breaks_end_paragraphs_except_hard_wraps():
    text = "A title without a stop\nThe abstract starts here. It goes on and\nwraps here.\n\n\nnew paragraph after a blank line"
    assert sentences(text) == [
        "A title without a stop",
        "The abstract starts here.",
        "It goes on and\nwraps here.",
        "new paragraph after a blank line",
    ]
    assert sentences("Line one\r\nLine two\rLine three") == ["Line one", "Line two", "Line three"]


def test_region_offsets_refer_to_the_whole_text():
    text = "Title here. Abstract one. Abstract two."
    assert split_sentences(text, 12) == [(12, 25), (26, 39)]
    assert split_sentences(text, 0, 11) == [(0, 11)]
    assert split_sentences(text, 5, 5) == []
    assert split_sentences("   \n\n  ") == []


def test_bad_region_and_option_raise_a_biotag_error():
    with pytest.raises(InputError) as err:
        split_sentences("abc", 2, 9)
    assert err.value.field == "end" and "0..3" in str(err.value)
    with pytest.raises(InputError):
        split_sentences("abc", -1)
    with pytest.raises(InputError) as err:
        split_sentences("abc", max_chars=0)
    assert err.value.field == "max_chars"


# -- max_chars ------------------------------------------------------------------------


def test_max_chars_cuts_long_sentences_at_the_last_whitespace_within_the_limit():
    text = "alpha beta gamma delta epsilon. Short one."
    assert sentences(text, max_chars=12) == ["alpha beta", "gamma delta", "epsilon.", "Short one."]
    assert split_sentences(text, max_chars=12) == split_sentences(text, max_chars=12)  # deterministic
    # a word longer than the limit is cut at the limit
    assert sentences("abcdefghij klm", max_chars=4) == ["abcd", "efgh", "ij", "klm"]
    assert sentences(text, max_chars=1000) == sentences(text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab .?!\n(A", max_size=80), st.integers(1, 20))
def test_max_chars_pieces_stay_within_the_limit(text, max_chars):
    spans = split_sentences(text, max_chars=max_chars)
    assert_well_formed(text, spans)
    assert all(e - s <= max_chars for s, e in spans)


# -- properties -----------------------------------------------------------------------

# a small alphabet that hits abbreviations, initials, numbers, brackets and line breaks
SENTENCE_ALPHABET = st.sampled_from(list("aAbB zZ.?!\n\t(\")5'") + ["e.g. ", "et al. ", "J. ", "Fig. ", "0. 5", "i.v. "])
sentence_texts = st.lists(SENTENCE_ALPHABET, max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(sentence_texts)
def test_spans_are_in_bounds_ordered_trimmed_and_cover_the_text(text):
    assert_well_formed(text, split_sentences(text))


@settings(max_examples=300, deadline=None)
@given(sentence_texts, st.data())
def test_a_region_splits_as_if_it_were_the_whole_text(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    region = split_sentences(text, start, end)
    assert_well_formed(text, region, start, end)
    assert region == [(s + start, e + start) for s, e in split_sentences(text[start:end])]


@settings(max_examples=200, deadline=None)
@given(sentence_texts)
def test_splitting_a_sentence_again_changes_nothing(text):
    for s, e in split_sentences(text):
        assert split_sentences(text, s, e) == [(s, e)]


# -- segment() and sentence_words() ------------------------------------------------------


def test_segment_splits_per_passage_and_tokenises_per_sentence():
    doc = Document.from_passages("d1", [("title", "BRCA1-associated cancer"), ("abstract", "We used E. coli. IL-2 (p53) rose.")])
    assert segment(doc) is doc
    expected = ["BRCA1-associated cancer", "We used E. coli.", "IL-2 (p53) rose."]
    assert [doc.text[s.start : s.end] for s in doc.sentences] == expected
    words = [[doc.text[s:e] for s, e in sentence] for sentence in sentence_words(doc)]
    assert words == [
        ["BRCA1", "-", "associated", "cancer"],
        ["We", "used", "E", ".", "coli", "."],
        ["IL", "-", "2", "(", "p53", ")", "rose", "."],
    ]
    doc.validate()


def test_sentences_never_cross_passages_even_without_a_full_stop():
    doc = Document.from_passages("d2", [("title", "Title e.g."), ("abstract", "Body text")], sep=" ")
    segment(doc)
    assert [(s.start, s.end) for s in doc.sentences] == [(0, 10), (11, 20)]


def test_text_outside_passages_is_segmented_too():
    doc = Document("d3", "Head. Body text. Tail")  # no passages: the whole text is one region
    segment(doc)
    assert [doc.text[s.start : s.end] for s in doc.sentences] == ["Head.", "Body text.", "Tail"]
    doc = Document("d4", "x Body text. y", passages=[Passage("abstract", 2, 12)])
    segment(doc)
    assert [doc.text[s.start : s.end] for s in doc.sentences] == ["x", "Body text.", "y"]
    assert [doc.text[t.start : t.end] for t in doc.tokens] == ["x", "Body", "text", ".", "y"]


def test_segment_keeps_existing_layers_and_respects_given_tokens():
    doc = Document("d5", "One two. Three four.", sentences=[Span(0, 20)])
    segment(doc)
    assert doc.sentences == [Span(0, 20)]
    assert len(doc.tokens) == 6
    # a given token ("two. Three") that a computed sentence boundary would cut
    doc = Document("d6", "One two. Three four.", tokens=[Span(0, 3), Span(4, 14), Span(15, 19), Span(19, 20)])
    segment(doc)
    assert doc.sentences == [Span(0, 20)]
    assert sentence_words(doc) == [[(0, 3), (4, 14), (15, 19), (19, 20)]]


def test_inconsistent_layers_raise_naming_document_and_field():
    doc = Document("d7", "One two. Three.", sentences=[Span(0, 8), Span(9, 15)], tokens=[Span(0, 3), Span(4, 12)])
    with pytest.raises(ValidationError) as err:
        sentence_words(doc)
    assert err.value.document == "d7" and err.value.field == "tokens"
    doc = Document("d8", "One two.", sentences=[Span(0, 5), Span(3, 8)])
    with pytest.raises(ValidationError) as err:
        segment(doc)
    assert err.value.field == "sentences"
    doc = Document("d9", "short", passages=[Passage("title", 0, 50)])
    with pytest.raises(ValidationError) as err:
        segment(doc)
    assert err.value.document == "d9" and err.value.field == "passages"


@settings(max_examples=150, deadline=None)
@given(st.lists(sentence_texts, min_size=1, max_size=4), st.sampled_from([" ", "", "\n"]))
def test_segment_layers_nest_in_passages_and_cover_the_text(parts, sep):
    doc = Document.from_passages("d", [("p", part) for part in parts], sep=sep)
    segment(doc)
    sentence_spans = [(s.start, s.end) for s in doc.sentences]
    assert_well_formed(doc.text, sentence_spans)
    for s, e in sentence_spans:  # never across a passage boundary
        assert all(e <= p.start or s >= p.end or (p.start <= s and e <= p.end) for p in doc.passages)
    grouped = sentence_words(doc)
    assert [w for sentence in grouped for w in sentence] == [(t.start, t.end) for t in doc.tokens]
    for (s, e), sentence in zip(sentence_spans, grouped, strict=True):
        assert all(s <= a < b <= e for a, b in sentence)
        assert [i for a, b in sentence for i in range(a, b)] == [i for i in range(s, e) if not doc.text[i].isspace()]


def test_max_chars_reaches_segment():
    doc = Document("d10", "alpha beta gamma delta")
    segment(doc, max_chars=11)
    assert [doc.text[s.start : s.end] for s in doc.sentences] == ["alpha beta", "gamma delta"]


# -- real abstracts ---------------------------------------------------------------------


def pubtator_documents(path: Path) -> Iterator[Document]:
    """A minimal PubTator reader for these tests: title and abstract passages, and one
    entity per mention line whose text matches the document (the few that do not are
    offset errors of the corpus files, listed in their MANIFEST)."""
    doc: Document | None = None
    title = None
    for line in path.read_text(encoding="utf-8").split("\n") + [""]:
        if not line.strip():
            if doc is not None:
                yield doc
            doc = title = None
        elif doc is None and "|t|" in line[:40]:
            title = line.split("|", 2)[2]
        elif doc is None and "|a|" in line[:40]:
            pmid, _, abstract = line.split("|", 2)
            doc = Document.from_passages(pmid, [("title", title or ""), ("abstract", abstract)])
        elif doc is not None:
            fields = line.split("\t")
            if len(fields) >= 5 and fields[1].isdigit() and doc.text[int(fields[1]) : int(fields[2])] == fields[3]:
                doc.add_entity(int(fields[1]), int(fields[2]), fields[4])


CORPUS_FILES = [
    "ncbi-disease/NCBIdevelopset_corpus.txt",
    "ncbi-disease/NCBItestset_corpus.txt",
    "bc5cdr/CDR_DevelopmentSet.PubTator.txt",
    "species-s800/S800_test.PubTator.txt",
    "biored/Dev.PubTator",
]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_no_gold_mention_is_cut_by_a_sentence_boundary(shared_data, name):
    docs = list(pubtator_documents(shared_data / "pubtator" / name))
    assert len(docs) >= 100
    crossing = []
    for doc in docs:
        segment(doc)
        spans = [(s.start, s.end) for s in doc.sentences]
        for p in doc.passages:
            assert_well_formed(doc.text, [sp for sp in spans if p.start <= sp[0] < p.end], p.start, p.end)
        for e in doc.entities:
            if not any(s <= e.start and e.end <= t for s, t in spans):
                crossing.append((doc.id, e.text))
    assert crossing == []
    assert sum(len(d.sentences) for d in docs) > 8 * len(docs)  # abstracts are really split


def test_agrees_with_the_sentences_of_the_bc5cdr_conll_corpus(shared_data):
    """The MTL BC5CDR devel split holds the same abstracts as the PubTator file, split
    into sentences by another tool: compare sentences with spaces removed."""
    reference: set[str] = set()
    tokens: list[str] = []
    for line in (shared_data / "ner" / "BC5CDR" / "devel.tsv").read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            tokens.append(line.split("\t")[0])
        elif tokens:
            reference.add("".join(tokens))
            tokens = []
    ours = [
        "".join(doc.text[s.start : s.end].split())
        for doc in pubtator_documents(shared_data / "pubtator" / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt")
        for s in segment(doc).sentences
    ]
    agreement = sum(s in reference for s in ours) / len(ours)
    assert agreement > 0.98, agreement
