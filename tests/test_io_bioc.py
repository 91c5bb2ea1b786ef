"""BioC XML and BioC JSON: real corpora round trips, the format's features, located errors."""

import io
import json

import pytest
from lxml import etree

import biotag.io
from biotag.document import Argument, Document, Link, Passage, Relation, Span
from biotag.errors import FormatError, InputError
from biotag.io import bioc_json, bioc_xml, pubtator

# BioC.dtd (Comeau et al. 2013), to check that the writer produces valid BioC
BIOC_DTD = """
<!ELEMENT collection ( source, date, key, infon*, document+ ) >
<!ELEMENT source (#PCDATA)> <!ELEMENT date (#PCDATA)> <!ELEMENT key (#PCDATA)>
<!ELEMENT infon (#PCDATA)> <!ATTLIST infon key CDATA #REQUIRED >
<!ELEMENT document ( id, infon*, passage+, relation* ) >
<!ELEMENT id (#PCDATA)>
<!ELEMENT passage ( infon*, offset, ( ( text?, annotation* ) | sentence* ), relation* ) >
<!ELEMENT offset (#PCDATA)> <!ELEMENT text (#PCDATA)>
<!ELEMENT sentence ( infon*, offset, text?, annotation*, relation* ) >
<!ELEMENT annotation ( infon*, location*, text ) > <!ATTLIST annotation id CDATA #IMPLIED >
<!ELEMENT location EMPTY> <!ATTLIST location offset CDATA #REQUIRED length CDATA #REQUIRED >
<!ELEMENT relation ( infon*, node* ) > <!ATTLIST relation id CDATA #IMPLIED >
<!ELEMENT node EMPTY> <!ATTLIST node refid CDATA #REQUIRED role CDATA "" >
"""

# BioC as BC5CDR distributes it: MESH infons, composite "|" ids, CID relations as infons;
# plus a discontinuous (two-location) mention, a title/abstract gap and a node relation
BIOC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE collection SYSTEM "BioC.dtd">
<collection><source>PubTator</source><date>2015</date><key>BioC.key</key>
<document><id>227508</id>
  <infon key="journal">Agents Actions</infon>
  <passage><infon key="type">title</infon><offset>0</offset><text>Naloxone reverses the antihypertensive effect.</text>
    <annotation id="0"><infon key="type">Chemical</infon><infon key="MESH">D009270</infon>
      <location offset="0" length="8"/><text>Naloxone</text></annotation>
  </passage>
  <passage><infon key="type">abstract</infon><offset>47</offset><text>Breast and ovarian cancer with clonidine.</text>
    <annotation id="1"><infon key="type">Disease</infon><infon key="MESH">D001943|D010051</infon>
      <infon key="CompositeRole">CompositeMention</infon>
      <location offset="47" length="6"/><location offset="66" length="6"/><text>Breast cancer</text></annotation>
    <annotation id="2"><infon key="type">Chemical</infon><infon key="identifier">MESH:D003000</infon>
      <location offset="78" length="9"/><text>clonidine</text></annotation>
  </passage>
  <relation id="R0"><infon key="relation">CID</infon><infon key="Chemical">D003000</infon><infon key="Disease">D001943</infon></relation>
  <relation id="R1"><infon key="type">treats</infon><node refid="2" role="agent"/><node refid="1" role="target"/></relation>
</document>
</collection>
"""

# PubTator3's BioC JSON: {"PubTator3": [...]}, infons with JSON values, role objects
PUBTATOR3_JSON = {
    "PubTator3": [
        {
            "_id": "36000001|None",
            "id": "36000001",
            "pmid": 36000001,
            "passages": [
                {
                    "infons": {"type": "title", "section_type": "TITLE"},
                    "offset": 0,
                    "text": "Aspirin in fever",
                    "annotations": [
                        {
                            "id": "1",
                            "infons": {"identifier": "MESH:D001241", "type": "Chemical", "valid": True, "database": "ncbi_mesh"},
                            "text": "Aspirin",
                            "locations": [{"offset": 0, "length": 7}],
                        },
                        {
                            "id": "2",
                            "infons": {"identifier": "MESH:D005334", "type": "Disease", "valid": True},
                            "text": "fever",
                            "locations": [{"offset": 11, "length": 5}],
                        },
                    ],
                    "relations": [],
                }
            ],
            "relations": [
                {
                    "id": "R1",
                    "infons": {
                        "score": "0.9512",
                        "role1": {"identifier": "MESH:D001241", "type": "Chemical", "name": "Aspirin"},
                        "role2": {"identifier": "MESH:D005334", "type": "Disease", "name": "Fever"},
                        "type": "treat",
                    },
                    "nodes": [],
                }
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def real_documents(shared_data):
    """BC5CDR dev (MeSH links, CID concept relations) and BioRED dev (six types,
    gene/taxon/variant ids, typed relations), read by biotag's PubTator reader."""
    docs = list(pubtator.read(shared_data / "pubtator/bc5cdr/CDR_DevelopmentSet.PubTator.txt"))
    docs += pubtator.read(shared_data / "pubtator/biored/Dev.PubTator")
    assert len(docs) == 600
    return docs


def _bioc_xml_is_valid(path) -> bool:
    dtd = etree.DTD(io.StringIO(BIOC_DTD))
    return dtd.validate(etree.parse(str(path)))


# -- real corpora ----------------------------------------------------------------------------
def test_bioc_xml_round_trips_real_corpora(real_documents, tmp_path):
    out = tmp_path / "corpus.bioc.xml"
    assert bioc_xml.write(real_documents, out) == 600
    assert _bioc_xml_is_valid(out)
    back = list(biotag.io.read(out))  # format told from the name
    assert back == real_documents
    # the written file speaks plain BioC: CDR's first mention and CID relation
    root = etree.parse(str(out)).getroot()
    first = root.find("document/passage/annotation")
    assert {i.get("key"): i.text for i in first.iter("infon")}["identifier"] == "MESH:D014262"
    assert first.find("location").attrib == {"offset": "0", "length": "29"}


def test_bioc_json_round_trips_real_corpora_in_every_layout(real_documents, tmp_path):
    collection, lines, listed = tmp_path / "c.bioc.json", tmp_path / "l.bioc.json", tmp_path / "list.bioc.json"
    bioc_json.write(real_documents, collection)
    bioc_json.write(real_documents, lines, lines=True)
    listed.write_text(json.dumps(json.loads(collection.read_text(encoding="utf-8"))["documents"], indent=1), encoding="utf-8")
    for path in (collection, lines, listed):
        assert list(bioc_json.read(path)) == real_documents, path.name
    assert len(lines.read_text(encoding="utf-8").splitlines()) == 600


# -- format features --------------------------------------------------------------------------
def test_bioc_xml_features_map_onto_the_document(tmp_path):
    path = tmp_path / "cdr.xml"
    path.write_text(BIOC_XML, encoding="utf-8")
    (doc,) = bioc_xml.read(path)
    assert doc.id == "227508"
    assert doc.text == "Naloxone reverses the antihypertensive effect. Breast and ovarian cancer with clonidine."
    assert [(p.type, p.start, p.end) for p in doc.passages] == [("title", 0, 46), ("abstract", 47, 88)]
    assert doc.metadata == {"journal": "Agents Actions"}
    naloxone, composite, clonidine = doc.entities
    assert naloxone.links == [Link("MESH", "D009270")]
    assert composite.spans == [Span(47, 53), Span(66, 72)] and composite.text == "Breast cancer"
    assert composite.links == [Link("MESH", "D001943"), Link("MESH", "D010051")]
    assert composite.attributes == {"CompositeRole": "CompositeMention"}
    assert clonidine.links == [Link("MESH", "D003000")]
    cid, treats = doc.relations
    assert cid == Relation("R0", "CID", [Argument("Chemical", concept="D003000"), Argument("Disease", concept="D001943")])
    assert treats.arguments == [Argument("agent", entity_id="2"), Argument("target", entity_id="1")]
    # read -> write -> read is lossless, and what is written is valid BioC
    out = tmp_path / "again.xml"
    bioc_xml.write([doc], out)
    assert _bioc_xml_is_valid(out)
    assert list(bioc_xml.read(out)) == [doc]


def test_pubtator3_bioc_json(tmp_path):
    path = tmp_path / "pt3.json"
    path.write_text(json.dumps(PUBTATOR3_JSON, indent=2), encoding="utf-8")
    (doc,) = bioc_json.read(path)
    assert doc.id == "36000001" and doc.metadata == {"_id": "36000001|None", "pmid": 36000001}
    aspirin = doc.entities[0]
    assert aspirin.links == [Link("MESH", "D001241")]
    assert aspirin.attributes == {"valid": True, "database": "ncbi_mesh"}
    assert doc.passages[0].attributes == {"section_type": "TITLE"}
    (treat,) = doc.relations
    assert treat.type == "treat" and treat.score == pytest.approx(0.9512)
    assert treat.arguments == [Argument("role1", concept="MESH:D001241"), Argument("role2", concept="MESH:D005334")]
    assert treat.attributes["role1"]["name"] == "Aspirin"  # the role object is kept whole
    for write_options in ({}, {"lines": True}):
        out = tmp_path / "out.json"
        bioc_json.write([doc], out, **write_options)
        assert list(bioc_json.read(out)) == [doc]
    bioc_xml.write([doc], tmp_path / "out.xml")  # JSON values survive XML too
    assert list(bioc_xml.read(tmp_path / "out.xml")) == [doc]


def test_pmc_bioc_api_list_of_collections(tmp_path):
    path = tmp_path / "pmc.json"
    passage = {"bioctype": "BioCPassage", "offset": 0, "infons": {"section_type": "TITLE", "type": "front"}, "text": "A title",
               "sentences": [], "annotations": [], "relations": []}
    document = {"bioctype": "BioCDocument", "id": "PMC9999999", "infons": {"license": "CC BY"}, "passages": [passage], "relations": []}
    collection = {"bioctype": "BioCCollection", "source": "PMC", "date": "20250301", "key": "pmc.key", "documents": [document]}
    path.write_text(json.dumps([collection], indent=1), encoding="utf-8")
    (doc,) = bioc_json.read(path)
    assert (doc.id, doc.text, doc.metadata) == ("PMC9999999", "A title", {"license": "CC BY"})
    assert doc.passages == [Passage("front", 0, 7, {"section_type": "TITLE"})]


def test_passage_of_sentences_builds_text_and_sentence_layer(tmp_path):
    path = tmp_path / "s.xml"
    path.write_text(
        "<collection><source/><date/><key/><document><id>d</id><passage><offset>0</offset>"
        "<sentence><offset>0</offset><text>IL-2 binds.</text>"
        "<annotation id='a'><infon key='type'>Gene</infon><location offset='0' length='4'/><text>IL-2</text></annotation>"
        "</sentence><sentence><offset>12</offset><text>It works.</text></sentence></passage></document></collection>",
        encoding="utf-8",
    )
    (doc,) = bioc_xml.read(path)
    assert doc.text == "IL-2 binds. It works."
    assert doc.sentences == [Span(0, 11), Span(12, 21)]
    assert doc.passages[0].type == "passage" and doc.passages[0].span == Span(0, 21)
    assert doc.entities[0].text == "IL-2"
    doc.tokens = [Span(0, 4), Span(5, 10), Span(10, 11)]
    for module, name in ((bioc_xml, "o.xml"), (bioc_json, "o.json")):  # span layers are kept
        module.write([doc], tmp_path / name)
        assert list(module.read(tmp_path / name)) == [doc], name


def test_documents_from_other_sources_survive_both_formats(tmp_path):
    doc = Document.from_passages("x1", [("title", "BRCA1 and fever"), ("paragraph", "More BRCA1.")], sep="\n\n")
    brca = doc.add_entity(0, 5, "Gene", links=[Link("NCBIGene", "672", name="BRCA1", score=0.9)], score=0.75, source="model")
    doc.add_entity([(0, 5), (10, 15)], type="Odd", links=[Link("", "HP:0001945")], attributes={"n": 3, "tags": ["a"], "note": "x"})
    doc.relations = [
        Relation("r1", "assoc", [Argument("gene", entity_id=brca.id), Argument("concept", concept="MESH:D005334")], score=0.5),
        Relation("r2", "same", [Argument("entity1", concept="A"), Argument("Gene", concept="B")], attributes={"entity2": "not a role"}),
    ]
    doc.metadata = {"year": 2020, "mesh": [{"descriptor": "Fever"}], "journal": "J"}
    for module, name in ((bioc_xml, "o.xml"), (bioc_json, "o.json")):
        module.write([doc], tmp_path / name)
        assert list(module.read(tmp_path / name)) == [doc], name


def test_writers_accept_open_streams(tmp_path):
    doc = Document.from_passages("s", [("title", "Déjà vu – ß")])
    binary, text = io.BytesIO(), io.StringIO()
    bioc_xml.write([doc], binary)
    bioc_xml.write([doc], text)
    assert text.getvalue().encode("utf-8") == binary.getvalue()
    binary.seek(0)
    assert list(bioc_xml.read(binary)) == [doc]
    out = io.StringIO()
    bioc_json.write([doc], out)
    assert json.loads(out.getvalue())["documents"][0]["passages"][0]["text"] == "Déjà vu – ß"


def test_text_outside_passages_is_kept(tmp_path):
    doc = Document.from_passages("d", [("title", "Title."), ("abstract", "Body")], sep="\n\n")
    doc.text = "  " + doc.text.replace("\n\n", " \n") + "\nTail"
    doc.passages = [Passage(p.type, p.start + 2, p.end + 2) for p in doc.passages]
    doc.add_entity(len(doc.text) - 4, len(doc.text), "X")  # after the last passage
    for module, name in ((bioc_xml, "o.xml"), (bioc_json, "o.json")):
        module.write([doc], tmp_path / name)
        assert list(module.read(tmp_path / name)) == [doc], name
    plain = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))["documents"][0]
    assert plain["infons"]["biotag_gaps"] == [[8, " \n"], [14, "\nTail"]]  # leading spaces need no record


# -- errors ------------------------------------------------------------------------------------
def _doc_xml(body: str, doc_id: str = "d1") -> str:
    return f"<collection><source/><date/><key/>\n<document><id>{doc_id}</id>\n{body}\n</document>\n</collection>"


PASSAGE = "<passage><offset>0</offset><text>Aspirin works</text>\n{}\n</passage>"
ANNOTATION = "<annotation id='a'><infon key='type'>Chemical</infon><location offset='{}' length='{}'/><text>{}</text></annotation>"


@pytest.mark.parametrize(
    "body, line, field, needle",
    [
        (PASSAGE.format(ANNOTATION.format(0, 99, "Aspirin")), 4, "annotation.locations", "past the end"),
        (PASSAGE.format(ANNOTATION.format("x", 7, "Aspirin")), 4, "location.offset", "non-negative integer"),
        (PASSAGE.format(ANNOTATION.format(0, 7, "Ibuprofen")), 4, "annotation.text", "does not match"),
        (PASSAGE.format("<annotation id='a'><location offset='0' length='7'/><text>Aspirin</text></annotation>"), 4, "annotation.infons.type", "no type"),
        (PASSAGE.format("<mention/>"), 4, "passage", "unexpected element <mention>"),
        ("<passage><text>no offset</text></passage>", 3, "passage.offset", "no offset"),
        ("<passage><offset>5</offset><text>abc</text></passage>\n<passage><offset>6</offset><text>x</text></passage>", 4, "passage.offset", "overlaps"),
        ("<passage><offset>0</offset><infon>v</infon></passage>", 3, "infon.key", "no key"),
        (PASSAGE.format("") + "<relation id='r'><infon key='type'>t</infon><node refid='zz' role='a'/></relation>", 5, "relation.nodes.refid", "zz"),
    ],
)
def test_bad_bioc_xml_names_file_line_document_and_field(tmp_path, body, line, field, needle):
    path = tmp_path / "bad.xml"
    path.write_text(_doc_xml(body), encoding="utf-8")
    with pytest.raises(FormatError) as err:
        list(bioc_xml.read(path))
    e = err.value
    assert (e.path, e.line, e.document, e.field) == (str(path), line, "d1", field)
    assert needle in e.message


def test_truncated_and_misencoded_xml_raise_at_the_line_lxml_reports(tmp_path):
    good = _doc_xml(PASSAGE.format(ANNOTATION.format(0, 7, "Aspirin")))
    truncated = tmp_path / "truncated.xml"
    truncated.write_text(good.replace("</collection>", "<document><id>d2</id><passage><offset>0"), encoding="utf-8")
    docs, errors = [], []
    docs += bioc_xml.read(truncated, skip_bad=True, on_error=errors.append)
    assert [d.id for d in docs] == ["d1"]  # what came before the damage is read
    assert errors[0].field == "xml" and errors[0].line == 7
    with pytest.raises(FormatError, match="malformed XML"):
        list(bioc_xml.read(truncated))
    latin1 = tmp_path / "latin1.xml"
    latin1.write_bytes(_doc_xml(PASSAGE.format("")).replace("Aspirin", "Aspirin é").encode("latin-1"))
    with pytest.raises(FormatError) as err:
        list(bioc_xml.read(latin1))
    assert (err.value.line, err.value.field) == (3, "encoding") and "another encoding" in err.value.message


def test_wrong_root_is_a_format_error(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<PubmedArticleSet/>", encoding="utf-8")
    with pytest.raises(FormatError, match="expected <collection>"):
        list(bioc_xml.read(path))


def test_skip_bad_skips_only_the_bad_document(tmp_path):
    path = tmp_path / "mixed.xml"
    bad = f"<document><id>bad</id>{PASSAGE.format(ANNOTATION.format(0, 7, 'Nope'))}</document>"
    path.write_text(_doc_xml(PASSAGE.format(""), "good").replace("<document>", bad + "\n<document>", 1), encoding="utf-8")
    errors = []
    assert [d.id for d in bioc_xml.read(path, skip_bad=True, on_error=errors.append)] == ["good"]
    assert errors[0].document == "bad" and errors[0].field == "annotation.text"
    assert [d.entities[0].text for d in bioc_xml.read(path, check_text=False) if d.entities] == ["Aspirin"]


@pytest.mark.parametrize(
    "content, line, field",
    [
        ('{"documents": [{"id": "a", "passages": [}]}', 1, "json"),
        ('{\n "documents": [\n  {"id": "a",\n  "passages": 5}]}', None, "document.passages"),
        ('{"id": "a", "passages": []}\n{"id": "b", "passages": [{"offset": -1}]}\n', 2, "passage.offset"),
        ('{"id": "a", "passages": []}\n{"id": "b", oops\n', 2, "json"),
        ("[1, 2]", 1, "document"),
        ('{"passages": []}\n', 1, "document.id"),
    ],
)
def test_bad_bioc_json_names_file_line_and_field(tmp_path, content, line, field):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError) as err:
        list(bioc_json.read(path))
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)


def test_bioc_json_lines_skip_bad_lines_and_bad_encoding(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        b'{"id": "a", "passages": [{"offset": 0, "text": "x"}]}\n{"id": "\xe9"}\nnot json\n'
        b'{"documents": [{"id": "b", "passages": []}, {"id": "c", "passages": []}]}\n'
    )
    errors: list[InputError] = []
    assert [d.id for d in bioc_json.read(path, skip_bad=True, on_error=errors.append)] == ["a", "b", "c"]
    assert [(e.line, e.field) for e in errors] == [(2, "encoding"), (3, "json")]


def test_dtd_entities_are_never_expanded(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE collection [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY secret SYSTEM "file:///etc/hostname">]>\n'
        "<collection><source/><date/><key/><document><id>1</id>\n"
        "<passage><offset>0</offset><text>x &b; &secret;</text></passage></document></collection>",
        encoding="utf-8",
    )
    with pytest.raises(FormatError, match="entity reference &b; is not expanded") as err:
        list(bioc_xml.read(path))
    assert (err.value.document, err.value.line) == ("1", 4)
