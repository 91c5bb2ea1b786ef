import io
import logging
import sys
import types as pytypes
from pathlib import Path

import pytest

from biotag.document import Document, Span
from biotag.errors import FormatError
from biotag.io import conll

WITH_DOCSTART = (
    "-DOCSTART-\tO\n\n"
    "IL-2\tB-protein\ngene\tI-protein\nexpression\tO\n.\tO\n\n"
    "NF-kappa\tB-protein\nB\tI-protein\nin\tO\nT\tB-cell_type\ncells\tI-cell_type\n\n"
    "-DOCSTART-\tO\n\n"
    "Human\tB-cell_line\n.\tO\n\n"
)
SENTENCES = "Aspirin\tB-Chemical\nhelps\tO\n\nNo\tO\nentity\tO\n\nTumour\tB-Disease\n\n"


def write_file(tmp_path: Path, text: str, name: str = "sample.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_docstart_blocks_become_documents_with_token_and_sentence_layers(tmp_path):
    docs = list(conll.read(write_file(tmp_path, WITH_DOCSTART)))
    assert [d.id for d in docs] == ["sample:1", "sample:2"]
    first = docs[0]
    assert first.text == "IL-2 gene expression .\nNF-kappa B in T cells"
    assert [first.text[s.start : s.end] for s in first.sentences] == ["IL-2 gene expression .", "NF-kappa B in T cells"]
    assert [first.text[t.start : t.end] for t in first.tokens][:4] == ["IL-2", "gene", "expression", "."]
    assert [(e.type, e.text, e.source) for e in first.entities] == [
        ("protein", "IL-2 gene", "gold"),
        ("protein", "NF-kappa B", "gold"),
        ("cell_type", "T cells", "gold"),
    ]
    assert first.metadata == {"conll_docstart": True}
    first.validate()
    assert docs[1].text == "Human ." and docs[1].entities[0].type == "cell_line"


def test_file_without_docstart_gives_one_document_per_sentence(tmp_path):
    docs = list(conll.read(write_file(tmp_path, SENTENCES, "train.tsv")))
    assert [d.id for d in docs] == ["train:1", "train:2", "train:3"]
    assert [d.text for d in docs] == ["Aspirin helps", "No entity", "Tumour"]
    assert [[e.text for e in d.entities] for d in docs] == [["Aspirin"], [], ["Tumour"]]
    assert all(d.metadata == {"conll_docstart": False} for d in docs)


def test_tags_are_chunked_like_conlleval(tmp_path):
    # a stray I- starts a chunk; a type change inside a chunk ends it
    text = "a\tI-Gene\nb\tI-Gene\nc\tB-Gene\nd\tI-Chem\ne\tO\n\n"
    (doc,) = conll.read(write_file(tmp_path, text))
    assert [(e.type, e.text) for e in doc.entities] == [("Gene", "a b"), ("Gene", "c"), ("Chem", "d")]


def test_crlf_lines_and_missing_final_blank_line_are_read(tmp_path):
    (doc,) = conll.read(write_file(tmp_path, "p53\tB-GENE\r\nmutant\tO"))
    assert doc.text == "p53 mutant" and doc.entities[0].text == "p53"


@pytest.mark.parametrize(
    ("content", "line", "field", "needle"),
    [
        ("a\tO\nb\tO\textra\n\n", 2, "fields", "expected 2 fields"),
        ("a\tO\ntruncated\n", 2, "fields", "found 1"),
        ("a\tO\nb\tX-Gene\n\n", 2, "tag", "unknown tag 'X-Gene'"),
        ("a\tO\n\tB-Gene\n\n", 2, "token", "empty token"),
    ],
)
def test_bad_lines_raise_format_errors_naming_file_line_document_field(tmp_path, content, line, field, needle):
    path = write_file(tmp_path, content)
    with pytest.raises(FormatError) as info:
        list(conll.read(path))
    err = info.value
    assert (err.path, err.line, err.field, err.document) == (str(path), line, field, "sample:1")
    assert needle in str(err)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("a\tO\n\nna\u00efve\tO\n\n".encode("latin-1"))
    with pytest.raises(FormatError) as info:
        list(conll.read(path))
    assert (info.value.line, info.value.field) == (3, "encoding")


def test_types_option_rejects_other_entity_types(tmp_path):
    path = write_file(tmp_path, "a\tB-Gene\nb\tB-Chemical\n\n")
    with pytest.raises(FormatError, match="unknown entity type 'Chemical'"):
        list(conll.read(path, types=["Gene"]))
    assert len(list(conll.read(path, types=["Gene", "Chemical"]))[0].entities) == 2


def test_skip_bad_drops_only_the_bad_sentence_and_keeps_ids_stable(tmp_path):
    content = "a\tB-Gene\n\nb\tBAD\nc\tO\n\nd\tO\n\n"
    errors = []
    docs = list(conll.read(write_file(tmp_path, content), skip_bad=True, on_error=errors.append))
    assert [(d.id, d.text) for d in docs] == [("sample:1", "a"), ("sample:3", "d")]
    assert len(errors) == 1 and errors[0].line == 3 and errors[0].document == "sample:2"


def test_skip_bad_resynchronises_at_the_next_docstart(tmp_path):
    content = WITH_DOCSTART.replace("in\tO", "in\tO\tO")  # breaks the second sentence of document 1
    errors = []
    docs = list(conll.read(write_file(tmp_path, content), skip_bad=True, on_error=errors.append))
    assert [d.id for d in docs] == ["sample:2"]
    assert [e.document for e in errors] == ["sample:1"]


# -- writing ---------------------------------------------------------------------
def test_round_trip_of_docstart_and_sentence_files_is_byte_identical(tmp_path):
    for content in (WITH_DOCSTART, SENTENCES):
        path = write_file(tmp_path, content)
        out = tmp_path / "out.tsv"
        assert conll.write(conll.read(path), out) == len(list(conll.read(path)))
        assert out.read_bytes() == path.read_bytes()


def test_stray_i_tags_are_written_back_as_b(tmp_path):
    buffer = io.StringIO()
    conll.write(conll.read(write_file(tmp_path, "a\tI-Gene\nb\tO\n\n")), buffer)
    assert buffer.getvalue() == "a\tB-Gene\nb\tO\n\n"


def segmented(text: str, tokens: list[tuple[int, int]], sentences: list[tuple[int, int]] | None = None) -> Document:
    doc = Document("d1", text, tokens=[Span(*t) for t in tokens])
    doc.sentences = [Span(*s) for s in sentences] if sentences else [Span(0, len(text))]
    return doc


def test_writer_keeps_the_earliest_longest_of_overlapping_entities_and_logs_the_rest(caplog):
    doc = segmented("breast cancer gene", [(0, 6), (7, 13), (14, 18)])
    doc.add_entity(7, 13, "Disease")
    doc.add_entity(0, 13, "Disease")
    doc.add_entity(7, 18, "Gene")
    buffer = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="biotag.io.conll"):
        conll.write([doc], buffer, docstart=False)
    assert buffer.getvalue() == "breast\tB-Disease\ncancer\tI-Disease\ngene\tO\n\n"
    assert "2 overlapping entities" in caplog.text


def test_writer_types_option_and_docstart_default_for_foreign_documents(tmp_path):
    doc = segmented("aspirin for pain", [(0, 7), (8, 11), (12, 16)])
    doc.add_entity(0, 7, "Chemical")
    doc.add_entity(12, 16, "Disease")
    out = tmp_path / "chem.tsv"
    conll.write([doc], str(out), types=["Chemical"])
    # no conll_docstart metadata: a DOCSTART line keeps the document boundary
    assert out.read_text() == "-DOCSTART-\tO\n\naspirin\tB-Chemical\nfor\tO\npain\tO\n\n"


def test_entity_off_token_boundaries_is_a_format_error_naming_document_and_entity():
    doc = segmented("interleukin-2 receptor", [(0, 13), (14, 22)])
    doc.add_entity(0, 11, "Gene", id="T7")
    with pytest.raises(FormatError) as info:
        conll.write([doc], io.StringIO())
    assert info.value.document == "d1" and "entity T7" in str(info.value) and "token boundary" in str(info.value)


def test_entity_across_given_sentences_is_a_format_error():
    doc = segmented("Dr. Smith", [(0, 3), (4, 9)], sentences=[(0, 3), (4, 9)])
    doc.add_entity(0, 9, "Person")
    with pytest.raises(FormatError, match="crosses a sentence boundary"):
        conll.write([doc], io.StringIO())


def test_discontinuous_entities_are_left_out_with_a_warning(caplog):
    doc = segmented("a b c", [(0, 1), (2, 3), (4, 5)])
    doc.add_entity([(0, 1), (4, 5)], type="Gene")
    buffer = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="biotag.io.conll"):
        conll.write([doc], buffer, docstart=False)
    assert "B-" not in buffer.getvalue() and "discontinuous" in caplog.text


@pytest.fixture
def fake_segmenters(monkeypatch):
    """Stand-ins for biotag.text.words / biotag.text.sentences: words and punctuation,
    and a sentence break after every '. '."""
    import re

    words = pytypes.ModuleType("biotag.text.words")
    words.word_spans = lambda text, start, end: [m.span() for m in re.finditer(r"\w+|[^\w\s]", text) if start <= m.start() < end]
    sentences = pytypes.ModuleType("biotag.text.sentences")
    sentences.split_sentences = lambda text: [m.span() for m in re.finditer(r".+?(?:\.(?= )|$)", text)]
    monkeypatch.setitem(sys.modules, "biotag.text.words", words)
    monkeypatch.setitem(sys.modules, "biotag.text.sentences", sentences)


def test_writer_segments_plain_documents_and_does_not_cut_entities(fake_segmenters):
    doc = Document("d1", "Seen in St. Louis encephalitis. Rare.")
    doc.add_entity(8, 30, "Disease")
    buffer = io.StringIO()
    conll.write([doc], buffer, docstart=False)
    sentences = buffer.getvalue().split("\n\n")[:-1]
    assert len(sentences) == 2  # the splitter's break after "St." is inside the entity
    assert sentences[0].splitlines()[2:7] == [
        "St\tB-Disease",
        ".\tI-Disease",
        "Louis\tI-Disease",
        "encephalitis\tI-Disease",
        ".\tO",
    ]


def test_writer_with_the_real_segmenters_round_trips_entities(tmp_path):
    pytest.importorskip("biotag.text.words")
    pytest.importorskip("biotag.text.sentences")
    doc = Document("d1", "Aspirin reduces fever. It also thins blood.")
    doc.add_entity(0, 7, "Chemical")
    doc.add_entity(16, 21, "Disease")
    out = tmp_path / "plain.tsv"
    conll.write([doc], out)
    (again,) = conll.read(out)
    assert [(e.type, e.text) for e in again.entities] == [("Chemical", "Aspirin"), ("Disease", "fever")]
    assert len(again.sentences) == 2 and again.metadata == {"conll_docstart": True}


def test_every_shared_ner_file_round_trips_byte_for_byte(shared_data):
    files = sorted((shared_data / "ner").glob("*/*.tsv"))
    assert len(files) >= 24
    for path in files:
        buffer = io.StringIO()
        conll.write(conll.read(path), buffer)
        assert buffer.getvalue().encode("utf-8") == path.read_bytes(), path
