"""Relations end to end through the command line: raw text -> the bundled NER model -> a
relation model (``biotag annotate --steps ner,relations``) in JSONL and PubTator output;
a relation model through ``biotag export`` (int8 ONNX) and ``biotag evaluate-relations``
with both backends side by side."""

from __future__ import annotations

import json

import pytest
from helpers import make_tiny_encoder
from test_relations import TOY, _toy_relation_corpus
from typer.testing import CliRunner

from biotag.cli import app
from biotag.relations.datasets import CHEMPROT

TEXT = "Aspirin irreversibly inhibits cyclooxygenase-2 (COX-2) in platelets. Warfarin binds albumin and CYP2C9."


@pytest.fixture(scope="module")
def always_cpr4(tmp_path_factory):
    """A ChemProt-shaped relation model (tiny random encoder) whose head is biased so that
    every candidate pair is a CPR:4 relation: what the pipeline does with the model's
    answers is under test, not the answers."""
    import torch

    from biotag.relations.model import RelationClassifier

    root = tmp_path_factory.mktemp("rel-e2e")
    model = RelationClassifier.from_encoder(make_tiny_encoder(root / "encoder"), CHEMPROT, style="typed", max_length=48)
    with torch.no_grad():
        model.network.classifier.bias[:] = 0.0
        model.network.classifier.bias[CHEMPROT.all_labels.index("CPR:4")] = 20.0
    return model.save_pretrained(root / "model")


def _same_sentence_chemical_gene_pairs(doc: dict) -> set[tuple[str, str]]:
    sentences = doc["sentences"]

    def sentence(entity):
        return next(i for i, (s, e) in enumerate(sentences) if s <= entity["spans"][0][0] < e)

    chemicals = [e for e in doc["entities"] if e["type"] == "chemical"]
    genes = [e for e in doc["entities"] if e["type"] == "gene"]
    gene_spans = [g["spans"] for g in genes]  # a protein (JNLPBA's head) is an argument where no gene is
    genes += [e for e in doc["entities"] if e["type"] == "protein" and e["spans"] not in gene_spans]
    return {(c["id"], g["id"]) for c in chemicals for g in genes if sentence(c) == sentence(g)}


def test_annotate_ner_relations_from_raw_text(always_cpr4, tmp_path):
    runner = CliRunner()
    args = ["annotate", "--steps", "ner,relations", "--relation-model", str(always_cpr4), "--threads", "1"]
    result = runner.invoke(app, [*args, TEXT])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    expected = _same_sentence_chemical_gene_pairs(doc)
    # the bundled NER model finds chemicals and genes in both sentences...
    assert len({i for pair in expected for i in pair}) >= 4, doc["entities"]
    found = {(r["arguments"][0]["entity"], r["arguments"][1]["entity"]) for r in doc["relations"]}
    # ...and every chemical-gene pair inside one sentence, none across, becomes a relation
    assert found == expected
    assert all(r["type"] == "CPR:4" and r["source"] == "relations" and r["score"] > 0.99 for r in doc["relations"])

    from biotag import io

    out = tmp_path / "out.pubtator"
    result = runner.invoke(app, [*args, "-f", "pubtator", "-o", str(out), TEXT])
    assert result.exit_code == 0, result.output
    assert sum(line.split("\t")[1:2] == ["CPR:4"] for line in out.read_text().splitlines()) == len(expected)
    (back,) = list(io.read(out, "pubtator"))
    texts = {e.id: e.text for e in back.entities}
    by_id = {e["id"]: e["text"] for e in doc["entities"]}
    assert {(texts[r.arguments[0].entity_id], texts[r.arguments[1].entity_id]) for r in back.relations} == {
        (by_id[a], by_id[b]) for a, b in expected
    }


def test_export_int8_and_evaluate_both_backends(tmp_path):
    from biotag.relations.model import RelationClassifier

    corpus = _toy_relation_corpus(tmp_path / "toy")
    model_dir = RelationClassifier.from_encoder(make_tiny_encoder(tmp_path / "encoder"), TOY, max_length=32).save_pretrained(tmp_path / "model")
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "int8"), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "int8" / "biotag.json").read_text())
    assert meta["kind"] == "relations" and meta["onnx"]["quantize"] == "int8" and (tmp_path / "int8" / meta["onnx"]["file"]).is_file()
    scores = tmp_path / "scores.json"
    result = runner.invoke(app, [
        "evaluate-relations", "-m", str(model_dir), "-m", str(tmp_path / "int8"), "-d", str(corpus), "--split", "devel",
        "--threads", "1", "--json", str(scores),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    torch_run, onnx_run = json.loads(scores.read_text())
    assert (torch_run["backend"], onnx_run["backend"]) == ("torch", "onnx") and torch_run["pairs"] == onnx_run["pairs"] == 40
    assert "| micro-F1 | pairs/s |" in result.output
    # float embedding tables: still quantized matrix products, but no quantized embedding op
    result = runner.invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "int8-fe"), "--quantize", "int8-fp32-embeddings"])
    assert result.exit_code == 0, result.output
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "int8-fe" / "model.int8.onnx")).graph.node}
    assert ops & {"DynamicQuantizeMatMul", "MatMulInteger", "QAttention"} and "QEmbedLayerNormalization" not in ops
    # --full-range reaches the relation exporter: 8-bit weights, recorded in biotag.json
    result = runner.invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "int8-full"), "--quantize", "int8", "--full-range"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "int8-full" / "biotag.json").read_text())["onnx"]["weight_bits"] == 8
    assert meta["onnx"]["weight_bits"] == 7
    # compression options belong to NER exports: refused, not silently ignored
    refused = runner.invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "pruned"), "--prune-heads", "0.5"])
    assert refused.exit_code != 0 and "--prune-heads" in refused.output and not (tmp_path / "pruned").exists()


def _always(task, label, root):
    import torch

    from biotag.relations.model import RelationClassifier

    model = RelationClassifier.from_encoder(make_tiny_encoder(root / "encoder"), task, style="typed", max_length=32)
    with torch.no_grad():
        model.network.classifier.bias[:] = 0.0
        model.network.classifier.bias[task.all_labels.index(label)] = 20.0
    return model


def test_document_evaluation_end_to_end_matches_predicted_entities_by_span(tmp_path):
    from biotag.document import Document
    from biotag.io import jsonl
    from biotag.relations.evaluate import evaluate_documents

    corpus = _toy_relation_corpus(tmp_path / "toy")
    gold = list(jsonl.read(corpus / "devel.jsonl"))
    model = _always(TOY, "binds", tmp_path)  # every candidate pair is a relation

    def first_sentence_ner(docs: list[Document]) -> list[Document]:
        # a stand-in NER: the gold entities of each document's first sentence, under new ids
        by_id = {d.id: d for d in gold}
        for doc in docs:
            assert not doc.entities and not doc.relations  # only the text goes in
            for e in by_id[doc.id].entities:
                if e.id.endswith("0"):
                    doc.add_entity(e.start, e.end, e.type, id=f"X{e.id}")
        return docs

    with_gold = evaluate_documents(model, str(corpus), "devel")
    end_to_end = evaluate_documents(model, str(corpus), "devel", annotate=first_sentence_ner)
    first = sum(r.arguments[0].entity_id == "C0" for d in gold for r in d.relations)
    total = sum(len(d.relations) for d in gold)
    assert with_gold["entities"] == "gold" and with_gold["pair"]["recall"] == 1.0 and with_gold["pair"]["fp"] == len(gold) * 2 - total
    assert end_to_end["entities"] == "predicted" and end_to_end["recall_ceiling"] == 1.0
    assert end_to_end["recall_ceiling_predicted_entities"] == round(first / total, 4)
    # predicted entities with other ids still match the gold relations by their spans
    assert (end_to_end["pair"]["tp"], end_to_end["pair"]["fp"], end_to_end["pair"]["fn"]) == (first, len(gold) - first, total - first)


def test_evaluate_relations_annotate_option_runs_the_bundled_ner(tmp_path):
    corpus = _toy_relation_corpus(tmp_path / "toy")
    model_dir = _always(TOY, "binds", tmp_path).save_pretrained(tmp_path / "model")
    scores = tmp_path / "scores.json"
    runner = CliRunner()
    args = ["evaluate-relations", "-m", str(model_dir), "-d", str(corpus), "--split", "devel", "--threads", "1", "--json", str(scores)]
    result = runner.invoke(app, [*args, "--level", "documents", "--annotate", "ner"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(scores.read_text())
    assert report["entities"] == "predicted" and 0 <= report["recall_ceiling_predicted_entities"] <= 1
    assert "recall ceiling with the entities of ner" in result.output
    wrong = runner.invoke(app, [*args, "--annotate", "ner"])  # pairs level has no documents to annotate
    assert wrong.exit_code != 0 and "--level documents" in wrong.output
