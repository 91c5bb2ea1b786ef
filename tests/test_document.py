import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.document import Argument, Document, Link, Relation, Span
from biotag.errors import ValidationError


def make_doc() -> Document:
    doc = Document.from_passages("123", [("title", "BRCA1-associated breast cancer."), ("abstract", "Loss of BRCA1 and TP53 causes it.")])
    doc.add_entity(17, 30, "disease", links=[Link("MESH", "D001943", "Breast Neoplasms", 0.9)], source="gold")
    gene = doc.add_entity(0, 5, "gene", score=0.75)  # nested inside "BRCA1-associated breast cancer"? no: overlaps its left side
    doc.add_entity(0, 30, "disease")  # overlapping/nesting entities are first-class
    doc.add_entity([(40, 45), (50, 54)], type="gene")  # discontinuous: "BRCA1 TP53"
    doc.relations.append(Relation("R1", "associated", [Argument("gene", gene.id), Argument("disease", concept="MESH:D001943")], score=0.5))
    return doc


def test_passages_and_offsets_refer_to_original_text():
    doc = make_doc()
    title, abstract = doc.passages
    assert doc.text[title.start : title.end] == "BRCA1-associated breast cancer."
    assert doc.text[abstract.start : abstract.end] == "Loss of BRCA1 and TP53 causes it."
    assert doc.entity("T2").text == "BRCA1"
    assert doc.entity("T4").text == "BRCA1 TP53" and doc.entity("T4").is_discontinuous
    assert doc.entity("T3").span.contains(doc.entity("T1").span)


def test_json_round_trip_is_lossless():
    doc = make_doc().validate()
    again = Document.from_json(json.dumps(doc.to_dict()))
    assert again == doc
    assert again.to_dict() == doc.to_dict()


def test_validation_names_document_entity_and_field():
    doc = make_doc()
    doc.entities[0].text = "breast cancers"
    with pytest.raises(ValidationError) as err:
        doc.validate()
    msg = str(err.value)
    assert "document 123" in msg and "entities.text" in msg and "T1" in msg


@pytest.mark.parametrize(
    "spans, field",
    [([[5, 3]], "entities.spans"), ([[0, 999]], "entities.spans"), ([[-1, 2]], "entities.spans")],
)
def test_bad_offsets_are_rejected(spans, field):
    data = make_doc().to_dict()
    data["entities"][0]["spans"] = spans
    with pytest.raises(ValidationError, match=field):
        Document.from_dict(data)


def test_relation_arguments_must_resolve():
    data = make_doc().to_dict()
    data["relations"][0]["arguments"][0]["entity"] = "T99"
    with pytest.raises(ValidationError, match="unknown entity 'T99'"):
        Document.from_dict(data)


def test_missing_fields_are_named():
    with pytest.raises(ValidationError, match="'text'"):
        Document.from_dict({"id": "x"})
    with pytest.raises(ValidationError, match="document x: field 'entities'"):
        Document.from_dict({"id": "x", "text": "abc", "entities": [{"id": "T1"}]})


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(min_size=1, max_size=60),
    raw_spans=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 8), st.sampled_from(["gene", "disease"])), max_size=6),
)
def test_any_valid_document_round_trips(text, raw_spans):
    doc = Document(id="d", text=text)
    for start, length, typ in raw_spans:
        if start + length <= len(text):
            doc.add_entity(start, start + length, typ)
    assert Document.from_dict(json.loads(doc.to_json())) == doc


def test_span_relations():
    assert Span(0, 5).overlaps(Span(4, 9)) and not Span(0, 5).overlaps(Span(5, 9))
    assert Span(0, 10).contains(Span(2, 3)) and len(Span(2, 7)) == 5
