import json
import re
from collections import Counter
from pathlib import Path

import pytest

from biotag.corpora import SPLITS, corpus_path, get_corpus, list_corpora, read_corpus, resolve
from biotag.document import Argument, Document, Relation
from biotag.entity_types import DEFAULT_LABELS, DEFAULT_TYPE_MAP, TYPES, TypeMap, default_type_map, unify
from biotag.errors import FormatError, InputError

NER_TAG = re.compile(r"\t[BIES]-(\S+)$", re.M)
# a PubTator mention line: id, start, end, text, type[, ids...]
PUBTATOR_TYPE = re.compile(r"^[^\t\n|]+\t\d+\t\d+\t[^\t\n]*\t([^\t\n]+)", re.M)


def labels_in_file(path: Path) -> Counter:
    """The entity labels that occur in an IOB TSV or PubTator file, with their counts."""
    text = path.read_text(encoding="utf-8")
    pattern = NER_TAG if path.suffix == ".tsv" else PUBTATOR_TYPE
    return Counter(pattern.findall(text))


# -- the registry -------------------------------------------------------------------
def test_registry_holds_the_benchmark_corpora_with_standard_split_names():
    names = [spec.name for spec in list_corpora()]
    assert names == [
        "ncbi-disease", "bc5cdr-chem", "bc5cdr-disease", "bc5cdr", "bc2gm", "jnlpba", "linnaeus", "s800",
        "ncbi-disease-doc", "bc5cdr-doc", "s800-doc", "biored", "gnormplus", "nlm-gene", "bioid", "nlm-chem", "tmvar",
    ]  # fmt: skip
    for spec in list_corpora():
        assert set(spec.splits) <= set(SPLITS) and spec.splits, spec.name
        assert set(spec.types) <= set(TYPES), spec.name
        assert spec.level == ("sentence" if spec.format == "conll" else "document")
    assert list(get_corpus("biored").splits) == ["train", "devel"]  # its test split is held out
    assert list(get_corpus("nlm-chem").splits) == ["test"]
    assert get_corpus("jnlpba").types == ("gene", "cell_line", "cell_type", "dna", "rna")
    assert get_corpus("nlm-chem").label_map == {"Chemical": "chemical", "OTHER": None, "NonStandardRef": None}


def test_every_registered_split_file_exists(shared_data):
    for spec in list_corpora():
        for split in spec.splits:
            path = corpus_path(spec.name, split, root=shared_data)
            assert path.is_file() and path.stat().st_size > 0, (spec.name, split)


def test_label_maps_cover_every_label_that_occurs_in_the_shared_corpora(shared_data):
    for spec in list_corpora():
        found = Counter()
        for split in spec.splits:
            found += labels_in_file(corpus_path(spec.name, split, root=shared_data))
        # each corpus declares exactly the labels its files use, and maps them all
        assert set(found) == set(spec.label_map), spec.name
        assert {spec.label_map[label] for label in found} - {None} == set(spec.types), spec.name
    # every label in any shared corpus file, registered or not, has a unified type
    files = [*(shared_data / "ner").glob("*/*.tsv"), *(shared_data / "pubtator").rglob("*.PubTator*"), *(shared_data / "pubtator" / "ncbi-disease").glob("NCBI*.txt")]
    assert len(files) >= 40
    everything = Counter()
    for path in files:
        everything += labels_in_file(path)
    assert {"GENE", "protein", "SequenceVariant", "ChromosomeLocation", "SNP", "Modifier"} <= set(everything)
    for label in everything:
        DEFAULT_TYPE_MAP.unify(label)  # raises for an unmapped label


def test_names_are_forgiving_about_case_and_separators():
    assert get_corpus("NCBI_disease") is get_corpus("ncbi-disease")
    assert resolve("BC5CDR-chem") is get_corpus("bc5cdr-chem")


def test_unknown_corpus_names_the_known_ones_and_suggests():
    with pytest.raises(InputError) as info:
        get_corpus("ncbi")
    message = str(info.value)
    assert "unknown corpus 'ncbi'" in message and "did you mean ncbi-disease, ncbi-disease-doc?" in message
    assert "known corpora: ncbi-disease, " in message and "tmvar" in message and info.value.field == "corpus"
    with pytest.raises(InputError, match="no corpus or file 'bc2gn'; did you mean bc2gm"):
        resolve("bc2gn")


def test_unknown_or_missing_split_says_which_exist():
    with pytest.raises(InputError, match="corpus 'nlm-chem' has no split 'train'; its splits: test"):
        corpus_path("nlm-chem", "train")
    with pytest.raises(InputError, match="corpus 'biored' has a split; its splits: train, devel"):
        read_corpus("biored")


def test_missing_file_names_corpus_split_path_and_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOTAG_DATA", str(tmp_path))
    with pytest.raises(InputError) as info:
        corpus_path("bc2gm", "devel")
    assert info.value.path == str(tmp_path / "ner" / "BC2GM" / "devel.tsv")
    assert "corpus 'bc2gm', split 'devel': file not found" in str(info.value) and "BIOTAG_DATA" in str(info.value)
    (tmp_path / "ner" / "BC2GM").mkdir(parents=True)
    (tmp_path / "ner" / "BC2GM" / "devel.tsv").write_text("BRCA1\tB-GENE\n")
    assert corpus_path("bc2gm", "devel") == tmp_path / "ner" / "BC2GM" / "devel.tsv"


# -- user files and type unification --------------------------------------------------
def write_user_corpus(path: Path) -> Path:
    pytest.importorskip("biotag.io.jsonl", reason="the JSONL reader is not in this checkout yet")
    from biotag import io

    doc = Document("pmid1", "BRCA1 at 17q21 causes breast cancer.")
    gene = doc.add_entity(0, 5, "GeneOrGeneProduct")
    locus = doc.add_entity(9, 14, "ChromosomeLocation")
    doc.add_entity(22, 35, "DiseaseOrPhenotypicFeature")
    doc.relations = [
        Relation("R1", "Located", [Argument("gene", gene.id), Argument("locus", locus.id)]),
        Relation("R2", "Association", [Argument("a", concept="672"), Argument("b", concept="D001943")]),
    ]
    io.write([doc], path, "jsonl")
    return path


def test_resolve_accepts_a_path_to_the_users_own_file(tmp_path):
    path = write_user_corpus(tmp_path / "mine.jsonl")
    spec = resolve(str(path))
    assert (spec.name, spec.format, spec.file, spec.types) == ("mine.jsonl", "jsonl", path, ())
    assert spec.path("test") == spec.path(None) == path
    assert resolve(path, format="jsonl").format == "jsonl"
    [doc] = read_corpus(path)
    assert [e.type for e in doc.entities] == ["GeneOrGeneProduct", "ChromosomeLocation", "DiseaseOrPhenotypicFeature"]


def test_read_corpus_unifies_types_and_drops_untagged_labels_with_their_relations(tmp_path):
    path = write_user_corpus(tmp_path / "mine.jsonl")
    [doc] = read_corpus(path, unify_types=True)
    assert [(e.text, e.type) for e in doc.entities] == [("BRCA1", "gene"), ("breast cancer", "disease")]
    assert [r.id for r in doc.relations] == ["R2"]  # R1 named the dropped chromosome location
    doc.validate()
    # a user's type map wins over the default one
    [doc] = read_corpus(path, unify_types=True, type_map=default_type_map().updated({"ChromosomeLocation": "locus"}))
    assert [e.type for e in doc.entities] == ["gene", "locus", "disease"]
    with pytest.raises(InputError, match="document pmid1: field 'type': entity T2: entity label 'ChromosomeLocation'"):
        list(read_corpus(path, unify_types=True, type_map=TypeMap({"GeneOrGeneProduct": "gene"})))


def test_a_corpus_without_devel_reads_as_devel_the_tenth_training_holds_out(tmp_path):
    from biotag import io
    from biotag.training.data import load_corpus

    folder = tmp_path / "variants"
    folder.mkdir()
    docs = [Document(f"pmid{i}", "C676T was found.") for i in range(40)]
    for doc in docs:
        doc.add_entity(0, 5, "variant")
    io.write(docs, folder / "train.jsonl", "jsonl")
    io.write(docs[:2], folder / "test.jsonl", "jsonl")
    devel = [d.id for d in read_corpus(folder, "devel")]
    assert 0 < len(devel) < 40 and len(devel) == len(set(devel))
    corpus = load_corpus(str(folder), "train", "devel", unify_types=False)
    assert [d.id for d in corpus.devel] == devel  # what training held out, and nothing else
    assert not set(devel) & {d.id for d in corpus.train}
    with pytest.raises(InputError, match="no split 'dev'"):
        list(read_corpus(folder, "dev"))  # only devel falls back


def test_read_corpus_on_a_registered_iob_corpus(shared_data):
    pytest.importorskip("biotag.io.conll", reason="the CoNLL reader is not in this checkout yet")
    docs = list(read_corpus("ncbi-disease", "test", root=shared_data, unify_types=True))
    types = Counter(e.type for d in docs for e in d.entities)
    assert types == {"disease": 960}  # ner/MANIFEST.md: 960 test entities


def test_read_corpus_on_a_registered_pubtator_corpus(shared_data):
    pytest.importorskip("biotag.io.pubtator", reason="the PubTator reader is not in this checkout yet")
    docs = list(read_corpus("ncbi-disease-doc", "test", root=shared_data))
    assert len(docs) == 100
    assert Counter(e.type for d in docs for e in d.entities) == {
        "SpecificDisease": 555, "Modifier": 264, "DiseaseClass": 121, "CompositeMention": 20,
    }  # fmt: skip
    unified = list(read_corpus("nlm-gene", "test", root=shared_data, unify_types=True))
    assert Counter(e.type for d in unified for e in d.entities) == {"gene": 2305 + 369 + 20, "cell_type": 266}


# -- the unified type inventory --------------------------------------------------------
@pytest.mark.parametrize(
    "label,expected",
    [
        ("GENE", "gene"), ("protein", "gene"), ("GeneOrGeneProduct", "gene"), ("FamilyName", "gene"), ("GGP", "gene"),
        ("Chemical", "chemical"), ("Simple_chemical", "chemical"), ("ChemicalEntity", "chemical"),
        ("SpecificDisease", "disease"), ("CompositeMention", "disease"), ("DiseaseOrPhenotypicFeature", "disease"),
        ("Organism", "species"), ("OrganismTaxon", "species"), ("CellLine", "cell_line"), ("Cell", "cell_type"),
        ("DNA", "dna"), ("RNA", "rna"), ("ProteinMutation", "variant"), ("SequenceVariant", "variant"),
        ("ChromosomeLocation", None), ("OTHER", None), ("NonStandardRef", None),
        # the lookup ignores case and separators, and unified types map to themselves
        ("Gene", "gene"), ("cell-line", "cell_line"), ("CELL_TYPE", "cell_type"), ("variant", "variant"),
    ],
)  # fmt: skip
def test_unify_maps_corpus_labels_onto_the_inventory(label, expected):
    assert unify(label) == expected


def test_every_default_label_maps_into_the_inventory():
    assert set(DEFAULT_LABELS.values()) == set(TYPES) | {None}
    assert all(unify(t) == t for t in TYPES)


def test_unknown_labels_follow_the_policy():
    with pytest.raises(InputError, match="entity label 'Anatomy' has no unified type") as info:
        unify("Anatomy")
    assert info.value.field == "type"
    assert default_type_map(unknown="drop").unify("Anatomy") is None
    assert default_type_map(unknown="keep").unify("Anatomy") == "Anatomy"
    assert unify("Anatomy", {"Disease": "disease"}) == "Anatomy"  # a plain dict only renames
    with pytest.raises(InputError, match="unknown policy 'ignore'"):
        TypeMap({}, unknown="ignore")


def test_type_map_overrides_from_json(tmp_path):
    path = tmp_path / "types.json"
    path.write_text(json.dumps({"familyname": None, "Anatomy": "anatomy", "Cell": "cell_line"}))
    tmap = TypeMap.from_json(path)
    assert (tmap.unify("FamilyName"), tmap.unify("Anatomy"), tmap.unify("Cell"), tmap.unify("GENE")) == (None, "anatomy", "cell_line", "gene")
    assert "FamilyName" not in tmap.as_dict() and tmap.as_dict()["familyname"] is None
    assert DEFAULT_TYPE_MAP.unify("FamilyName") == "gene"  # the default is untouched
    with pytest.raises(TypeError):
        DEFAULT_TYPE_MAP.mapping["Gene"] = None  # read-only


def test_a_models_own_type_names_take_precedence_over_the_inventory():
    kept = DEFAULT_TYPE_MAP.keeping(["gene", "protein", "dna"])
    assert (kept.unify("protein"), kept.unify("Protein"), kept.unify("GENE"), kept.unify("GGP")) == ("protein", "protein", "gene", "gene")
    assert DEFAULT_TYPE_MAP.unify("protein") == "gene"  # the default is untouched
    assert DEFAULT_TYPE_MAP.keeping(["gene", "dna"]) is DEFAULT_TYPE_MAP  # unified types change nothing
    # nor do raw corpus labels (a model trained with unify_types off is scored on unified types)
    assert DEFAULT_TYPE_MAP.keeping(["SpecificDisease", "Disease", "GENE"]) is DEFAULT_TYPE_MAP
    jnlpba = resolve("jnlpba")
    assert jnlpba.types_for(["gene", "protein", "dna"]) == ("cell_line", "cell_type", "dna", "rna", "protein")
    assert jnlpba.types_for(["gene", "dna"]) == jnlpba.types == ("gene", "cell_line", "cell_type", "dna", "rna")
    assert jnlpba.type_map_for(["protein"]).unify("protein") == "protein" and jnlpba.type_map_for(None) == jnlpba.type_map
    assert resolve("bc2gm").types_for(["gene", "protein"]) == ("gene",)


def test_type_map_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"Gene": "gene",\n "Cell": }')
    with pytest.raises(FormatError) as info:
        TypeMap.from_json(bad)
    assert (info.value.path, info.value.line) == (str(bad), 2)
    bad.write_text('["Gene"]')
    with pytest.raises(FormatError, match="expected a JSON object of label -> type, got list"):
        TypeMap.from_json(bad)
    bad.write_text('{"Gene": 3}')
    with pytest.raises(InputError, match=r"bad.json: field 'type_map': label 'Gene' must map to a type name or null, got 3"):
        TypeMap.from_json(bad)
    with pytest.raises(InputError, match="cannot read the type map"):
        TypeMap.from_json(tmp_path / "missing.json")
