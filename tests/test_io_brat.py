"""brat standoff: real corpora round trips, every line kind, located errors, the writer."""

import dataclasses
import logging

import pytest

import biotag.io
from biotag.document import Argument, Document, Link, Relation, Span
from biotag.errors import FormatError, ValidationError
from biotag.io import brat, pubtator

TEXT = "Mutations in BRCA1 and BRCA2 genes cause breast and ovarian cancer.\nTP53 binds MDM2 in cells.\n"
ANN = """\
T1\tGene 13 18\tBRCA1
T2\tGene 23 28\tBRCA2
T3\tDisease 41 47;60 66\tbreast cancer
T4\tDisease 52 66\tovarian cancer
T5\tProtein 68 72\tTP53
T6\tBinding 73 78\tbinds
T7\tProtein 79 83\tMDM2
T8\tCell 67 72\t TP53
N1\tReference T3 MeSH:D001943\tBreast Neoplasms
N2\tReference T1 HGNC:1100\t
R1\tCauses Arg1:T1 Arg2:T3
A1\tNegated T2
A2\tConfidence T1 High
M3\tSpeculation R1
#1\tAnnotatorNotes T4\tcheck the span
#2\tAnnotatorNotes T4\tsecond look
E1\tBinding:T6 Theme:T5 Theme2:T7
A4\tNegation E1
#3\tAnnotatorNotes E1\tfrom the figure
R2\tCause Arg1:E1 Arg2:T4
*\tEquiv T5 T7
"""


def _write_pair(folder, stem="doc", text=TEXT, ann=ANN, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.txt").write_bytes(text.encode(encoding))
    (folder / f"{stem}.ann").write_bytes(ann.encode(encoding))
    return folder / f"{stem}.ann"


def test_every_line_kind_maps_onto_the_document(tmp_path):
    _write_pair(tmp_path / "in")
    (doc,) = brat.read(tmp_path / "in")
    assert doc.id == "doc" and doc.text == TEXT and doc.passages == []
    by_id = {e.id: e for e in doc.entities}
    assert by_id["T3"].spans == [Span(41, 47), Span(60, 66)] and by_id["T3"].text == "breast cancer"
    assert by_id["T3"].links == [Link("MeSH", "D001943", "Breast Neoplasms")]
    assert by_id["T1"].links == [Link("HGNC", "1100")]
    assert by_id["T1"].attributes == {"Confidence": "High"}
    assert by_id["T2"].attributes == {"Negated": True}
    assert by_id["T4"].attributes == {"AnnotatorNotes": ["check the span", "second look"]}
    assert by_id["T8"].text == "\nTP53"  # a line break inside a span is a space in the .ann
    (causes,) = doc.relations
    assert causes == Relation("R1", "Causes", [Argument("Arg1", "T1"), Argument("Arg2", "T3")], attributes={"Speculation": True})
    kept = doc.metadata["brat"]
    assert kept["events"] == [
        {
            "id": "E1",
            "type": "Binding",
            "trigger": "T6",
            "arguments": [["Theme", "T5"], ["Theme2", "T7"]],
            "attributes": {"Negation": True, "AnnotatorNotes": "from the figure"},
        }
    ]
    assert kept["relations"] == [{"id": "R2", "type": "Cause", "arguments": [["Arg1", "E1"], ["Arg2", "T4"]]}]
    assert kept["equivs"] == [["Equiv", "T5", "T7"]]
    # read -> write -> read is lossless, events included
    brat.write([doc], tmp_path / "out")
    assert list(brat.read(tmp_path / "out")) == [doc]
    written = (tmp_path / "out" / "doc.ann").read_text(encoding="utf-8").splitlines()
    assert "T3\tDisease 41 47;60 66\tbreast cancer" in written
    assert "E1\tBinding:T6 Theme:T5 Theme2:T7" in written
    assert (tmp_path / "out" / "doc.txt").read_text(encoding="utf-8") == TEXT


def test_single_ann_path_reads_and_writes_one_pair(tmp_path):
    ann = _write_pair(tmp_path, "one")
    (doc,) = biotag.io.read(ann)  # format told from the .ann suffix
    assert doc.id == "one" and len(doc.entities) == 8
    assert brat.write([doc], tmp_path / "copy" / "two.ann") == 1
    assert list(brat.read(tmp_path / "copy" / "two.ann"))[0].entities == doc.entities
    with pytest.raises(ValidationError, match="holds one document"):
        brat.write([doc, doc], tmp_path / "copy" / "three.ann")


@pytest.mark.parametrize(
    "corpus", ["bc5cdr/CDR_DevelopmentSet.PubTator.txt", "biored/Dev.PubTator", "ncbi-disease/NCBIdevelopset_corpus.txt"]
)
def test_real_corpora_round_trip_through_brat(shared_data, tmp_path, caplog, corpus):
    docs = list(pubtator.read(shared_data / "pubtator" / corpus))
    with caplog.at_level(logging.WARNING, logger="biotag.io.brat"):
        assert brat.write(docs, tmp_path) == len(docs)
    back = {d.id: d for d in brat.read(tmp_path)}
    concept_relations = sum(len(d.relations) for d in docs)
    if concept_relations:  # PubTator relations link concepts, which brat cannot say
        assert f"{concept_relations} relation(s) with concept arguments" in caplog.text
    for doc in docs:
        # brat keeps text, entity ids/types/spans/texts, links and every attribute (the
        # PubTator reader's raw columns and taxa objects included), not entity sources
        expected = Document(doc.id, doc.text, entities=[dataclasses.replace(e, source=None) for e in doc.entities])
        assert back[doc.id] == expected


def test_writer_renumbers_foreign_ids_and_keeps_attributes_exact(tmp_path):
    doc = Document("x", "IL-2 activates T cells\nstrongly.")
    attributes = {"score": 0.5, "tags": ["a", "b"], "flag": False, "note": "two words", "json:x": "[1, 2]"}
    il2 = doc.add_entity(0, 4, "Protein", id="e-1", attributes=attributes)
    cells = doc.add_entity([(15, 22), (23, 31)], type="Cell", id="e-2", attributes={"multi": "line\nbreak"})
    doc.relations = [Relation("rel", "Activates", [Argument("Agent", il2.id), Argument("Theme", cells.id)])]
    brat.write([doc], tmp_path)
    (back,) = brat.read(tmp_path)
    assert [e.id for e in back.entities] == ["T1", "T2"]
    assert back.relations == [Relation("R1", "Activates", [Argument("Agent", "T1"), Argument("Theme", "T2")])]
    assert [e.attributes for e in back.entities] == [e.attributes for e in doc.entities]
    assert back.entities[1].text == "T cells strongly"


@pytest.mark.parametrize(
    "entity_type, role, field",
    [("Gene product", "Arg1", "entities.type"), ("Gene", "Arg:1", "relations.arguments"), ("Gene", "", "relations.arguments")],
)
def test_writer_refuses_what_brat_cannot_hold(tmp_path, entity_type, role, field):
    doc = Document("x", "BRCA1")
    doc.add_entity(0, 5, entity_type)
    doc.relations = [Relation("R1", "Self", [Argument(role, "T1")])]
    with pytest.raises(ValidationError) as err:
        brat.write([doc], tmp_path)
    assert (err.value.document, err.value.field) == ("x", field)


def test_writer_refuses_two_documents_for_one_file_name(tmp_path):
    with pytest.raises(ValidationError, match="share the file name"):
        brat.write([Document("a/b", "x"), Document("a_b", "y")], tmp_path)


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, field, needle",
    [
        ("T9 Gene 13 18 BRCA1", "line", "expected <id><TAB>"),
        ("X1\tGene 13 18\tBRCA1", "id", "bad annotation id"),
        ("T1a\tGene 13 18\tBRCA1", "id", "bad annotation id"),
        ("T9\tGene 13 x\tBRCA1", "offsets", "bad offsets"),
        ("T9\tGene 13 999\tBRCA1", "offsets", "past the end"),
        ("T9\tGene 18 13\tBRCA1", "offsets", "empty"),
        ("T9\tGene 13 18\tBRCA2", "text", "does not match"),
        ("T9\tGene 13 18", "line", "text-bound line needs"),
        ("T1\tGene 13 18\tBRCA1", "id", "used twice"),
        ("N9\tReference T99 MeSH:D1\tx", "target", "'T99' names no annotation"),
        ("N9\tReference T1\tx", "reference", "Reference <T id>"),
        ("R9\tCauses Arg1:T1 Arg2:T42", "arguments", "'T42'"),
        ("R9\tCauses Arg1 T1", "arguments", "Role:ID"),
        ("E9\tBinding Theme:T5", "type", "Type:Trigger"),
        ("A9\tNegated", "attribute", "<name> <target id>"),
        ("A9\tNegated T2", "attribute", "already has attribute"),
        ("#9\tAnnotatorNotes\tx", "note", "<note type> <target id>"),
        ("*\tEquiv T1", "equiv", "Equiv <id> <id>"),
    ],
)
def test_bad_ann_lines_name_file_line_document_and_field(tmp_path, line, field, needle):
    ann = _write_pair(tmp_path, ann=ANN + line + "\n")
    with pytest.raises(FormatError) as err:
        list(brat.read(ann))
    e = err.value
    assert (e.path, e.line, e.document, e.field) == (str(ann), ANN.count("\n") + 1, "doc", field)
    assert needle in e.message


def test_wrong_encoding_and_missing_text_file(tmp_path):
    ann = _write_pair(tmp_path, text=TEXT.replace("cells", "cellé"), encoding="latin-1")
    with pytest.raises(FormatError) as err:
        list(brat.read(ann))
    assert (err.value.path, err.value.line, err.value.document, err.value.field) == (str(tmp_path / "doc.txt"), 2, "doc", "encoding")
    (tmp_path / "doc.txt").unlink()
    with pytest.raises(FormatError, match="missing .txt"):
        list(brat.read(ann))


def test_byte_order_mark_counts_as_a_character_like_in_brat(tmp_path):
    _write_pair(tmp_path, text="\ufeffBRCA1", ann="T1\tGene 1 6\tBRCA1\n")
    (doc,) = brat.read(tmp_path)
    assert doc.entities[0].text == "BRCA1"
    brat.write([doc], tmp_path / "out")
    assert (tmp_path / "out" / "doc.txt").read_bytes() == (tmp_path / "doc.txt").read_bytes()


def test_skip_bad_skips_only_the_bad_pair(tmp_path):
    _write_pair(tmp_path, "a_good")
    _write_pair(tmp_path, "b_bad", ann="T1\tGene 0 5\tnope\n")
    _write_pair(tmp_path, "c_good", ann="T1\tGene 13 18\tBRCA1\n")
    errors = []
    docs = list(brat.read(tmp_path, skip_bad=True, on_error=errors.append))
    assert [d.id for d in docs] == ["a_good", "c_good"]
    assert [(e.document, e.line, e.field) for e in errors] == [("b_bad", 1, "text")]
