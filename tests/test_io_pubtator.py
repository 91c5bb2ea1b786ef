import io
from pathlib import Path

import pytest

from biotag.document import Argument, Document, Link, Relation
from biotag.errors import FormatError
from biotag.io import pubtator

TITLE = "Lithium carbonate toxicity in a newborn."
ABSTRACT = "Breast and ovarian cancer were absent; BRCA1 was normal."
CDR_LIKE = (
    f"123|t|{TITLE}\n"
    f"123|a|{ABSTRACT}\n"
    "123\t0\t17\tLithium carbonate\tChemical\tD016651\n"
    "123\t18\t26\ttoxicity\tDisease\t-1\n"
    "123\t41\t66\tBreast and ovarian cancer\tDisease\tD001943|D010051\tBreast cancer|ovarian cancer\n"
    "123\tCID\tD016651\tD064420\n"
    "\n"
    "456|t|Second document.\n"
    "456|a|\n"
    "456\t0\t6\tSecond\tGene\t672(Tax:9606)\n"
    "\n"
)


def write_file(tmp_path: Path, text: str, name: str = "corpus.pubtator", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_reads_passages_mentions_links_and_concept_relations(tmp_path):
    first, second = pubtator.read(write_file(tmp_path, CDR_LIKE))
    assert first.id == "123" and first.text == f"{TITLE} {ABSTRACT}"
    assert [(p.type, first.text[p.start : p.end]) for p in first.passages] == [("title", TITLE), ("abstract", ABSTRACT)]
    chem, tox, composite = first.entities
    assert (chem.type, chem.text, chem.source, chem.links) == ("Chemical", "Lithium carbonate", "gold", [Link("MESH", "D016651")])
    assert tox.links == [] and tox.attributes["pubtator_ids"] == "-1"
    assert composite.links == [Link("MESH", "D001943"), Link("MESH", "D010051")]
    assert composite.attributes["pubtator_extra"] == ["Breast cancer|ovarian cancer"]
    (cid,) = first.relations
    assert cid.type == "CID"
    assert cid.arguments == [Argument("Arg1", concept="MESH:D016651"), Argument("Arg2", concept="MESH:D064420")]
    first.validate()
    assert second.text == "Second document. " and second.entities[0].links == [Link("NCBIGene", "672")]
    assert second.entities[0].attributes["taxa"] == {"672": "9606"}


@pytest.mark.parametrize(
    ("raw", "entity_type", "expected"),
    [
        ("D001943|D010051", "Disease", [("MESH", "D001943"), ("MESH", "D010051")]),
        ("MESH:C537171+OMIM:114480", "SpecificDisease", [("MESH", "C537171"), ("OMIM", "114480")]),
        (" D012345", "DiseaseClass", [("MESH", "D012345")]),
        ("-1", "Chemical", []),
        ("-", "ChemicalEntity", []),
        ("", "Gene", []),
        ("MESH:D000082,-", "Chemical", [("MESH", "D000082")]),
        ("5728;7157", "Gene", [("NCBIGene", "5728"), ("NCBIGene", "7157")]),
        ("9606", "OrganismTaxon", [("NCBITaxon", "9606")]),
        ("CVCL_0030", "CellLine", [("CVCL", "0030")]),
        ("rs113488022", "SequenceVariant", [("dbSNP", "rs113488022")]),
        ("p|SUB|V|600|E", "SequenceVariant", [("tmVar", "p|SUB|V|600|E")]),
        ("|SUB|G|1915|T,A", "DNAMutation", [("tmVar", "|SUB|G|1915|T,A")]),
        ("CHEBI:15365", "Drug", [("CHEBI", "15365")]),
        ("42", "Drug", [("unknown", "42")]),
    ],
)
def test_concept_id_table(raw, entity_type, expected):
    links, _ = pubtator.parse_ids(raw, entity_type)
    assert [(link.ontology, link.id) for link in links] == expected


def test_ontologies_option_names_the_ontology_of_bare_ids():
    links, _ = pubtator.parse_ids("42", "Drug", {"drug": "DrugBank"})
    assert links == [Link("DrugBank", "42")]


@pytest.mark.parametrize(
    ("link", "entity_type", "taxon", "written"),
    [
        (Link("MESH", "D001943"), "Disease", None, "MESH:D001943"),
        (Link("NCBIGene", "672"), "Gene", "9606", "672(Tax:9606)"),
        (Link("NCBIGene", "672"), "Gene", None, "672"),
        (Link("NCBIGene", "672"), "Chemical", None, "NCBIGene:672"),
        (Link("CVCL", "0030"), "CellLine", None, "CVCL_0030"),
        (Link("tmVar", "p|SUB|V|600|E"), "SequenceVariant", None, "p|SUB|V|600|E"),
    ],
)
def test_format_id_writes_what_parse_id_reads_back(link, entity_type, taxon, written):
    assert pubtator.format_id(link, entity_type, taxon) == written
    assert pubtator.parse_ids(written, entity_type) == ([link], {link.id: taxon} if taxon else {})


def test_unwritable_id_is_a_format_error():
    with pytest.raises(FormatError, match="cannot be written"):
        pubtator.format_id(Link("MESH", "D1|D2"), "Disease")


@pytest.mark.parametrize(
    ("replace", "by", "line", "field", "needle"),
    [
        ("123\t0\t17\tLithium carbonate", "123\t0\t17\tLithium carbonat", 3, "text", "differs from the text"),
        ("123\t0\t17\t", "123\t0\t999\t", 3, "end", "past the end of the text"),
        ("123\t0\t17\t", "123\t17\t17\t", 3, "end", "not before end"),
        ("123\t0\t17\t", "123\t0\tx17\t", 3, "end", "not a non-negative integer"),
        ("123\t0\t17\tLithium carbonate\tChemical\tD016651", "123\t0\t17\tLithium carbonate", 3, "fields", "at least 5"),
        ("123\tCID\tD016651\tD064420", "123\tCID\tD016651", 6, "fields", "found 3"),
        ("123\t18\t26", "124\t18\t26", 4, "pmid", "PMID '124' inside document '123'"),
        (f"123|a|{ABSTRACT}\n", "", 1, "abstract", "no 'PMID|a|abstract' line"),
    ],
)
def test_bad_input_names_file_line_pmid_and_field(tmp_path, replace, by, line, field, needle):
    content = CDR_LIKE.replace(replace, by, 1)
    if by == "":  # the truncated case: the title is the block's only line
        content = content.split("123\t0")[0]
    path = write_file(tmp_path, content)
    with pytest.raises(FormatError) as info:
        list(pubtator.read(path))
    err = info.value
    assert (err.path, err.line, err.document, err.field) == (str(path), line, "123", field)
    assert needle in str(err)


def test_wrong_encoding_names_the_line_and_the_document(tmp_path):
    path = tmp_path / "latin1.pubtator"
    path.write_bytes(CDR_LIKE.replace("newborn", "nouveau-n\u00e9").encode("latin-1"))
    with pytest.raises(FormatError) as info:
        list(pubtator.read(path))
    assert (info.value.line, info.value.field, info.value.document) == (1, "encoding", "123")


def test_skip_bad_skips_the_document_and_reads_the_next(tmp_path):
    errors = []
    path = write_file(tmp_path, CDR_LIKE.replace("\t0\t17\t", "\t0\t16\t"))
    docs = list(pubtator.read(path, skip_bad=True, on_error=errors.append))
    assert [d.id for d in docs] == ["456"]
    assert [(e.document, e.field) for e in errors] == [("123", "text")]


def test_documents_without_blank_lines_between_them_are_split_at_titles(tmp_path):
    docs = list(pubtator.read(write_file(tmp_path, CDR_LIKE.replace("\n\n456", "\n456"))))
    assert [d.id for d in docs] == ["123", "456"]


def test_check_text_false_keeps_mismatching_mentions_for_a_lossless_round_trip(tmp_path):
    content = CDR_LIKE.replace("\t0\t17\tLithium carbonate", "\t0\t17\tLithium  carbonate")
    path = write_file(tmp_path, content)
    doc = next(pubtator.read(path, check_text=False))
    entity = doc.entities[0]
    assert entity.text == "Lithium carbonate" and entity.attributes["pubtator_text"] == "Lithium  carbonate"
    buffer = io.StringIO()
    pubtator.write(pubtator.read(path, check_text=False), buffer)
    assert buffer.getvalue() == content


def test_crlf_file_round_trips_byte_for_byte_with_newline_option(tmp_path):
    path = write_file(tmp_path, CDR_LIKE, newline="\r\n")
    out = tmp_path / "out.pubtator"
    assert pubtator.write(pubtator.read(path), out, newline="\r\n") == 2
    assert out.read_bytes() == path.read_bytes()


def test_writer_formats_documents_from_other_sources(tmp_path):
    doc = Document.from_passages("PMC1", [("title", "Aspirin\tand fever"), ("abstract", "Aspirin lowers\nfever.")])
    aspirin = doc.add_entity(0, 7, "Chemical", links=[Link("MESH", "D001241")])
    fever = doc.add_entity(12, 17, "Disease", links=[Link("MESH", "D005334"), Link("HP", "0001945")])
    doc.add_entity(18, 25, "Chemical")
    doc.relations.append(
        Relation("R1", "treats", [Argument("Arg1", entity_id=aspirin.id), Argument("Arg2", entity_id=fever.id)])
    )
    doc.relations.append(Relation("R2", "CID", [Argument("a", concept="MESH:D001241"), Argument("b", concept="MESH:D005334")]))
    out = tmp_path / "out.pubtator"
    pubtator.write([doc], out)
    assert out.read_text().splitlines() == [
        "PMC1|t|Aspirin\tand fever",
        "PMC1|a|Aspirin lowers fever.",  # the line break became a space
        "PMC1\t0\t7\tAspirin\tChemical\tMESH:D001241",
        "PMC1\t12\t17\tfever\tDisease\tMESH:D005334,HP:0001945",
        "PMC1\t18\t25\tAspirin\tChemical",
        "PMC1\ttreats\tT1\tT2",
        "PMC1\tCID\tMESH:D001241\tMESH:D005334",
        "",
    ]
    (again,) = pubtator.read(out)
    assert [e.links for e in again.entities] == [e.links for e in doc.entities]
    assert [a.entity_id for a in again.relations[0].arguments] == ["T1", "T2"]
    assert [a.concept for a in again.relations[1].arguments] == ["MESH:D001241", "MESH:D005334"]


def test_writer_turns_tabs_into_spaces_only_where_a_mention_covers_them():
    doc = Document("1", "IL\t2 gene")
    doc.add_entity(0, 4, "Gene")
    buffer = io.StringIO()
    pubtator.write([doc], buffer)
    assert buffer.getvalue() == "1|t|IL 2 gene\n1|a|\n1\t0\t4\tIL 2\tGene\n\n"


def test_writer_regenerates_ids_when_links_were_changed(tmp_path):
    doc = next(pubtator.read(write_file(tmp_path, CDR_LIKE)))
    doc.entities[0].links = [Link("MESH", "D008094")]
    buffer = io.StringIO()
    pubtator.write([doc], buffer)
    assert "123\t0\t17\tLithium carbonate\tChemical\tMESH:D008094\n" in buffer.getvalue()


def test_writer_types_option_leaves_out_relations_on_dropped_entities():
    doc = Document("1", "aspirin fever")
    a = doc.add_entity(0, 7, "Chemical")
    b = doc.add_entity(8, 13, "Disease")
    doc.relations.append(Relation("R1", "treats", [Argument("x", entity_id=a.id), Argument("y", entity_id=b.id)]))
    buffer = io.StringIO()
    pubtator.write([doc], buffer, types=["Chemical"])
    assert buffer.getvalue() == "1|t|aspirin fever\n1|a|\n1\t0\t7\taspirin\tChemical\n\n"


def test_unwritable_document_id_is_a_format_error():
    with pytest.raises(FormatError) as info:
        pubtator.write([Document("a|b", "text")], io.StringIO())
    assert info.value.field == "id"


# -- the shared corpora ----------------------------------------------------------
# NCBI-disease files put the blank line before each document (and the test set has none
# after the last one); every other file ends each document with a blank line, which is
# what the writer does, so those are reproduced byte for byte.
NOT_CANONICAL = {"NCBIdevelopset_corpus.txt", "NCBItestset_corpus.txt", "NCBItrainset_corpus.txt"}


def pubtator_files(root: Path) -> list[Path]:
    folder = root / "pubtator"
    return sorted({*folder.rglob("*.PubTator"), *folder.rglob("*.PubTator.txt"), *folder.glob("ncbi-disease/NCBI*_corpus.txt")})


def test_every_shared_pubtator_file_round_trips(shared_data, tmp_path):
    files = pubtator_files(shared_data)
    assert len(files) >= 20
    for path in files:
        original = path.read_bytes()
        newline = "\r\n" if b"\r\n" in original else "\n"
        docs = list(pubtator.read(path, check_text=False))
        out = tmp_path / "out.pubtator"
        pubtator.write(docs, out, newline=newline)
        assert list(pubtator.read(out, check_text=False)) == docs, path
        assert (out.read_bytes() == original) == (path.name not in NOT_CANONICAL), path


def test_shared_corpora_counts_and_text_checks(shared_data):
    cdr = list(pubtator.read(shared_data / "pubtator/bc5cdr/CDR_TestSet.PubTator.txt"))
    assert len(cdr) == 500 and sum(len(d.entities) for d in cdr) == 9809 and sum(len(d.relations) for d in cdr) == 1066
    biored = list(pubtator.read(shared_data / "pubtator/biored/Dev.PubTator"))
    concepts = {a.concept.split(":")[0] for d in biored for r in d.relations for a in r.arguments}
    assert {"NCBIGene", "MESH", "dbSNP", "tmVar"} <= concepts
    # GNormPlus train has mentions whose text does not match the offsets (MANIFEST.md)
    errors = []
    gnormplus = shared_data / "pubtator/gnormplus/GNormPlus_Train.PubTator"
    kept = list(pubtator.read(gnormplus, skip_bad=True, on_error=errors.append))
    assert errors and all(e.field == "text" and e.document and e.line for e in errors)
    assert len(kept) + len(errors) == 426


def test_links_with_name_and_score_are_written_by_their_identifier():
    """A linker's links carry a name and a score that PubTator has no column for."""
    link = Link("MESH", "D003920", name="Diabetes Mellitus", score=0.93)
    assert pubtator.format_id(link, "Disease") == "MESH:D003920"
    assert pubtator.format_id(Link("NCBIGene", "672", name="BRCA1", score=1.0), "Gene", taxon="9606") == "672(Tax:9606)"
