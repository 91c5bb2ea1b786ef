"""Training: config, data preparation, epoch plans, learning, checkpoint and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from biotag.document import Document, Span
from biotag.errors import InputError
from biotag.labels import O, LabelSchema, TokenSpan
from biotag.models.token_classifier import TokenClassifier
from biotag.training import TrainConfig, train
from biotag.training.checkpoint import existing_dir, replacing_dir
from biotag.training.data import (
    AlignmentStats,
    collate_items,
    corpus_shares,
    document_examples,
    epoch_batches,
    training_items,
)
from helpers import make_tiny_encoder, write_toy_corpus


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "encoder")


def toy_config(tmp_path: Path, encoder: Path, corpus: Path, name: str, **changes) -> TrainConfig:
    settings = dict(
        corpora=[str(corpus)],
        output_dir=str(tmp_path / name),
        encoder=str(encoder),
        unify_types=False,
        epochs=10,
        lr=3e-3,
        batch_size=8,
        max_length=32,
        threads=1,
        patience=0,
        checkpoint_every=0,
        dictionary_features=False,  # plain toy models; tests/test_features.py trains with features
        shape_features=False,
    )
    settings.update(changes)
    return TrainConfig(**settings)


# -- config ---------------------------------------------------------------------------
def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(corpora=["ncbi-disease", "bc5cdr"], output_dir="out", types=["disease"], lr=1e-4, max_steps=7)
    path = config.save(tmp_path / "config.json")
    assert TrainConfig.from_json(path) == config
    assert config.replace(seed=1).differences(config) == ["seed"]
    assert config.replace(threads=4).differences(config) == []


@pytest.mark.parametrize(
    "data, field",
    [
        ({"corpora": ["x"], "output_dir": "o", "epochs": 0}, "epochs"),
        ({"corpora": ["x"], "output_dir": "o", "scheme": "iobes"}, "scheme"),
        ({"corpora": ["x"], "output_dir": "o", "learning_rate": 1}, "learning_rate"),
        ({"corpora": ["x"]}, "output_dir"),
        ({"corpora": ["x"], "output_dir": "o", "negative_evidence": {"chemical": "gene"}}, "negative_evidence"),
        ({"corpora": ["x"], "output_dir": "o", "uncertain_inside": {"gene": "dna"}}, "uncertain_inside"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, data, field):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        TrainConfig.from_json(path)
    assert info.value.field == field and info.value.path == str(path)


# -- documents -> examples ---------------------------------------------------------------
def test_entities_are_fitted_onto_words_and_counted():
    doc = Document(id="d1", text="IL-2R alpha binds p53. The BRCA1 gene.")
    words = [(0, 5), (6, 11), (12, 17), (18, 21), (21, 22), (23, 26), (27, 32), (33, 37), (37, 38)]
    doc.tokens = [Span(a, b) for a, b in words]
    doc.sentences = [Span(0, 22), Span(23, 38)]
    doc.add_entity(0, 11, "Gene")  # exact: words 0-1
    doc.add_entity(3, 5, "Gene")  # "2R" inside word 0: extended
    doc.add_entity([(0, 5), (12, 17)], type="Gene")  # discontinuous: covering span 0-2
    doc.add_entity(18, 26, "Gene")  # "p53. The" crosses the sentence end: cut
    doc.add_entity(27, 32, "Disease")  # a type the model does not predict
    stats = AlignmentStats()
    schema = LabelSchema(("Gene",), "multilabel")
    examples = document_examples(doc, 0, "toy", schema, ("Gene",), stats)
    assert [e.words for e in examples] == [["IL-2R", "alpha", "binds", "p53", "."], ["The", "BRCA1", "gene", "."]]
    assert examples[0].key == ("toy", "d1", 0)
    assert examples[0].spans == sorted(
        {TokenSpan(0, 2, "Gene"), TokenSpan(0, 1, "Gene"), TokenSpan(0, 3, "Gene"), TokenSpan(3, 5, "Gene")}
    )
    assert examples[1].spans == []
    assert (stats.entities, stats.extended, stats.discontinuous, stats.cross_sentence, stats.other_types) == (4, 1, 1, 1, 1)
    assert examples[0].type_mask.tolist() == [True]


def test_negative_evidence_unmasks_excluded_types_on_gold_spans_only(tiny_encoder):
    """On a gene corpus, the words of a gold gene teach "not a chemical"; the other words
    still say nothing about chemicals, and types the corpus annotates are untouched."""
    doc = Document(id="d1", text="The BRCA1 gene and Aspirin .")
    doc.tokens = [Span(a, b) for a, b in [(0, 3), (4, 9), (10, 14), (15, 18), (19, 26), (27, 28)]]
    doc.sentences = [Span(0, 28)]
    doc.add_entity(4, 14, "Gene")
    schema = LabelSchema(("Gene", "Chemical", "Species"), "multilabel")
    rules = {"Chemical": ["Gene"], "Species": ["Disease"]}
    (plain,) = document_examples(doc, 0, "genes", schema, ("Gene",), AlignmentStats())
    (example,) = document_examples(doc, 0, "genes", schema, ("Gene",), AlignmentStats(), rules)
    assert plain.known_absent is None
    assert example.known_absent[:, 1].tolist() == [False, True, True, False, False, False]
    assert not example.known_absent[:, [0, 2]].any()
    # a corpus that annotates chemicals already has them all: nothing to add
    (both,) = document_examples(doc, 0, "both", schema, ("Gene", "Chemical"), AlignmentStats(), rules)
    assert both.known_absent is None

    from biotag.models.token_classifier import TokenClassifier

    encoder = TokenClassifier.from_encoder(tiny_encoder, schema, max_length=32).encoder
    items = training_items([plain, example], encoder, schema, AlignmentStats())
    batch = collate_items(items, encoder)
    n = len(plain.words)
    assert batch.type_mask[:n].tolist() == [[True, False, False]] * n
    assert batch.type_mask[n:, 1].tolist() == [False, True, True, False, False, False]
    assert batch.labels[n:][:, 1].tolist() == [O] * n  # "not a chemical" is the O label


def test_uncertain_inside_masks_the_hidden_type_within_gold_spans_only(tiny_encoder):
    """JNLPBA labels "BRCA1 gene" DNA and never also gene: on a corpus annotating both, the
    gene head learns nothing inside DNA spans (its O there is no evidence), but still learns
    from gene spans, from the other words, and wherever a gold gene overlaps the DNA span."""
    doc = Document(id="d1", text="The BRCA1 gene and IL-2 .")
    doc.tokens = [Span(a, b) for a, b in [(0, 3), (4, 9), (10, 14), (15, 18), (19, 23), (24, 25)]]
    doc.sentences = [Span(0, 25)]
    doc.add_entity(4, 14, "DNA")
    doc.add_entity(19, 23, "Gene")
    schema = LabelSchema(("Gene", "DNA", "Species"), "multilabel")
    rules = {"Gene": ["DNA", "RNA"]}
    annotated = ("Gene", "DNA")
    (plain,) = document_examples(doc, 0, "jnlpba", schema, annotated, AlignmentStats())
    (example,) = document_examples(doc, 0, "jnlpba", schema, annotated, AlignmentStats(), {}, rules)
    assert plain.unsure is None
    assert example.unsure[:, 0].tolist() == [False, True, True, False, False, False]
    assert not example.unsure[:, 1:].any()
    # a corpus without DNA annotation has no DNA spans to doubt by; one without genes, no gene head to spare
    (gene_only,) = document_examples(doc, 0, "bc2gm", schema, ("Gene",), AlignmentStats(), {}, rules)
    assert gene_only.unsure is None
    # a gold gene span inside the DNA span is evidence for the gene head there
    doc.add_entity(4, 9, "Gene")
    (nested,) = document_examples(doc, 0, "jnlpba", schema, annotated, AlignmentStats(), {}, rules)
    assert nested.unsure[:, 0].tolist() == [False, False, True, False, False, False]

    from biotag.models.token_classifier import TokenClassifier

    encoder = TokenClassifier.from_encoder(tiny_encoder, schema, max_length=32).encoder
    batch = collate_items(training_items([plain, example], encoder, schema, AlignmentStats()), encoder)
    n = len(plain.words)
    assert batch.type_mask[:n].tolist() == [[True, True, False]] * n
    assert batch.type_mask[n:, 0].tolist() == [True, False, False, True, True, True]
    assert batch.type_mask[n:, 1].all() and not batch.type_mask[n:, 2].any()


# -- epoch plans ---------------------------------------------------------------------------
def test_temperature_sampling_lifts_small_corpora():
    assert corpus_shares([900, 100], 1.0).tolist() == [900, 100]
    assert corpus_shares([900, 100], 0.0).tolist() == [500, 500]
    shares = corpus_shares([900, 100], 0.5)
    assert shares.sum() == 1000 and shares.tolist() == [750, 250]  # 30:10


def test_epoch_plan_is_a_function_of_seed_and_epoch():
    rng = np.random.default_rng(0)
    corpus = np.array([0] * 90 + [1] * 10)
    lengths = rng.integers(3, 50, size=100)
    plan = epoch_batches(corpus, lengths, 8, 0.5, seed=5, epoch=2)
    again = epoch_batches(corpus, lengths, 8, 0.5, seed=5, epoch=2)
    other = epoch_batches(corpus, lengths, 8, 0.5, seed=5, epoch=3)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again)) and len(plan) == len(again)
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other))
    items = np.concatenate(plan)
    assert len(items) == 100 and len(plan) == 13
    assert (corpus[items] == 1).sum() == 25  # the small corpus is oversampled (T = 0.5)
    single = np.concatenate(epoch_batches(np.zeros(30, dtype=np.int64), lengths[:30], 4, 0.5, seed=1, epoch=0))
    assert sorted(single.tolist()) == list(range(30))  # one corpus: every item exactly once


# -- learning --------------------------------------------------------------------------------
def test_learns_a_contextual_pattern(tmp_path, tiny_encoder):
    """A capitalised word is an entity only right after "the": needs the encoder's context."""
    corpus = write_toy_corpus(tmp_path / "toy", n_train=100, n_devel=15)
    config = toy_config(tmp_path, tiny_encoder, corpus, "run")
    model_dir = train(config)
    records = [json.loads(line) for line in (Path(config.output_dir) / "log.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "data" and records[0]["alignment"]["extended"] == 0
    evals = [r for r in records if r["event"] == "eval"]
    assert len(evals) == 10 and evals[-1]["loss"] < evals[0]["loss"]
    summary = json.loads((Path(config.output_dir) / "summary.json").read_text())
    assert summary["best_f1"] > 0.9 and summary["stop_reason"] == "epochs"
    assert not (Path(config.output_dir) / "checkpoint").exists()
    model = TokenClassifier.from_pretrained(model_dir)
    scores = model.predict_words([["the", "Insulin", "of", "Kinase", "."]])[0]
    assert [(s.start, s.end) for s, _ in model.decode(scores)] == [(1, 2)]
    assert model.card["metrics"]["devel_f1"] == round(summary["best_f1"], 4)


def test_early_stopping_and_max_steps(tmp_path, tiny_encoder):
    corpus = write_toy_corpus(tmp_path / "toy", n_train=20, n_devel=5)
    config = toy_config(tmp_path, tiny_encoder, corpus, "short", lr=1e-9, patience=2, eval_every=2)
    train(config)
    summary = json.loads((Path(config.output_dir) / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping" and summary["steps"] == 6  # no gain at steps 4 and 6
    train(config.replace(max_steps=3, patience=0, output_dir=str(tmp_path / "capped")))
    summary = json.loads((tmp_path / "capped" / "summary.json").read_text())
    assert summary["stop_reason"] == "max_steps" and summary["steps"] == 3


def test_corpora_train_only_the_types_they_annotate(tmp_path, tiny_encoder):
    from biotag.training.trainer import Trainer

    genes = write_toy_corpus(tmp_path / "genes", n_train=12, n_devel=3, seed=1, entity_type="gene")
    diseases = write_toy_corpus(tmp_path / "diseases", n_train=4, n_devel=3, seed=2, entity_type="disease")
    config = toy_config(tmp_path, tiny_encoder, genes, "multi", corpora=[str(genes), str(diseases)],
                        unify_types=True, epochs=1, batch_size=4, temperature=0.0)  # fmt: skip
    trainer = Trainer(config)
    assert trainer.schema.types == ("gene", "disease")
    masks = {it.corpus: it.type_mask.tolist() for it in trainer.items}
    assert masks == {0: [True, False], 1: [False, True]}
    assert trainer.corpus_sizes[str(diseases)] == {"train_sentences": 12, "devel_sentences": 9, "types": ["disease"]}
    plan = np.concatenate(trainer._plan(0))
    assert (trainer.item_corpus[plan] == 1).sum() == (trainer.item_corpus[plan] == 0).sum()  # T = 0: equal shares
    assert trainer.steps_per_epoch == len(plan) // 4 and len(plan) == len(trainer.items)
    trainer.start_fresh()
    assert trainer.run() == tmp_path / "multi" / "model"


# -- checkpoint and resume ---------------------------------------------------------------------
def test_interrupted_directory_replacement_leaves_a_complete_copy(tmp_path):
    final = tmp_path / "checkpoint"
    with replacing_dir(final) as tmp:
        (tmp / "state").write_text("1")
    assert existing_dir(final) == final and (final / "state").read_text() == "1"
    final.rename(final.with_name("checkpoint.old"))  # as if killed between the two renames
    assert (existing_dir(final) / "state").read_text() == "1"
    with pytest.raises(RuntimeError):
        with replacing_dir(final) as tmp:
            (tmp / "state").write_text("2")
            raise RuntimeError("killed while writing")
    assert (existing_dir(final) / "state").read_text() == "1"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _eval_records(out: Path) -> list[tuple]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"], r["devel"]["f1"]) for r in map(json.loads, lines) if r["event"] == "eval"]


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, tiny_encoder):
    corpus = write_toy_corpus(tmp_path / "toy", n_train=40, n_devel=8)
    # dropout stays on (0.1): the resumed run must replay the same dropout masks too
    settings = dict(epochs=6, checkpoint_every=3, eval_every=5, patience=0, grad_accum=2)
    reference = toy_config(tmp_path, tiny_encoder, corpus, "reference", **settings)
    train(reference)

    interrupted = toy_config(tmp_path, tiny_encoder, corpus, "interrupted", **settings)
    config_path = interrupted.save(tmp_path / "interrupted.json")
    out = Path(interrupted.output_dir)
    command = [sys.executable, "-m", "biotag.training", str(config_path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # kill once a checkpoint exists and an evaluation was logged (possibly after it: that
    # log line must then be dropped and replayed, not duplicated)
    while not ((out / "checkpoint" / "state.pt").exists() and '"eval"' in _read(out / "log.jsonl")):
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "summary.json").exists(), "the run finished before it could be killed"
    killed_at = json.loads((existing_dir(out / "checkpoint") / "state.json").read_text())["step"]

    resumed = subprocess.run(command + ["--resume"], env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert b"resuming at epoch" in resumed.stderr
    assert 0 < killed_at < json.loads((out / "summary.json").read_text())["steps"]

    ref_summary = json.loads((Path(reference.output_dir) / "summary.json").read_text())
    new_summary = json.loads((out / "summary.json").read_text())
    assert abs(new_summary["best_f1"] - ref_summary["best_f1"]) <= 0.003  # exact equality expected
    assert new_summary["best_f1"] == ref_summary["best_f1"]
    assert _eval_records(out) == _eval_records(Path(reference.output_dir))
    ref_weights = load_file(Path(reference.output_dir) / "model" / "model.safetensors")
    new_weights = load_file(out / "model" / "model.safetensors")
    assert ref_weights.keys() == new_weights.keys()
    assert all(torch.equal(ref_weights[k], new_weights[k]) for k in ref_weights)


def test_resume_refuses_a_changed_config(tmp_path, tiny_encoder):
    corpus = write_toy_corpus(tmp_path / "toy", n_train=10, n_devel=3)
    config = toy_config(tmp_path, tiny_encoder, corpus, "run", epochs=2, checkpoint_every=1, max_steps=2)
    train(config)
    assert train(config, resume=True) == Path(config.output_dir) / "model"  # finished: nothing to do
    out = Path(config.output_dir)
    (out / "summary.json").unlink()
    from biotag.training.trainer import Trainer

    trainer = Trainer(config)
    trainer.start_fresh()
    trainer._checkpoint()
    with pytest.raises(InputError) as info:
        train(config.replace(lr=1e-2), resume=True)
    assert info.value.field == "lr"


def test_a_gpu_device_without_a_gpu_is_a_clear_error():
    import torch

    from biotag.errors import InputError
    from biotag.training.run import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no GPU"):
            resolve_device("cuda")
