"""Entity linking on hand-written ontologies: parsers, indexes, normalisation, the linker."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from biotag.cli import app
from biotag.document import Document, Link
from biotag.errors import FormatError, InputError
from biotag.linking import Concept, Linker, OntologyIndex, build_index, read_obo, read_tsv
from biotag.linking.candidates import NgramMatrix, search
from biotag.linking.composite import readings
from biotag.linking.index import FORMAT_VERSION, open_indexes
from biotag.linking.normalize import keys, loose_key, normalize
from biotag.linking.wordforms import learn_equivalents

DISEASES_TSV = """id\tname\tsynonyms
MESH:D001943\tBreast Neoplasms\tBreast Cancer|Cancer of the Breast|Breast Tumors
MESH:D010051\tOvarian Neoplasms\tOvarian Cancer|Ovary Neoplasm|Ovarian Tumors
MESH:D008113\tLiver Neoplasms\tHepatic Neoplasms|Liver Cancer
MESH:D003556\tCystitis\t
MESH:D000740\tAnemia\tAnemias
MESH:D003924\tDiabetes Mellitus, Type 2\tType II Diabetes|NIDDM
MESH:D010300\tParkinson Disease\tParkinson's Disease|Paralysis Agitans
MESH:D014456\tUlcer\tUlcers
MESH:D012598\tScoliosis\t
MESH:D012878\tSkin Neoplasms\tSkin Tumors|Skin Cancer
"""
CHEMICALS_TSV = """MESH:D000082\tAcetaminophen\tParacetamol|Tylenol
MESH:D013256\tSteroids\tSteroid
MESH:D014456X\tUlcer\t
"""
OBO = r"""format-version: 1.2
data-version: test/2025-01-01

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0002279
synonym: "Epileptic seizure" EXACT []
synonym: "Fits" RELATED layperson [HPO:probinson]
synonym: "Abnormal electrical activity" BROAD []
xref: UMLS:C0036572 {source="x"} ! seizures

[Term]
id: HP:0000001
name: Obsolete thing
is_obsolete: true

[Typedef]
id: part_of
name: part of

[Term]
id: GO:0008150
name: biological_process
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Indexes ``diseases`` (MeSH-like), ``chemicals`` and ``genes`` (two organisms)."""
    root = tmp_path_factory.mktemp("linking")
    (root / "diseases.tsv").write_text(DISEASES_TSV)
    (root / "chemicals.tsv").write_text(CHEMICALS_TSV)
    out = root / "indexes"
    build_index("diseases", read_tsv(root / "diseases.tsv", types=("disease",)), out, priority=0)
    build_index("chemicals", read_tsv(root / "chemicals.tsv", types=("chemical",)), out, priority=0)
    genes = [
        Concept("NCBIGene:672", "BRCA1", ("breast cancer 1",), ("gene",), taxon=9606),
        Concept("NCBIGene:675", "BRCA2", ("breast cancer 2",), ("gene",), taxon=9606),
        Concept("NCBIGene:12189", "Brca1", (), ("gene",), taxon=10090, prior=1),
    ]
    build_index("genes", genes, out, priority=0)
    return out


@pytest.fixture(scope="module")
def linker(tiny) -> Linker:
    return Linker.from_indexes(tiny)


# -- normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, exact",
    [
        ("TNF-α", "tnf alpha"),
        ("β-Catenin", "beta catenin"),
        ("Alzheimer's Disease", "alzheimer disease"),
        ("Tumours of the Oesophagus", "tumors of the esophagus"),
        ("haemorrhagic anaemia", "hemorrhagic anemia"),
        ("Sjögren  syndrome", "sjogren syndrome"),
        ("ﬁbrosis", "fibrosis"),
        ("!!!", ""),
    ],
)
def test_normalize(text, exact):
    assert normalize(text) == exact


def test_loose_key_merges_plural_order_roman_numerals_and_filler_words():
    assert loose_key(normalize("Cancer of the Breast")) == loose_key(normalize("breast cancers")) == loose_key(normalize("Cancer, Breast"))
    assert keys("Type II Diabetes")[1] == keys("type 2 diabetes")[1]
    assert keys("IL6")[1] == keys("IL-6")[1]
    assert keys("Deficiencies")[1] == keys("deficiency")[1]
    assert keys("breast cancer")[1] != keys("ovarian cancer")[1]


# -- parsers --------------------------------------------------------------------------------
def test_read_tsv_header_synonyms_and_prefix(tmp_path):
    path = tmp_path / "my.tsv"
    path.write_text("id\tname\tsynonyms\n# a comment\n\n0001\tFoo\tbar|baz| \nX:2\tQux\n")
    concepts = list(read_tsv(path, types=("disease",), prefix="MY"))
    assert [(c.id, c.name, c.synonyms, c.types) for c in concepts] == [
        ("MY:0001", "Foo", ("bar", "baz"), ("disease",)),
        ("X:2", "Qux", (), ("disease",)),
    ]


@pytest.mark.parametrize(
    "content, line, field",
    [("A:1\tok\nA:2\t\tsyn\n", 2, "name"), ("A:1\n", 1, "name"), ("bare\tname\n", 1, "id")],
)
def test_read_tsv_errors_name_file_line_and_field(tmp_path, content, line, field):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(FormatError) as caught:
        list(read_tsv(path))
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), line, field)


def test_read_obo_terms_synonym_scopes_obsolete_and_id_spaces(tmp_path):
    path = tmp_path / "hp.obo"
    path.write_text(OBO)
    concepts = list(read_obo(path, types=("disease",), id_prefixes=("HP",)))
    assert len(concepts) == 1
    seizure = concepts[0]
    assert (seizure.id, seizure.name, seizure.synonyms) == ("HP:0001250", "Seizure", ("Epileptic seizure", "Fits"))
    assert seizure.alt_ids == ("HP:0002279",) and seizure.xrefs == ("UMLS:C0036572",)
    assert [c.id for c in read_obo(path)] == ["HP:0001250", "GO:0008150"]


def test_read_obo_malformed_synonym_names_its_line(tmp_path):
    path = tmp_path / "bad.obo"
    path.write_text("[Term]\nid: X:1\nname: x\nsynonym: unquoted EXACT []\n")
    with pytest.raises(FormatError) as caught:
        list(read_obo(path))
    assert (caught.value.line, caught.value.field) == (4, "synonym")


# -- index ----------------------------------------------------------------------------------
def test_index_layout_is_versioned_sqlite_and_npy_without_pickles(tiny):
    folder = tiny / "diseases"
    info = json.loads((folder / "index.json").read_text())
    assert info["format"] == FORMAT_VERSION and info["types"] == ["disease"] and info["concepts"] == 10
    assert {p.suffix for p in folder.iterdir()} == {".json", ".sqlite", ".npy"}
    for array in folder.glob("*.npy"):
        np.load(array, allow_pickle=False)  # would raise on an object (pickled) array
    with sqlite3.connect(folder / "concepts.sqlite") as db:
        assert db.execute("SELECT name FROM concepts WHERE id = 'MESH:D001943'").fetchone() == ("Breast Neoplasms",)
        assert db.execute("SELECT COUNT(*) FROM synonyms").fetchone()[0] == 26


def test_index_lookups(tiny):
    index = OntologyIndex(tiny / "diseases")
    mask = index.type_mask("disease")
    row = index.exact(normalize("Breast Tumors"))
    assert [index.concept_record(c).id for c in index.concepts_of(row, mask)] == ["MESH:D001943"]
    assert index.exact("breast tumours") is None
    assert [text for _, _, text in index.variants([loose_key("tumor breast"), "no such key"])] == ["breast tumors"]
    assert index.find("MESH:D010300").name == "Parkinson Disease"
    assert "Paralysis Agitans" in index.synonyms("MESH:D010300")
    assert index.type_mask("gene") == 0 and not index.serves("gene")


def test_outdated_index_format_is_a_clear_error(tiny, tmp_path):
    build_index("old", [Concept("X:1", "thing", types=("disease",))], tmp_path)
    manifest = tmp_path / "old" / "index.json"
    manifest.write_text(manifest.read_text().replace(f'"format": {FORMAT_VERSION}', '"format": 0'))
    with pytest.raises(FormatError, match="rebuild it with biotag build-index"):
        OntologyIndex(tmp_path / "old")


def test_rebuilding_replaces_an_index_and_merges_repeated_ids(tmp_path):
    build_index("x", [Concept("X:1", "alpha", types=("disease",))], tmp_path)
    build_index("x", [Concept("X:1", "beta", types=("disease",)), Concept("X:1", "gamma", types=("chemical",))], tmp_path)
    index = OntologyIndex(tmp_path / "x")
    assert index.info.concepts == 1 and set(index.info.types) == {"disease", "chemical"}
    assert index.synonyms("X:1") == ["beta", "gamma"] and index.exact("alpha") is None
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # no temporary folders left


def test_no_indexes_is_an_input_error_naming_the_command(tmp_path):
    with pytest.raises(InputError, match="biotag build-index"):
        Linker(tmp_path)
    with pytest.raises(InputError, match="no index 'nope'"):
        open_indexes(tmp_path, ["nope"])


# -- approximate candidates ---------------------------------------------------------------
def test_pruned_search_returns_exact_cosines_of_the_brute_force_neighbours():
    rng = np.random.default_rng(0)
    words = ["cardio", "myo", "pathy", "itis", "neuro", "hepat", "oma", "renal", "failure", "acute", "chronic", "syndrome"]
    strings = sorted({" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(300)})
    matrix = NgramMatrix.build(strings)
    dense = np.zeros((len(strings), matrix.idf.size), np.float32)
    for feature in np.flatnonzero(np.diff(matrix.ptr)):
        start, end = matrix.ptr[feature], matrix.ptr[feature + 1]
        dense[matrix.rows[start:end], feature] = matrix.weights[start:end]
    for query in ["cardiomyopathy", "acute renal failure", "hepatitis chronic", "neuropathy"]:
        features, weights = matrix.query(normalize(query))
        brute = dense[:, features] @ weights
        rows, scores = search(matrix, normalize(query), k=3, budget=10**9, pool=len(strings))
        np.testing.assert_allclose(scores, np.sort(brute)[::-1][:3], atol=2e-3)  # every posting summed: the true top 3
        # a budget of 5 postings sums only the rarest 3-gram: the rest are found by
        # binary search, and the scores are still exact cosines
        rows, scores = search(matrix, normalize(query), k=3, budget=5)
        np.testing.assert_allclose(scores, brute[rows], atol=2e-3)
        assert scores[0] > 0


# -- linking --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mention, concept, stage",
    [
        ("breast cancer", "MESH:D001943", "exact"),
        ("Breast-Cancer", "MESH:D001943", "exact"),
        ("breast tumours", "MESH:D001943", "exact"),  # British spelling
        ("tumours of the breast", "MESH:D001943", "variant"),  # + word order, filler words
        ("neoplasms of the ovary", "MESH:D010051", "variant"),
        ("type 2 diabetes", "MESH:D003924", "variant"),
        ("Parkinsson disease", "MESH:D010300", "ngram"),
        ("liver tumours", "MESH:D008113", "synonym"),  # tumor ~ neoplasm, learned from the ontology
        ("hemorrhagic cystitis", "MESH:D003556", "head"),
    ],
)
def test_candidate_stages(linker, mention, concept, stage):
    best = linker.candidates(mention, "disease", 3)[0]
    assert (best.id, best.stage) == (concept, stage)
    assert 0 < best.score <= 1


def test_generic_tail_nouns_of_cell_lines_and_genes_are_dropped(tiny, tmp_path):
    cells = [
        Concept("CVCL:0030", "HeLa", ("HELA",), ("cell_line",)),
        Concept("CVCL:B1TH", "Abcam HeLa HELLS KO", (), ("cell_line",)),
        Concept("CVCL:0031", "MCF-7", ("MCF7",), ("cell_line",)),
    ]
    build_index("cells", cells, tmp_path, priority=0)
    linker = Linker.from_indexes(tmp_path)
    for mention, concept in [("HeLa cells", "CVCL:0030"), ("MCF-7 cell lines", "CVCL:0031"), ("HeLa clone", "CVCL:0030")]:
        best = linker.candidates(mention, "cell_line", 3)[0]
        assert (best.id, best.stage) == (concept, "tail"), mention
    genes = Linker.from_indexes(tiny)
    for mention in ("BRCA1 gene", "BRCA1 proteins", "BRCA1 mRNA"):
        best = genes.candidates(mention, "gene", 3)[0]
        assert (best.id, best.stage) == ("NCBIGene:672", "tail"), mention
    # only the types whose names lack the noun ("T cell" is a cell type's name), and never the last word
    from biotag.linking.wordforms import generic_tail_readings

    assert list(generic_tail_readings(["hela", "cell", "line"], "cell_line")) == ["hela"]
    assert list(generic_tail_readings(["t", "cell"], "cell_type")) == []
    assert list(generic_tail_readings(["cell", "line"], "cell_line")) == []


def test_word_equivalents_are_learned_from_names_of_one_concept():
    names = [["Breast Neoplasms", "Breast Tumors"], ["Liver Neoplasms", "Liver Tumors"], ["Skin Neoplasms", "Skin Tumors"], ["Eye Neoplasms", "Eye Cancer"]]
    learned = {(a, b): n for a, b, n in learn_equivalents(names)}
    assert learned == {("neoplasm", "tumor"): 3, ("tumor", "neoplasm"): 3}


def test_type_consistency(linker):
    diseases = [c.id for c in linker.candidates("ulcer", "disease", 5)]
    assert diseases[0] == "MESH:D014456" and "MESH:D014456X" not in diseases
    assert [c.id for c in linker.candidates("ulcer", "Chemical", 5)][0] == "MESH:D014456X"
    assert all(c.id != "MESH:D000082" for c in linker.candidates("acetaminophen", "disease", 5))
    assert linker.link("paracetamol", "chemical")[0] == Link("MESH", "D000082", "Acetaminophen", 1.0)
    assert linker.link("paracetamol", "species") == []  # no index serves species


def test_nil_below_threshold(linker):
    weak = linker.candidates("anemometer", "disease", 1)
    assert weak[0].id == "MESH:D000740" and weak[0].score < linker.threshold  # a candidate, but weak
    assert linker.link("anemometer", "disease") == []


@pytest.mark.parametrize(
    "mention, expected",
    [
        ("breast and ovarian cancer", ["MESH:D001943", "MESH:D010051"]),
        ("breast or ovarian tumours", ["MESH:D001943", "MESH:D010051"]),
        ("anemia and scoliosis", ["MESH:D000740", "MESH:D012598"]),
        ("Parkinson's disease", ["MESH:D010300"]),  # not composite: stays whole
    ],
)
def test_composite_mentions(linker, mention, expected):
    assert [p.best.id for p in linker.resolve(mention, "disease")] == expected


def test_composite_readings():
    assert ["BRCA1", "BRCA2"] in readings("BRCA1/2")
    assert ["spinocerebellar ataxias 1", "spinocerebellar ataxias 2"] in readings("spinocerebellar ataxias 1 and 2")
    assert ["breast cancer", "ovarian cancer"] in readings("breast and the ovarian cancer")
    assert readings("Parkinson disease") == []


def test_gene_slash_composite_and_document_organism(linker):
    assert [p.best.id for p in linker.resolve("BRCA1/2", "gene")] == ["NCBIGene:672", "NCBIGene:675"]
    assert linker.resolve("Brca1", "gene")[0].best.id == "NCBIGene:672"  # human first by prior
    assert linker.resolve("Brca1", "gene", taxa=frozenset({10090}))[0].best.id == "NCBIGene:12189"


def _document() -> Document:
    doc = Document("1", "Paracetamol (PARA) caused breast and ovarian cancer in mice. PARA again. Known: Parkinson's disease.")
    doc.add_entity(0, 11, "Chemical")
    doc.add_entity(13, 17, "Chemical")
    doc.add_entity(26, 51, "Disease")
    doc.add_entity(55, 59, "Species")
    doc.add_entity(61, 65, "Chemical")
    pd = doc.add_entity(80, 99, "Disease")
    pd.links = [Link("GOLD", "1")]
    doc.metadata["abbreviations"] = [{"short": [13, 17], "long": [0, 11]}]
    return doc


def test_link_documents_in_place(linker):
    doc = _document()
    assert linker.link_documents([doc]) == [doc]
    links = [[(link.ontology, link.id) for link in e.links] for e in doc.entities]
    assert links == [
        [("MESH", "D000082")],
        [("MESH", "D000082")],  # the short form, linked through its long form
        [("MESH", "D001943"), ("MESH", "D010051")],  # composite: two links
        [],  # no species index
        [("MESH", "D000082")],
        [("GOLD", "1")],  # already linked: left alone
    ]
    assert all(link.score is not None and link.name for e in doc.entities[:3] for link in e.links)
    doc.validate()


def test_abbreviations_are_detected_when_the_step_has_not_run(linker):
    doc = _document()
    doc.metadata.clear()
    linker.link_documents([doc])
    assert [(link.ontology, link.id) for link in doc.entities[1].links] == [("MESH", "D000082")]
    assert doc.metadata == {}  # found for linking only: the abbreviations step owns the field


def test_without_abbreviation_pairs_the_short_form_is_nil(linker):
    doc = _document()
    doc.metadata["abbreviations"] = []  # the abbreviations step ran and found none
    linker.link_documents([doc])
    assert doc.entities[1].links == []


def test_linking_pipeline_step(tiny):
    from biotag.pipeline.registry import build_step

    step = build_step("linking", {"index_dir": str(tiny), "ontologies": ["diseases"]})
    doc = Document("d", "Breast cancer.")
    doc.add_entity(0, 13, "disease")
    step([doc])
    assert doc.entities[0].links[0].id == "D001943" and not doc.errors


# -- command line -------------------------------------------------------------------------
def test_add_ontology_command_then_link(tmp_path):
    (tmp_path / "terms.tsv").write_text("0001\tWidget syndrome\tgizmo disease\n")
    (tmp_path / "terms.obo").write_text(OBO)
    runner = CliRunner()
    out = tmp_path / "idx"
    added = runner.invoke(app, ["add-ontology", str(tmp_path / "terms.tsv"), "--name", "mine", "--types", "disease", "--prefix", "MY", "--out", str(out)])
    assert added.exit_code == 0, added.output
    assert "mine: 1 concepts, 2 names, types disease" in added.output
    obo = runner.invoke(app, ["add-ontology", str(tmp_path / "terms.obo"), "--name", "hp", "--types", "disease", "--out", str(out)])
    assert obo.exit_code == 0, obo.output
    linker = Linker(out)
    assert linker.link("gizmo diseases", "disease")[0].id == "0001"
    assert linker.link("epileptic seizures", "disease")[0] == Link("HP", "0001250", "Seizure", 0.95)


def test_add_ontology_command_errors(tmp_path):
    (tmp_path / "bare.tsv").write_text("0001\tWidget syndrome\n")
    result = CliRunner().invoke(app, ["add-ontology", str(tmp_path / "bare.tsv"), "--name", "x", "--types", "disease", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "bare.tsv:1" in result.output and "give a prefix" in result.output


def test_build_index_command_from_a_dictionaries_folder(tmp_path):
    import gzip

    source = tmp_path / "dictionaries" / "ontologies"
    source.mkdir(parents=True)
    with gzip.open(source / "cl.tsv.gz", "wt") as f:
        f.write("id\tname\tsynonyms\nCL:0000540\tneuron\tnerve cell\nCL:0000236\tB cell\tB lymphocyte|B-cell\n")
    runner = CliRunner()
    result = runner.invoke(app, ["build-index", "--ontology", "cl", "--source", str(tmp_path / "dictionaries"), "--out", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert Linker(tmp_path / "idx").link("B-lymphocytes", "cell_type")[0].id == "0000236"
    missing = runner.invoke(app, ["build-index", "--ontology", "mesh", "--source", str(tmp_path / "dictionaries"), "--out", str(tmp_path / "idx")])
    assert missing.exit_code == 2 and "mesh_descriptors" in missing.output


def test_default_ontologies_leave_out_alternative_vocabularies(tmp_path):
    concept = [Concept("X:1", "widget disease", types=("disease",))]
    for name in ("medic-2012", "mondo", "my-terms"):
        build_index(name, concept, tmp_path)
    assert [i.name for i in Linker(tmp_path).indexes] == ["my-terms"]  # a user's ontology always counts
    assert {i.name for i in Linker(tmp_path, ["mondo", "medic-2012"]).indexes} == {"mondo", "medic-2012"}
    (tmp_path / "my-terms" / "index.json").unlink()
    assert {i.name for i in Linker(tmp_path).indexes} == {"mondo", "medic-2012"}  # nothing else: all there is


# -- evaluation -----------------------------------------------------------------------------
def test_scoring_follows_biosyn_rules(linker):
    from biotag.linking.evaluate import GoldMention, LinkingReport, score

    doc = Document("9", "Breast and ovarian cancer. Anemia. Scoliosis. Ulcer.")
    mentions = [
        GoldMention("9", 0, 25, "Breast and ovarian cancer", "disease", frozenset({"MESH:D001943", "MESH:D010051"})),  # composite: both parts right
        GoldMention("9", 27, 33, "Anemia", "disease", frozenset({"MESH:D000740", "MESH:D012598"})),  # any gold ID will do
        GoldMention("9", 35, 44, "Scoliosis", "disease", frozenset({"MESH:D003556"})),  # wrong
        GoldMention("9", 46, 51, "Ulcer", "disease", frozenset({"MESH:D999999"})),  # gold ID unknown to the index
    ]
    report = score(linker, mentions, {"9": doc}, LinkingReport("toy", "test", ["diseases"])).to_dict()
    assert (report["mentions"], report["covered"]) == (4, 3)
    assert report["acc@1"] == 50.0 and report["acc@1 covered"] == round(100 * 2 / 3, 2)
    assert report["misses"][0]["mention"] == "Scoliosis" and report["misses"][0]["predicted"][0][1] == "MESH:D012598"


def test_query_file_errors_name_the_line(tmp_path):
    from biotag.linking.evaluate import read_queries

    path = tmp_path / "q.tsv"
    path.write_text("pmid\tstart\tend\ttype\tmention\tcui\n1\t0\t5\tDisease\tfever\tD005334\n1\tx\t5\tDisease\tfever\tD005334\n")
    with pytest.raises(FormatError) as caught:
        list(read_queries(path, "disease"))
    assert (caught.value.line, caught.value.field) == (3, "start")


def test_linking_from_several_threads_agrees_with_one(tiny):
    from concurrent.futures import ThreadPoolExecutor

    mentions = ["breast cancer", "liver tumours", "Parkinsson disease", "anemia and scoliosis", "BRCA1/2"] * 20
    types = ["disease"] * 4 + ["gene"]
    alone = Linker(tiny)
    expected = [[p.best.id for p in alone.resolve(m, t)] for m, t in zip(mentions, types * 20)]
    shared = Linker(tiny, cache_size=3)  # a tiny cache: entries come and go under contention
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda mt: [p.best.id for p in shared.resolve(*mt)], zip(mentions, types * 20)))
    assert got == expected


def test_words_for_people_link_to_homo_sapiens_not_to_a_similar_taxon(tmp_path):
    from biotag.linking.sources import read_taxonomy

    taxonomy = tmp_path / "taxonomy.tsv"
    taxonomy.write_text(
        "id\tname\tsynonyms\trank\n"
        "NCBITaxon:9606\tHomo sapiens\thuman\tspecies\n"
        "NCBITaxon:29975\tWomersleya\t\tgenus\n"
        "NCBITaxon:36668\tFormicidae\tants\tfamily\n"
    )
    build_index("ncbitaxon", read_taxonomy([taxonomy]), tmp_path / "idx", priority=0)
    linker = Linker(tmp_path / "idx")
    for mention in ("Women", "patients", "children", "human"):
        assert linker.link(mention, "species")[0].id == "9606", mention
