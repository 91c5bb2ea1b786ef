import io
import json

import pytest

from biotag.document import Argument, Document, Link, Relation, Span
from biotag.errors import FormatError, InputError, ValidationError
from biotag.io import jsonl, text


def rich_document(doc_id: str = "pmid:1") -> Document:
    doc = Document.from_passages(doc_id, [("title", "BRCA1 and cancer"), ("abstract", "Naïve cells — 5 µM.")])
    gene = doc.add_entity(0, 5, "Gene", links=[Link("NCBIGene", "672", name="BRCA1", score=0.9)], source="gold")
    disease = doc.add_entity([(10, 16)], type="Disease", score=0.5, attributes={"negated": False})
    doc.relations.append(Relation("R1", "Association", [Argument("a", entity_id=gene.id), Argument("b", concept="MESH:D009369")]))
    doc.relations.append(Relation("R2", "Same", [Argument("a", entity_id=disease.id), Argument("b", entity_id=gene.id)]))
    doc.sentences = [Span(0, 16), Span(17, len(doc.text))]
    doc.tokens = [Span(0, 5), Span(6, 9), Span(10, 16)]
    doc.metadata = {"year": 2020}
    return doc


# -- jsonl ------------------------------------------------------------------------
def test_jsonl_round_trip_keeps_every_layer(tmp_path):
    docs = [rich_document("a"), rich_document("b"), Document("empty", "")]
    path = tmp_path / "docs.jsonl"
    assert jsonl.write(docs, path) == 3
    assert list(jsonl.read(path)) == docs
    assert "Naïve" in path.read_text(encoding="utf-8")  # non-ASCII kept as is


def test_jsonl_writes_to_an_open_stream_and_skips_blank_lines(tmp_path):
    buffer = io.StringIO()
    jsonl.write([rich_document()], buffer)
    path = tmp_path / "docs.jsonl"
    path.write_text("\n" + buffer.getvalue() + "\n  \n", encoding="utf-8")
    assert [d.id for d in jsonl.read(path)] == ["pmid:1"]


def test_jsonl_bad_json_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(rich_document().to_json() + "\n{\"id\": \"x\", \n", encoding="utf-8")
    with pytest.raises(FormatError) as info:
        list(jsonl.read(path))
    assert (info.value.path, info.value.line, info.value.field) == (str(path), 2, "json")


def test_jsonl_invalid_document_names_line_document_and_field(tmp_path):
    data = rich_document("doc-7").to_dict()
    data["entities"][0]["spans"] = [[0, 500]]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        list(jsonl.read(path))
    assert (info.value.line, info.value.document, info.value.field) == (1, "doc-7", "entities.spans")


@pytest.mark.parametrize("line", ['{"id": "m", "text": "x", "metadata": 5}', "[1, 2]", '{"text": "no id"}', "1" * 5000])
def test_jsonl_malformed_values_are_input_errors(tmp_path, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(jsonl.read(path))
    assert info.value.line == 1


def test_jsonl_skip_bad_skips_only_the_bad_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [rich_document("a").to_json(), "not json", rich_document("c").to_json()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errors = []
    assert [d.id for d in jsonl.read(path, skip_bad=True, on_error=errors.append)] == ["a", "c"]
    assert [e.line for e in errors] == [2]


def test_jsonl_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "na\xefve"}\n')
    errors = []
    assert [d.id for d in jsonl.read(path, skip_bad=True, on_error=errors.append)] == ["a"]
    assert (errors[0].line, errors[0].field) == (2, "encoding")


def test_missing_file_is_an_input_error_naming_the_path(tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(InputError) as info:
        list(jsonl.read(missing))
    assert info.value.path == str(missing)


# -- text -------------------------------------------------------------------------
ARTICLE = "Title line\r\n\r\n  First paragraph,\nstill first.  \n \t \nSecond paragraph.\n"


def test_text_file_is_one_document_with_paragraph_passages(tmp_path):
    path = tmp_path / "article.txt"
    path.write_bytes(ARTICLE.encode("utf-8"))
    (doc,) = text.read(path)
    assert doc.id == "article" and doc.text == ARTICLE
    assert [(p.type, doc.text[p.start : p.end]) for p in doc.passages] == [
        ("paragraph", "Title line"),
        ("paragraph", "First paragraph,\nstill first."),
        ("paragraph", "Second paragraph."),
    ]


def test_text_round_trip_is_byte_identical(tmp_path):
    path = tmp_path / "article.txt"
    path.write_bytes(ARTICLE.encode("utf-8"))
    out = tmp_path / "copy.txt"
    assert text.write(text.read(path), out) == 1
    assert out.read_bytes() == path.read_bytes()


def test_text_per_line_makes_each_non_empty_line_a_document(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first\n\n  \nsecond line\n", encoding="utf-8")
    docs = list(text.read(path, per_line=True))
    assert [(d.id, d.text) for d in docs] == [("lines:1", "first"), ("lines:4", "second line")]


def test_text_folder_reads_txt_files_in_sorted_order(tmp_path):
    for name, content in [("b.txt", "B"), ("a.txt", "A"), ("c.md", "ignored")]:
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert [(d.id, d.text) for d in text.read(tmp_path)] == [("a", "A"), ("b", "B")]


def test_text_wrong_encoding_names_the_line_and_skip_bad_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"fine\nna\xefve\n")
    (folder / "b.txt").write_text("good", encoding="utf-8")
    with pytest.raises(FormatError) as info:
        list(text.read(folder))
    assert (info.value.path, info.value.line, info.value.field) == (str(folder / "a.txt"), 2, "encoding")
    errors = []
    assert [d.id for d in text.read(folder, skip_bad=True, on_error=errors.append)] == ["b"]
    assert [d.text for d in text.read(folder / "a.txt", per_line=True, skip_bad=True)] == ["fine"]


def test_text_writer_folder_gets_one_file_per_document(tmp_path):
    docs = [Document("PMC/1", "one"), Document("2", "two\n")]
    folder = tmp_path / "out"
    assert text.write(docs, folder) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["2.txt", "PMC_1.txt"]
    assert (folder / "2.txt").read_bytes() == b"two\n"
    with pytest.raises(FormatError, match="two documents"):
        text.write([Document("x", "1"), Document("x", "2")], tmp_path / "dup")


def test_text_writer_per_line_and_stream(tmp_path):
    buffer = io.StringIO()
    text.write([Document("a", "one\ntwo"), Document("b", "three")], buffer, per_line=True)
    assert buffer.getvalue() == "one two\nthree\n"
    out = tmp_path / "all.txt"
    text.write([Document("a", "one"), Document("b", "two")], out)
    assert out.read_text() == "one\n\ntwo"
