"""Entity linking against the real shared dictionaries: each parser on the first few
thousand lines of its file (never a whole file), a small real index, the query files."""

from itertools import islice

import pytest

from biotag.linking import Linker, build_index
from biotag.linking.evaluate import BENCHMARKS, gold_ids, read_queries
from biotag.linking.sources import SOURCES

HEAD = 3000


@pytest.fixture(scope="module")
def dictionaries(shared_data):
    return shared_data / "dictionaries"


def head(name: str, root, n: int = HEAD):
    return list(islice(SOURCES[name].concepts(root), n))


def test_every_known_dictionary_is_there(dictionaries):
    for source in SOURCES.values():
        assert all(p.is_file() for p in source.paths(dictionaries))


def test_medic_2012_ids_and_alternates(dictionaries):
    concepts = {c.id: c for c in head("medic-2012", dictionaries)}
    tooth = concepts["MESH:C567755"]
    assert (tooth.name, tooth.synonyms, tooth.alt_ids) == ("Tooth Agenesis, Selective, 6", ("STHAG6",), ("OMIM:613097",))
    slos = concepts["MESH:D019082"]  # written 270400|D019082: the MeSH ID names the concept
    assert slos.name == "Smith-Lemli-Opitz Syndrome" and slos.alt_ids == ("OMIM:270400",) and "SLOS" in slos.synonyms
    assert any(c.id.startswith("OMIM:") and not c.alt_ids for c in concepts.values())  # OMIM-only entries


def test_ctd_diseases(dictionaries):
    concepts = {c.id: c for c in head("medic", dictionaries)}
    microdeletion = concepts["MESH:C579849"]
    assert microdeletion.name == "15q24 Microdeletion" and microdeletion.alt_ids == ("DOID:0060395",)
    assert "15q24 Deletion" in microdeletion.synonyms and microdeletion.types == ("disease",)


def test_mesh_types_and_supplementary_records(dictionaries):
    descriptors = {c.id: c for c in head("mesh", dictionaries)}
    assert descriptors["MESH:D000002"].synonyms == ("Temephos",) and descriptors["MESH:D000002"].types == ("chemical",)
    assert "MESH:D000003" not in descriptors  # Abattoirs: no linkable tree
    records = list(islice(SOURCES["mesh"].parser([SOURCES["mesh"].paths(dictionaries)[1]]), 10))
    assert records[0].id == "MESH:C000002" and records[0].prior == 1 and records[0].xrefs == ("MESH:D001561",)


def test_gene_info(dictionaries):
    genes = head("ncbigene", dictionaries)
    a1bg = genes[0]
    assert (a1bg.id, a1bg.name, a1bg.taxon, a1bg.prior) == ("NCBIGene:1", "A1BG", 9606, 0)
    assert {"A1B", "alpha-1-B glycoprotein"} <= set(a1bg.synonyms)
    assert all(g.id.startswith("NCBIGene:") and g.types == ("gene",) and "-" not in g.synonyms for g in genes)


def test_taxonomy_abbreviations_plurals_and_priors(dictionaries):
    taxa = {c.id: c for c in head("ncbitaxon", dictionaries, 20000)}
    warbler = taxa["NCBITaxon:182932"]
    assert {"H. vermivorum", "worm-eating warblers"} <= set(warbler.synonyms) and warbler.prior == 1
    assert all(c.taxon == int(c.id.split(":")[1]) for c in taxa.values())


def test_hpo_obo(dictionaries):
    terms = {c.id: c for c in head("hpo", dictionaries)}
    kidney = terms["HP:0000003"]
    assert kidney.name == "Multicystic kidney dysplasia" and "Multicystic dysplastic kidney" in kidney.synonyms
    assert kidney.alt_ids == ("HP:0004715",) and all(i.startswith("HP:") for i in terms)


@pytest.mark.parametrize(
    "name, prefix, entity_type",
    [("cl", "CL", "cell_type"), ("mondo", "MONDO", "disease"), ("doid", "DOID", "disease"), ("uberon", "UBERON", "anatomy"), ("chebi", "CHEBI", "chemical"), ("cellosaurus", "CVCL", "cell_line"), ("rgd", "RGD", "gene")],
)
def test_tsv_ontologies(dictionaries, name, prefix, entity_type):
    concepts = head(name, dictionaries, 500)
    assert len(concepts) == 500
    assert all(c.id.startswith(prefix + ":") and c.name and c.types == (entity_type,) for c in concepts)


def test_mondo_keeps_cross_references(dictionaries):
    disease = head("mondo", dictionaries, 1)[0]
    assert disease.id == "MONDO:0000001" and "MESH:D004194" in disease.xrefs


def test_small_real_index_links(dictionaries, tmp_path):
    build_index("mesh-head", head("mesh", dictionaries), tmp_path)
    linker = Linker(tmp_path)
    assert linker.link("temephos", "chemical")[0].id == "D000002"
    assert linker.link("Calcimycin", "chemical")[0].id == "D000001"
    assert linker.link("calcimycin", "disease") == []  # a chemical is never a disease


def test_biosyn_query_files(shared_data, monkeypatch):
    monkeypatch.setenv("BIOTAG_DATA", str(shared_data))
    path = shared_data / "dictionaries" / BENCHMARKS["ncbi-disease"].queries.format(split="test")
    queries = list(read_queries(path, "disease"))  # 960 lines
    assert (queries[0].document, queries[0].text, queries[0].ids) == ("9949209", "copper toxicosis", frozenset({"OMIM:215600"}))
    assert any(len(q.ids) > 1 for q in queries)  # composite mentions keep all their IDs
    assert gold_ids(" D007945", "Disease") == {"MESH:D007945"} and gold_ids("-1", "Chemical") == frozenset()
    assert gold_ids("D019803|D005978", "Chemical") == {"MESH:D019803", "MESH:D005978"}
