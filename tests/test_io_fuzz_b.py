"""Fuzzing the BioC XML, BioC JSON, brat and PubMed XML readers: whatever the bytes, a
reader yields valid Documents or raises biotag's InputError (never an lxml, JSON, Key or
Index error); with ``skip_bad`` it never raises; and what it reads, its writer writes back
to the same Documents."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import mutate

from biotag.errors import InputError
from biotag.io import bioc_json, bioc_xml, brat, pubmed_xml

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

BIOC_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<collection><source>s</source><date>d</date><key>k</key>
<document><id>1</id><infon key="journal">J</infon><infon key="json:n">[1, 2]</infon>
<passage><infon key="type">title</infon><offset>0</offset><text>BRCA1 and breast cancer</text>
<annotation id="a"><infon key="type">Gene</infon><infon key="identifier">NCBIGene:672;MESH:D1</infon>
<location offset="0" length="5"/><text>BRCA1</text></annotation>
<annotation id="b"><infon key="type">Disease</infon><infon key="MESH">D001943|-1</infon><infon key="score">0.5</infon>
<location offset="10" length="6"/><location offset="17" length="6"/><text>breast cancer</text></annotation>
<relation id="r"><infon key="type">assoc</infon><node refid="a" role="x"/><node refid="b" role="y"/></relation></passage>
<passage><offset>25</offset><sentence><offset>25</offset><text>IL-2 up.</text></sentence></passage>
<relation id="c"><infon key="relation">CID</infon><infon key="Gene">672</infon><infon key="entity1">D1</infon></relation>
</document>
<document><id>2</id><passage><offset>3</offset><text>x</text></passage></document>
</collection>
"""

BIOC_JSON = (
    b'{"source": "s", "documents": [{"id": "1", "infons": {"biotag_gaps": [[5, "\\n"]]}, "passages": [{"offset": 0,'
    b' "infons": {"type": "title"}, "text": "Fever", "annotations": [{"id": "1", "infons": {"type": "Disease",'
    b' "identifier": "MESH:D005334", "valid": true}, "text": "Fever", "locations": [{"offset": 0, "length": 5}]}]},'
    b' {"offset": 6, "text": "Aspirin"}], "relations": [{"id": "R1", "infons": {"type": "treat", "score": "0.9",'
    b' "role1": {"identifier": "MESH:D005334"}}, "nodes": [{"refid": "1", "role": "a"}]}]}]}\n'
)
BIOC_JSON_LINES = b'{"id": "a", "passages": [{"offset": 0, "text": "x y"}]}\n{"documents": [{"id": "b", "passages": []}]}\n'

PUBMED_XML = b"""<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID>
<Article><Journal><JournalIssue><PubDate><MedlineDate>1998 Dec</MedlineDate></PubDate></JournalIssue><Title>J</Title></Journal>
<ArticleTitle>A <i>b</i> c<sup>2</sup></ArticleTitle><ELocationID EIdType="doi">10.1/x</ELocationID>
<Abstract><AbstractText Label="L" NlmCategory="N">Text <b>bold</b>.</AbstractText><AbstractText>More.</AbstractText></Abstract></Article>
<MeshHeadingList><MeshHeading><DescriptorName UI="D1" MajorTopicYN="Y">H</DescriptorName><QualifierName UI="Q1">q</QualifierName></MeshHeading></MeshHeadingList>
</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pmc">PMC1</ArticleId></ArticleIdList></PubmedData></PubmedArticle>
<DeleteCitation><PMID>9</PMID></DeleteCitation></PubmedArticleSet>
"""

BRAT_TXT = b"BRCA1 binds TP53 in\r\nbreast cancer.\n"
BRAT_ANN = (
    b"T1\tGene 0 5\tBRCA1\nT2\tGene 12 16\tTP53\nT3\tDisease 21 27;28 34\tbreast cancer\nT4\tBind 6 11\tbinds\n"
    b"N1\tReference T1 HGNC:1100\tBRCA1\nR1\tInteracts Arg1:T1 Arg2:T2\nA1\tNegated R1\nA2\tLevel T3 High\n"
    b"#1\tAnnotatorNotes T3\tcheck\nE1\tBinding:T4 Theme:T1 Theme2:T2\n#2\tjson:extra T2\t{\"k\": [1]}\n*\tEquiv T1 T2\n"
)

# reader, writer, file name, sample
SAMPLES = {
    "bioc-xml": (bioc_xml.read, bioc_xml.write, "sample.xml", BIOC_XML),
    "bioc-json": (bioc_json.read, bioc_json.write, "sample.json", BIOC_JSON),
    "bioc-json-lines": (bioc_json.read, bioc_json.write, "sample.jsonl", BIOC_JSON_LINES),
    "pubmed-xml": (pubmed_xml.read, pubmed_xml.write, "sample.xml", PUBMED_XML),
    "brat": (brat.read, brat.write, "doc.ann", BRAT_ANN),
    "brat-text": (brat.read, brat.write, "doc.txt", BRAT_TXT),  # the .txt is fuzzed
}
READERS = sorted(SAMPLES)

# pieces the formats are made of, and bytes that are not UTF-8
PIECES = [b"<", b">", b"</", b"/>", b'"', b"'", b"=", b"&", b"&amp;", b"&#0;", b"<!--", b"<![CDATA[", b"]]>",
          b"<text>", b"</text>", b"<offset>", b"<infon key='type'>", b"<i>", b"json:", b"{", b"}", b"[", b"]",
          b",", b":", b";", b"|", b"\t", b"\n", b"\r", b" ", b"-", b"-1", b"0", b"7", b"99", b"NaN", b"null",
          b"T1", b"R1", b"E1", b"#1", b"*", b"\xff", b"\xc3", b"\xc3\xa9", b"\x00", b"\xef\xbb\xbf"]


@st.composite
def mutated(draw, name: str) -> bytes:
    """The realistic sample with a few insertions, deletions, duplications and a cut."""
    return mutate(draw, SAMPLES[name][3], PIECES, look_back=30)


RANDOM_INPUT = st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))


def _place(name: str, data: bytes, folder: Path) -> Path:
    """Write the fuzzed file (for brat, beside the untouched other half of the pair)."""
    folder.mkdir(parents=True, exist_ok=True)
    file_name = SAMPLES[name][2]
    path = folder / file_name
    path.write_bytes(data)
    if name == "brat":
        (folder / "doc.txt").write_bytes(BRAT_TXT)
    elif name == "brat-text":
        (folder / "doc.ann").write_bytes(BRAT_ANN)
        path = folder / "doc.ann"
    return path


def read_all(name: str, path: Path, **options):
    docs = list(SAMPLES[name][0](path, **options))
    for doc in docs:
        doc.validate()
    return docs


def check_reader(name: str, data: bytes, folder: Path) -> None:
    path = _place(name, data, folder)
    try:
        read_all(name, path)
    except InputError:
        pass  # the one acceptable failure: a biotag error naming where the input is bad
    errors: list[InputError] = []
    read_all(name, path, skip_bad=True, on_error=errors.append)  # must not raise at all
    assert all(isinstance(e, InputError) and e.path for e in errors)


def test_samples_are_read_and_round_trip(tmp_path):
    for name in READERS:
        path = _place(name, SAMPLES[name][3], tmp_path / name)
        docs = read_all(name, path)
        assert docs and (docs[0].entities or name in ("pubmed-xml", "bioc-json-lines")), name
        check_round_trip(name, docs, tmp_path / f"{name}-out")


def check_round_trip(name: str, docs, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder if name.startswith("brat") else folder / SAMPLES[name][2]
    SAMPLES[name][1](docs, out)
    assert list(SAMPLES[name][0](out)) == docs


@FUZZ
@given(name=st.sampled_from(READERS), data=RANDOM_INPUT)
def test_random_bytes_give_documents_or_input_errors(tmp_path_factory, name, data):
    check_reader(name, data, tmp_path_factory.mktemp(name))


@FUZZ
@given(data=st.data(), name=st.sampled_from(READERS))
def test_mutated_samples_give_documents_or_input_errors(tmp_path_factory, data, name):
    check_reader(name, data.draw(mutated(name)), tmp_path_factory.mktemp(name))


@FUZZ
@given(data=st.data(), name=st.sampled_from(READERS))
def test_whatever_is_read_is_written_back_to_the_same_documents(tmp_path_factory, data, name):
    folder = tmp_path_factory.mktemp(name)
    try:
        docs = read_all(name, _place(name, data.draw(mutated(name)), folder / "in"))
    except InputError:
        return  # covered above
    check_round_trip(name, docs, folder / "out")
