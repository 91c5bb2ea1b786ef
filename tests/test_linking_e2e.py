"""End-to-end (NER + linking) scoring on toy documents: (span, ID) and (document, ID)
pairs, composite mentions, alternate IDs, mentions without ID."""

import pytest

from biotag.document import Document, Link
from biotag.linking import Concept, Linker, build_index
from biotag.linking.end_to_end import Counts, blank_copy, end_to_end, score_documents

TEXT = "Breast and ovarian cancer and anemia in NIDDM. Aspirin helped."


def _doc(entities, doc_id="d1", text=TEXT) -> Document:
    doc = Document(doc_id, text)
    for start, end, entity_type, ids in entities:
        entity = doc.add_entity(start, end, entity_type)
        entity.links = [Link(*curie.split(":", 1)) for curie in ids]
    return doc


GOLD = _doc(
    [
        (0, 25, "CompositeMention", ["MESH:D001943", "MESH:D010051"]),  # breast and ovarian cancer
        (30, 36, "SpecificDisease", ["OMIM:603903"]),  # anemia, gold written with the OMIM number
        (40, 45, "SpecificDisease", []),  # NIDDM: no ID, not scored
        (47, 54, "Chemical", ["MESH:D001241"]),  # another type: never scored here
    ]
)


def _unify(label: str) -> str:
    return {"CompositeMention": "disease", "SpecificDisease": "disease", "Chemical": "chemical"}.get(label, label)


def _alternates(curie: str):
    return {"MESH:D000740": ("OMIM:603903",)}.get(curie, ())


def test_counts():
    counts = Counts()
    counts.add({1, 2, 3}, {2, 3, 4, 5})
    assert counts.to_dict() == {"precision": 66.67, "recall": 50.0, "f1": 57.14, "tp": 2, "fp": 1, "fn": 2}
    assert Counts().to_dict()["f1"] == 0.0


def test_exact_spans_composite_ids_and_alternate_ids():
    predicted = _doc(
        [
            (0, 25, "disease", ["MESH:D001943"]),  # one of the two composite parts
            (30, 36, "disease", ["MESH:D000740"]),  # the concept whose alternate ID is gold
            (40, 45, "disease", ["MESH:D003924"]),  # on a span without gold ID: ignored
            (47, 54, "chemical", ["MESH:D001241"]),  # not a scored type
        ]
    )
    scores = score_documents([GOLD], {"d1": predicted}, ["disease"], unify=_unify, alternates=_alternates)
    assert scores.mention.to_dict()["tp"] == 2 and scores.mention.fn == 1 and scores.mention.fp == 0
    # document level: the NIDDM prediction is a concept the document's gold lacks
    assert (scores.document.tp, scores.document.fp, scores.document.fn) == (2, 1, 1)
    # spans: the NIDDM span is a gold mention (without ID), so NER found all three
    assert (scores.span.tp, scores.span.fp, scores.span.fn) == (3, 0, 0)


def test_wrong_span_or_wrong_id():
    predicted = _doc(
        [
            (11, 25, "disease", ["MESH:D010051"]),  # "ovarian cancer": right ID, other span
            (30, 36, "disease", ["MESH:D006333"]),  # right span, wrong concept
        ]
    )
    scores = score_documents([GOLD], {"d1": predicted}, ["disease"], unify=_unify, alternates=_alternates)
    assert (scores.mention.tp, scores.mention.fp, scores.mention.fn) == (0, 2, 3)
    assert (scores.document.tp, scores.document.fp, scores.document.fn) == (1, 1, 2)
    assert (scores.span.tp, scores.span.fp, scores.span.fn) == (1, 1, 2)


def test_missing_prediction_document_counts_as_all_missed():
    scores = score_documents([GOLD], {}, ["disease"], unify=_unify)
    assert scores.mention.fn == 3 and scores.mention.tp == 0 and scores.document.fn == 3


def test_blank_copy_keeps_text_and_passages_only():
    copy = blank_copy(GOLD)
    assert copy.text == GOLD.text and copy.entities == [] and copy.id == "d1" and GOLD.entities


@pytest.fixture
def indexes(tmp_path):
    concepts = [
        Concept("MESH:D001943", "Breast Neoplasms", ("Breast Cancer",), ("disease",)),
        Concept("MESH:D010051", "Ovarian Neoplasms", ("Ovarian Cancer",), ("disease",)),
        Concept("MESH:D000740", "Anemia", (), ("disease",), alt_ids=("OMIM:603903",)),
    ]
    build_index("toy", concepts, tmp_path)
    return tmp_path


def test_pipeline_end_to_end_with_a_dictionary_ner(indexes):
    """A stand-in NER step that tags a word list; the rest is the real pipeline: the
    composite mention gets two links, anemia's MeSH concept matches the OMIM gold."""

    def ner(docs):
        for doc in docs:
            for phrase in ("Breast and ovarian cancer", "anemia", "NIDDM"):
                start = doc.text.find(phrase)
                if start >= 0:
                    doc.add_entity(start, start + len(phrase), "disease")
        return docs

    ner.__name__ = "ner"
    other = _doc([(0, 6, "SpecificDisease", ["MESH:D001943"])], "d2", "Breast cancer here.")
    gold = [GOLD, other]
    scores, seconds = end_to_end(gold, Linker(indexes), ["disease"], ner)
    assert set(seconds) == {"sentences", "ner", "linking", "abbreviations"}
    # d1: both composite parts and anemia found; d2: "Breast" is not tagged
    assert (scores.mention.tp, scores.mention.fp, scores.mention.fn) == (3, 0, 1)
    assert scores.document.to_dict()["precision"] == 100.0
