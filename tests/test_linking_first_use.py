"""A fresh machine: the default linking indexes are built from the dictionaries on
first use, so `biotag annotate` returns IDs without a separate `biotag build-index`."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from biotag.cli import app
from biotag.document import Document
from biotag.errors import InputError
from biotag.linking import Linker
from biotag.linking.index import list_indexes, read_info
from biotag.linking.sources import build_on_first_use

# CTD_diseases.tsv columns: name, ID, alt IDs, definition, parents, trees, parent trees, synonyms
CTD = "# CTD header line\nBreast Neoplasms\tMESH:D001943\t\t\t\t\t\tBreast Cancer|Breast Tumors\nParkinson Disease\tMESH:D010300\t\t\t\t\t\tParalysis Agitans\n"
CL = "id\tname\tsynonyms\nCL:0000236\tB cell\tB lymphocyte|B-cell\n"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """Dictionaries for two default sources under $BIOTAG_DATA, an empty index folder,
    the first-use build switched on (the test suite switches it off by default)."""
    root = tmp_path / "data" / "dictionaries"
    for relative, text in (("ctd/CTD_diseases.tsv.gz", CTD), ("ontologies/cl.tsv.gz", CL)):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(root / relative, "wt") as handle:
            handle.write(text)
    monkeypatch.setenv("BIOTAG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BIOTAG_INDEXES", str(tmp_path / "indexes"))
    monkeypatch.setenv("BIOTAG_AUTO_INDEX", "1")
    return tmp_path / "indexes"


def test_default_linker_builds_the_available_default_indexes_once(fresh):
    linker = Linker()
    assert sorted(p.name for p in list_indexes(fresh)) == ["cl", "medic"]  # the others have no files here
    assert linker.link("breast cancers", "disease")[0].id == "D001943"
    assert linker.link("B-lymphocytes", "cell_type")[0].id == "0000236"
    built = read_info(fresh / "medic").built
    Linker()
    assert read_info(fresh / "medic").built == built  # not rebuilt
    assert build_on_first_use() == []


def test_linking_step_of_the_default_pipeline_builds_on_first_use(fresh):
    from biotag.pipeline.registry import build_step

    doc = Document("d", "Paralysis agitans.")
    doc.add_entity(0, 17, "disease")
    build_step("linking")([doc])
    assert [(link.ontology, link.id) for link in doc.entities[0].links] == [("MESH", "D010300")]


def test_annotate_on_a_fresh_machine_returns_ids(fresh):
    result = CliRunner().invoke(app, ["annotate", "Women with breast cancer were enrolled."])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    linked = {(e["text"], link["id"]) for e in doc["entities"] for link in e.get("links", [])}
    assert ("breast cancer", "D001943") in linked, doc["entities"]


def test_switched_off_or_without_dictionaries_nothing_is_built(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("BIOTAG_AUTO_INDEX", "0")
    with pytest.raises(InputError, match="biotag build-index"):
        Linker()
    monkeypatch.setenv("BIOTAG_AUTO_INDEX", "1")
    monkeypatch.setenv("BIOTAG_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="--source DIR"):
        Linker()
    assert not list_indexes(fresh)


def test_an_explicit_index_folder_or_ontology_list_is_never_built_into(fresh, tmp_path):
    with pytest.raises(InputError):
        Linker(tmp_path / "mine")
    with pytest.raises(InputError):
        Linker(None, ["medic"])
    assert not list_indexes(fresh) and not list_indexes(tmp_path / "mine")

