"""Relation extraction: candidate pairs, marker rendering, metrics, readers on the shared
data, relations through PubTator/BioC, the model (tiny random encoder), ONNX export, the
pipeline step and the train-relations / evaluate-relations commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_tiny_encoder

from biotag.document import Argument, Document, Link, Relation, Span
from biotag.errors import InputError
from biotag.relations.candidates import candidate_pairs, to_example
from biotag.relations.datasets import CHEMPROT, DDI, RelationTask
from biotag.relations.examples import Mention, RelationExample, render
from biotag.relations.metrics import score_labels


def _doc() -> Document:
    # three sentences; gene before chemical in the first
    text = "TP53 is inhibited by aspirin and insulin. Kinase alpha binds aspirin. Cancer follows."
    doc = Document("d1", text)
    doc.sentences = [Span(0, 41), Span(42, 69), Span(70, len(text))]
    second = text.index("aspirin", 42)
    for eid, etype, start, word in (
        ("G1", "gene", 0, "TP53"), ("C1", "chemical", text.index("aspirin"), "aspirin"),
        ("C2", "chemical", text.index("insulin"), "insulin"), ("G2", "gene", 42, "Kinase alpha"),
        ("C3", "chemical", second, "aspirin"), ("D1", "disease", 70, "Cancer"),
    ):
        assert doc.add_entity(start, start + len(word), etype, id=eid).text == word
    return doc


def _pairs(doc, task, window=1):
    return [(c.head.id, c.tail.id) for c in candidate_pairs(doc, task, window=window)]


# -- candidate pairs ----------------------------------------------------------------
def test_candidates_follow_type_constraints_and_head_type():
    pairs = _pairs(_doc(), CHEMPROT)
    # chemical is always the head, even where the gene comes first; no chemical-chemical,
    # no disease, nothing across sentences
    assert pairs == [("C1", "G1"), ("C2", "G1"), ("C3", "G2")]


def test_candidates_read_corpus_labels_as_unified_types():
    doc = _doc()
    for e, label in zip(doc.entities, ("protein", "Chemical", "ChemicalEntity", "GENE", "Chemical", "Disease")):
        e.type = label
    candidates = list(candidate_pairs(doc, CHEMPROT))
    assert [(c.head.id, c.tail.id) for c in candidates] == [("C1", "G1"), ("C2", "G1"), ("C3", "G2")]
    rendered, _ = render(to_example(doc, candidates[0]), "typed", CHEMPROT.type_names)
    assert rendered.startswith("[E2:GENE]TP53[/E2:GENE] is inhibited by [E1:CHEMICAL]aspirin[/E1:CHEMICAL]")
    # a task that names a corpus label itself keeps it
    own = RelationTask("own", ("r",), "none", (("Chemical", "gene"),))
    assert ("C1", "G1") in _pairs(doc, own) and to_example(doc, candidates[0]).head.type == "chemical"


def test_a_protein_on_a_genes_span_is_not_a_second_argument():
    """The bundled model tags a protein name as both gene (BC2GM) and protein (JNLPBA): one
    argument, the gene; a protein on a span of its own still is one."""
    doc = _doc()
    doc.add_entity(0, 4, "protein", id="P1")  # TP53 again
    kinase = doc.add_entity(42, 48, "protein", id="P2")  # "Kinase" alone: no gene there
    assert kinase.text == "Kinase"
    assert _pairs(doc, CHEMPROT) == [("C1", "G1"), ("C2", "G1"), ("C3", "G2"), ("C3", "P2")]
    doc.entities = [e for e in doc.entities if e.id != "G1"]  # the protein alone: it is the argument
    assert _pairs(doc, CHEMPROT)[:2] == [("C1", "P1"), ("C2", "P1")]


def test_candidates_sentence_window():
    assert set(_pairs(_doc(), CHEMPROT, window=2)) == {("C1", "G1"), ("C2", "G1"), ("C3", "G2"), ("C3", "G1"), ("C1", "G2"), ("C2", "G2")}
    region = [c for c in candidate_pairs(_doc(), CHEMPROT, window=2) if c.head.id == "C1" and c.tail.id == "G2"][0]
    assert (region.start, region.end) == (0, 69)  # both sentences
    with pytest.raises(InputError):
        list(candidate_pairs(_doc(), CHEMPROT, window=0))


def test_symmetric_task_orders_by_position_and_skips_same_concept():
    doc = _doc()
    assert _pairs(doc, DDI) == [("C1", "C2")]
    doc.entity("C1").links = [Link("MESH", "D001241")]
    doc.entity("C2").links = [Link("MESH", "D001241")]
    assert _pairs(doc, DDI) == []  # two mentions of one concept are not a relation
    any_pair = RelationTask("t", ("r",), "none", (("gene", "chemical"), ("disease", "gene")), symmetric=True)
    assert ("G2", "C3") in _pairs(_doc(), any_pair)


def test_candidates_segment_a_document_without_sentences():
    doc = _doc()
    doc.sentences = None
    assert _pairs(doc, CHEMPROT) == [("C1", "G1"), ("C2", "G1"), ("C3", "G2")]


def test_to_example_offsets_are_relative_to_the_region():
    doc = _doc()
    c = [c for c in candidate_pairs(doc, CHEMPROT) if c.head.id == "C3"][0]
    ex = to_example(doc, c)
    assert ex.text == "Kinase alpha binds aspirin."
    assert ex.text[ex.head.start : ex.head.end] == "aspirin" and ex.text[ex.tail.start : ex.tail.end] == "Kinase alpha"


# -- markers ------------------------------------------------------------------------
NAMES = {"chemical": "CHEMICAL", "gene": "GENE"}


def _ex(text, head, tail):
    return RelationExample("k", text, Mention(*head, "chemical"), Mention(*tail, "gene"))


def test_typed_markers_multi_token_and_region():
    text = "acetyl salicylic acid blocks cyclo oxygenase 2 here"
    out, (a, b) = render(_ex(text, (0, 21), (29, 46)), "typed", NAMES)
    assert out == "[E1:CHEMICAL]acetyl salicylic acid[/E1:CHEMICAL] blocks [E2:GENE]cyclo oxygenase 2[/E2:GENE] here"
    assert out[a:b] == "[E1:CHEMICAL]acetyl salicylic acid[/E1:CHEMICAL] blocks [E2:GENE]cyclo oxygenase 2[/E2:GENE]"


def test_typed_markers_nested_overlapping_identical_adjacent():
    text = "androgen receptor binds"
    nested, _ = render(_ex(text, (0, 8), (0, 17)), "typed", NAMES)  # chemical inside the gene
    assert nested == "[E2:GENE][E1:CHEMICAL]androgen[/E1:CHEMICAL] receptor[/E2:GENE] binds"
    crossing, _ = render(_ex("abcdefgh", (0, 5), (3, 8)), "typed", NAMES)
    assert crossing == "[E1:CHEMICAL]abc[E2:GENE]de[/E1:CHEMICAL]fgh[/E2:GENE]"
    same, _ = render(_ex("EGF rules", (0, 3), (0, 3)), "typed", NAMES)
    assert same == "[E1:CHEMICAL][E2:GENE]EGF[/E2:GENE][/E1:CHEMICAL] rules"
    adjacent, _ = render(_ex("ABCD", (0, 2), (2, 4)), "typed", NAMES)
    assert adjacent == "[E1:CHEMICAL]AB[/E1:CHEMICAL][E2:GENE]CD[/E2:GENE]"
    # removing the markers gives the text back: no character moved or was lost
    for out in (nested, crossing, same, adjacent):
        import re

        assert re.sub(r"\[/?E[12]:[A-Z]+\]", "", out) in (text, "abcdefgh", "EGF rules", "ABCD")


def test_mask_style_blurb():
    out, (a, b) = render(_ex("aspirin inhibits COX-2 strongly", (0, 7), (17, 22)), "mask", NAMES)
    assert out == "@CHEMICAL$ inhibits @GENE$ strongly" and out[a:b] == "@CHEMICAL$ inhibits @GENE$"
    tail_first, _ = render(_ex("COX-2 binds aspirin", (12, 19), (0, 5)), "mask", NAMES)
    assert tail_first == "@GENE$ binds @CHEMICAL$"
    overlap, (a, b) = render(_ex("androgen receptor binds", (0, 8), (0, 17)), "mask", NAMES)
    assert overlap == "@CHEMICAL-GENE$ binds" and overlap[a:b] == "@CHEMICAL-GENE$"
    drugs, _ = render(RelationExample("k", "a b", Mention(0, 1, "chemical"), Mention(2, 3, "chemical")), "mask", {"chemical": "DRUG"})
    assert drugs == "@DRUG$ @DRUG$"


# -- metrics ------------------------------------------------------------------------
def test_blurb_micro_f1_ignores_the_negative_class():
    gold = ["A", "A", "B", "none", "none", "B"]
    pred = ["A", "B", "none", "none", "A", "B"]
    report = score_labels(gold, pred, ["A", "B"], "none")
    # tp: A, B(last) = 2; fp: B(2nd), A(5th) = 2; fn: A(2nd), B(3rd) = 2
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (2, 2, 2)
    assert report.micro.f1 == pytest.approx(0.5)
    assert report.per_class["A"].to_dict()["support"] == 2
    assert score_labels(["none", "A"], ["none", "none"], ["A"], "none").micro.f1 == 0.0
    assert "micro (positive classes)" in report.table()


# -- readers on the shared data ---------------------------------------------------------
def test_chemprot_and_ddi_readers(shared_data, monkeypatch):
    import gzip

    monkeypatch.setenv("BIOTAG_DATA", str(shared_data))
    from biotag.relations.datasets import read_examples

    task, devel = read_examples("chemprot", "devel")
    assert len(devel) == 11412 and sum(e.label == "false" for e in devel) == 8996
    rows = gzip.open(shared_data / "relations/chemprot/dev.tsv.gz", "rt").read().splitlines()[1:]
    # the restored arguments re-mask to exactly the distributed sentences
    for e, row in zip(devel, rows):
        masked, _ = render(e, "mask", task.type_names)
        assert masked.replace("@CHEMICAL-GENE$", "@CHEM-GENE$") == row.split("\t")[1]
    task, test = read_examples("ddi", "test")
    assert len(test) == 5716 and task.negative == "DDI-false"
    assert all(e.head.start <= e.tail.start and e.text[e.head.start : e.head.end].strip() for e in test)


# -- relations in files ------------------------------------------------------------------
def _with_relation() -> Document:
    doc = _doc()
    doc.relations.append(Relation("R1", "CPR:4", [Argument("Arg1", "C1"), Argument("Arg2", "G1")], score=0.91, source="relations"))
    return doc


def _by_span(doc):
    spans = {e.id: (e.start, e.end, e.type) for e in doc.entities}
    return [(r.type, [spans[a.entity_id] for a in r.arguments], [a.role for a in r.arguments]) for r in doc.relations]


@pytest.mark.parametrize("fmt", ["pubtator", "bioc-xml", "bioc-json", "jsonl"])
def test_relation_round_trip(tmp_path, fmt):
    from biotag import io

    doc = _with_relation()
    path = tmp_path / f"out.{fmt}"
    io.write([doc], path, fmt)
    (back,) = list(io.read(path, fmt))
    assert _by_span(back) == _by_span(doc)
    if fmt != "pubtator":  # PubTator relation lines have no score column
        assert back.relations[0].score == pytest.approx(0.91)


# -- model, export, pipeline ---------------------------------------------------------------
TOY = RelationTask("toy", ("binds", "blocks"), "None", (("chemical", "gene"),), {"chemical": "CHEMICAL", "gene": "GENE"})


@pytest.fixture(scope="module")
def tiny_relation_model(tmp_path_factory):
    from biotag.relations.model import RelationClassifier

    root = tmp_path_factory.mktemp("rel")
    encoder = make_tiny_encoder(root / "encoder")
    model = RelationClassifier.from_encoder(encoder, TOY, style="typed", max_length=24)
    return model.save_pretrained(root / "model")


def test_model_round_trip_and_window_keeps_arguments(tiny_relation_model):
    from biotag.relations.model import RelationClassifier

    model = RelationClassifier.from_pretrained(tiny_relation_model)
    assert model.style == "typed" and model.labels == ("None", "binds", "blocks")
    marker = model.tokenizer.convert_tokens_to_ids("[E1:CHEMICAL]")
    assert marker != model.tokenizer.unk_token_id
    long = "the " * 40 + "Aspirin with TP53" + " of" * 40
    start = long.index("Aspirin")
    ex = RelationExample("k", long, Mention(start, start + 7, "chemical"), Mention(start + 13, start + 17, "gene"))
    (ids,) = model.encoder.ids([ex])
    assert len(ids) == 24 and marker in ids and model.tokenizer.convert_tokens_to_ids("[/E2:GENE]") in ids
    probs = model.predict_proba([ex, _ex("Aspirin with TP53", (0, 7), (13, 17))])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_onnx_export_matches_torch(tiny_relation_model, tmp_path):
    from biotag.relations.model import RelationClassifier
    from biotag.relations.onnx import export_relation_model, load_relation_model

    out = export_relation_model(tiny_relation_model, tmp_path / "onnx", quantize="none")
    onnx_model = load_relation_model(out, threads=1)
    assert type(onnx_model).__name__ == "OnnxRelationClassifier"
    examples = [to_example(d, c) for d in [_doc()] for c in candidate_pairs(d, TOY)]
    torch_probs = RelationClassifier.from_pretrained(tiny_relation_model).predict_proba(examples)
    assert np.allclose(onnx_model.predict_proba(examples), torch_probs, atol=1e-4)
    with pytest.raises(InputError):
        export_relation_model(out, tmp_path / "again")  # an export is not a source


def test_relations_pipeline_step(tiny_relation_model, tmp_path):
    import torch

    from biotag.pipeline import Pipeline
    from biotag.relations.model import RelationClassifier

    # a model biased towards "binds", so that every candidate pair becomes a relation
    model = RelationClassifier.from_pretrained(tiny_relation_model)
    with torch.no_grad():
        model.network.classifier.bias[:] = torch.tensor([0.0, 20.0, 0.0])
    biased = model.save_pretrained(tmp_path / "biased")
    nlp = Pipeline.from_config({"steps": [{"name": "relations", "model": str(biased), "threads": 1}]})
    doc = _doc()
    doc.relations.append(Relation("R1", "gold", [Argument("Arg1", "C1"), Argument("Arg2", "G1")], source="corpus"))
    (out,) = nlp([doc])
    assert out.relations[0].type == "gold"  # relations from other sources are kept
    found = [r for r in out.relations if r.source == "relations"]
    assert [(r.arguments[0].entity_id, r.arguments[1].entity_id) for r in found] == [("C1", "G1"), ("C2", "G1"), ("C3", "G2")]
    assert all(r.type == "binds" and 0.99 < r.score <= 1 and [a.role for a in r.arguments] == ["Arg1", "Arg2"] for r in found)
    assert len({r.id for r in out.relations}) == len(out.relations)
    (again,) = nlp([out])
    assert [r.to_dict() for r in again.relations] == [r.to_dict() for r in out.relations]  # idempotent
    out.validate()


def test_relations_step_needs_a_relation_model(tmp_path, monkeypatch, toy_trained):
    from biotag.pipeline import build_step

    monkeypatch.delenv("BIOTAG_RELATION_MODEL", raising=False)
    with pytest.raises(InputError, match="relation model"):
        build_step("relations")
    with pytest.raises(InputError, match="not a relation model"):
        build_step("relations", {"model": str(toy_trained[0])})  # an NER model


# -- commands on a toy corpus -----------------------------------------------------------------
def _toy_relation_corpus(folder: Path, seed: int = 0) -> Path:
    """Sentences "<chemical> with <gene> ." relate the two (binds); "<chemical> and <gene> ."
    do not. Entities are typed chemical / gene."""
    from biotag.io import jsonl

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 60), ("devel", 20)):
        docs = []
        for i in range(n):
            parts, spans, pos = [], [], 0
            for _ in range(2):
                chem, gene = str(rng.choice(["Aspirin", "Insulin"])), str(rng.choice(["TP53", "BRCA", "Kinase"]))
                word = str(rng.choice(["with", "and"]))
                sentence = f"{chem} {word} {gene} ."
                spans.append((pos, pos + len(chem), pos + len(chem) + len(word) + 2, pos + len(chem) + len(word) + 2 + len(gene), word))
                parts.append(sentence)
                pos += len(sentence) + 1
            doc = Document(f"{split}{i}", " ".join(parts))
            for k, (a, b, c, d, word) in enumerate(spans):
                doc.add_entity(a, b, "chemical", id=f"C{k}")
                doc.add_entity(c, d, "gene", id=f"G{k}")
                if word == "with":
                    doc.relations.append(Relation(f"R{k}", "binds", [Argument("Arg1", f"C{k}"), Argument("Arg2", f"G{k}")]))
            docs.append(doc)
        jsonl.write(docs, folder / f"{split}.jsonl")
    return folder


def test_train_and_evaluate_relations_commands(tmp_path, toy_trained):
    from typer.testing import CliRunner

    from biotag.cli import app

    corpus = _toy_relation_corpus(tmp_path / "toy")
    encoder = make_tiny_encoder(tmp_path / "encoder")
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train-relations", "-d", str(corpus), "-o", str(run), "--encoder", str(encoder), "--epochs", "12",
        "--lr", "3e-3", "--batch-size", "8", "--max-length", "32", "--threads", "1", "--device", "auto",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["device"] == "auto"  # auto = the GPU when there is one
    meta = json.loads((run / "model" / "biotag.json").read_text())
    assert meta["kind"] == "relations" and meta["task"]["labels"] == ["binds"]
    assert (run / "model" / "README.md").read_text().startswith("# biotag relation classifier")
    scores = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate-relations", "-m", str(run / "model"), "-d", str(corpus), "--split", "devel", "--json", str(scores), "--threads", "1"])
    assert result.exit_code == 0, result.output
    (pairs,) = json.loads(scores.read_text())
    assert pairs["pairs"] == 40 and pairs["scores"]["micro"]["f1"] >= 0.9  # the rule is learnable
    result = runner.invoke(app, ["evaluate-relations", "-m", str(run / "model"), "-d", str(corpus), "--split", "devel", "--level", "documents", "--json", str(scores), "--threads", "1"])
    assert result.exit_code == 0, result.output
    (documents,) = json.loads(scores.read_text())
    assert documents["level"] == "entity" and documents["recall_ceiling"] == 1.0 and documents["typed"]["f1"] >= 0.9
    # and in raw text through annotate: NER (the toy "Thing" tagger) finds no chemicals, so
    # the relations step runs and adds nothing, without error
    result = runner.invoke(app, ["annotate", "-m", str(toy_trained[0]), "--steps", "ner,relations", "--relation-model", str(run / "model"), "--threads", "1", "the Aspirin with the TP53 ."])
    assert result.exit_code == 0, result.output
    assert "errors" not in json.loads(result.output.strip().splitlines()[-1])
    bad = runner.invoke(app, ["train-relations", "-d", str(corpus), "-o", str(tmp_path / "bad"), "--style", "boxes"])
    assert bad.exit_code == 2 and "style" in bad.output
    bad_devices = ["gpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in bad_devices:
        bad = runner.invoke(app, ["train-relations", "-d", str(corpus), "-o", str(tmp_path / "bad"), "--encoder", str(encoder), "--device", device])
        assert bad.exit_code == 2 and "device" in bad.output, (device, bad.output)



def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from biotag.relations.training import RelationTrainConfig, RelationTrainer, train_relations

    corpus = _toy_relation_corpus(tmp_path / "toy")
    encoder = make_tiny_encoder(tmp_path / "encoder")
    base = dict(dataset=str(corpus), encoder=str(encoder), epochs=2, lr=3e-3, batch_size=8, max_length=32,
                threads=1, checkpoint_every=4, negative_fraction=0.6)
    whole = train_relations(RelationTrainConfig(output_dir=str(tmp_path / "a"), **base))
    config = RelationTrainConfig(output_dir=str(tmp_path / "b"), **base)
    original = RelationTrainer._step

    def crash(self, indices):
        if self.state.step == 18:  # in the second epoch, after a checkpoint
            raise KeyboardInterrupt
        original(self, indices)

    monkeypatch.setattr(RelationTrainer, "_step", crash)
    with pytest.raises(KeyboardInterrupt):
        train_relations(config)
    assert (tmp_path / "b" / "checkpoint").is_dir()
    with pytest.raises(InputError, match="differs"):
        train_relations(RelationTrainConfig(output_dir=str(tmp_path / "b"), **{**base, "lr": 1e-2}), resume=True)
    monkeypatch.setattr(RelationTrainer, "_step", original)
    resumed = train_relations(config, resume=True)
    wa, wb = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

    def evals(run):
        lines = [json.loads(x) for x in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        return [(r["step"], r["loss"], r["devel"]) for r in lines if r["event"] == "eval"]

    assert evals("a") == evals("b") and len(evals("a")) == 2
