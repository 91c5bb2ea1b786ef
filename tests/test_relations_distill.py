"""Relation distillation: ``biotag distill`` with a relation teacher (tiny random models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import make_tiny_encoder
from test_relations import _toy_relation_corpus
from typer.testing import CliRunner

from biotag.cli import app
from biotag.errors import InputError


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A toy ChemProt-like teacher trained on "<chemical> with|and <gene> ." sentences."""
    from biotag.relations.training import RelationTrainConfig, train_relations

    root = tmp_path_factory.mktemp("rel-teacher")
    corpus = _toy_relation_corpus(root / "toy")
    encoder = make_tiny_encoder(root / "encoder")
    model = train_relations(
        RelationTrainConfig(dataset=str(corpus), output_dir=str(root / "run"), encoder=str(encoder), style="mask",
                            epochs=4, lr=3e-3, batch_size=8, max_length=32, threads=1, checkpoint_every=0)
    )
    return model, corpus, encoder


def _kl_to_teacher(student, teacher, examples) -> float:
    t = torch.log_softmax(torch.from_numpy(teacher.predict_logits(examples)), -1)
    s = torch.log_softmax(torch.from_numpy(student.predict_logits(examples)), -1)
    return float((t.exp() * (t - s)).sum(-1).mean())


def test_distill_cuts_the_teacher_and_learns_its_distribution(teacher, tmp_path):
    from biotag.relations.datasets import read_examples
    from biotag.relations.distill import TEACHER_LOGITS
    from biotag.relations.model import RelationClassifier

    model_dir, corpus, _ = teacher
    out = tmp_path / "student"
    args = ["distill", "-t", str(model_dir), "-c", str(corpus), "-o", str(out), "--student-layers", "1", "--student-width", "16", "--student-ffn", "0.5",
            "--weighting", "fixed", "--hard-weight", "0", "--soft-weight", "1", "--epochs", "8", "--lr", "3e-3",
            "--batch-size", "8", "--max-length", "32", "--threads", "1", "--checkpoint-every", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    student = RelationClassifier.from_pretrained(out / "model")
    config = student.network.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size) == (1, 16, 1, 32)
    assert student.style == "mask" and student.task.all_labels == RelationClassifier.from_pretrained(model_dir).task.all_labels
    card = json.loads((out / "model" / "biotag.json").read_text())["training"]
    assert card["distillation"]["teacher"] == str(model_dir) and card["distillation"]["student_width"] == 16

    # the cached teacher outputs are the teacher's logits on the training pairs, in order
    teacher_model = RelationClassifier.from_pretrained(model_dir)
    _, train = read_examples(str(corpus), "train")
    with np.load(out / TEACHER_LOGITS) as cached:
        np.testing.assert_allclose(cached["logits"], teacher_model.predict_logits(train), atol=1e-4)

    # with only the soft loss, training moved the student towards the teacher's distribution
    from biotag.compress.structured import cut_ffn, cut_width, keep_layers

    start = RelationClassifier.from_pretrained(model_dir)
    keep_layers(start.network, [1])
    cut_ffn(start.network, 0.5)
    cut_width(start.network, 16)
    after, before = _kl_to_teacher(student, teacher_model, train), _kl_to_teacher(start, teacher_model, train)
    assert after < 0.5 * before

    # the narrow student exports to ONNX like any relation model and scores the same
    from biotag.relations.onnx import load_relation_model

    exported = CliRunner().invoke(app, ["export", str(out / "model"), "-o", str(tmp_path / "onnx"), "--quantize", "none"])
    assert exported.exit_code == 0, exported.output
    onnx_student = load_relation_model(tmp_path / "onnx", threads=1)
    np.testing.assert_allclose(onnx_student.predict_logits(train), student.predict_logits(train), atol=1e-4)


def test_an_encoder_student_an_onnx_teacher_and_a_reused_cache(teacher, tmp_path, monkeypatch):
    from biotag.relations.distill import RelationDistillConfig, RelationDistillTrainer, distill_relations
    from biotag.relations.onnx import OnnxRelationClassifier, export_relation_model

    model_dir, corpus, encoder = teacher
    onnx_dir = export_relation_model(model_dir, tmp_path / "int8", quantize="none")
    base = dict(teacher=str(onnx_dir), dataset=str(corpus), encoder=str(encoder), epochs=1, lr=3e-3, batch_size=8,
                max_length=32, threads=1, checkpoint_every=0, student_width=16)
    config = RelationDistillConfig(output_dir=str(tmp_path / "s"), **base)
    student = distill_relations(config)
    assert json.loads((student / "config.json").read_text())["hidden_size"] == 16
    assert json.loads((student / "biotag.json").read_text())["style"] == "mask"  # the teacher's

    # a second run in the same folder does not score the training pairs again
    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(OnnxRelationClassifier, "predict_logits", refuse)
    RelationDistillTrainer(config)


def test_bad_relation_distillation_settings_name_their_field(teacher, tmp_path):
    from biotag.relations.distill import RelationDistillConfig, distill_relations

    model_dir, corpus, encoder = teacher
    runner = CliRunner()
    common = ["distill", "-t", str(model_dir), "-c", str(corpus), "-o", str(tmp_path / "x"), "--student-layers", "0"]
    result = runner.invoke(app, [*common, "--soft-ratio", "0.5"])
    assert result.exit_code == 2 and "soft_ratio" in result.output and "relation" in result.output
    result = runner.invoke(app, [*common, "-t", str(model_dir.parent / "checkpoint")])
    assert result.exit_code == 2
    with pytest.raises(InputError, match="marker style"):
        distill_relations(RelationDistillConfig(teacher=str(model_dir), dataset=str(corpus), output_dir=str(tmp_path / "y"), student_layers=[0], style="typed"))
    with pytest.raises(InputError, match="layers 0..1"):
        distill_relations(RelationDistillConfig(teacher=str(model_dir), dataset=str(corpus), output_dir=str(tmp_path / "z"), student_layers=[5]))
    with pytest.raises(InputError) as error:
        RelationDistillConfig(teacher=str(model_dir), dataset=str(corpus), output_dir=str(tmp_path / "w"), encoder=str(encoder), student_layers=[0])
    assert error.value.field == "encoder"


# -- unlabelled pairs (a transfer set) ----------------------------------------------------------
def _tagging_by_name(names: dict[str, str]):
    """An ``annotate`` that tags every occurrence of the given words (word -> type)."""
    import re

    def annotate(docs):
        for doc in docs:
            for word, entity_type in names.items():
                for m in re.finditer(re.escape(word), doc.text):
                    doc.add_entity(m.start(), m.end(), entity_type)
            yield doc

    return annotate


def test_unlabelled_pairs_leave_out_held_out_documents_and_texts():
    from biotag.document import Document
    from biotag.relations.datasets import CHEMPROT
    from biotag.relations.transfer import unlabelled_pairs

    docs = [
        Document("111", "Aspirin binds TP53. Insulin and BRCA1 here."),
        Document("222", "Aspirin binds TP53 in devel."),  # a held-out document
        Document("333", "Heparin binds TP53 in test. Aspirin and BRCA1 again."),
    ]
    annotate = _tagging_by_name({"Aspirin": "chemical", "Insulin": "chemical", "Heparin": "chemical", "TP53": "gene", "BRCA1": "gene"})
    pairs = list(unlabelled_pairs(docs, CHEMPROT, annotate, exclude_ids={"222"}, exclude_texts={"Heparin binds TP53 in test."}))
    assert [(p.text, p.text[p.head.start : p.head.end], p.text[p.tail.start : p.tail.end]) for p in pairs] == [
        ("Aspirin binds TP53.", "Aspirin", "TP53"),
        ("Insulin and BRCA1 here.", "Insulin", "BRCA1"),
        ("Aspirin and BRCA1 again.", "Aspirin", "BRCA1"),
    ]
    assert all(p.label is None for p in pairs) and all(p.head.type == "chemical" and p.tail.type == "gene" for p in pairs)
    limited = list(unlabelled_pairs(docs, CHEMPROT, annotate, limit=2))
    assert len(limited) == 2


def test_a_relation_student_learns_unlabelled_pairs_from_the_teacher_only(teacher, tmp_path):
    """The bundled NER model finds chemical-gene pairs in plain text; the teacher scores
    them with the gold pairs; they add no gold-label loss; held-out documents stay out."""
    from biotag.relations.distill import TEACHER_LOGITS, RelationDistillConfig, RelationDistillTrainer
    from biotag.relations.transfer import held_out

    model_dir, corpus, encoder = teacher
    text = tmp_path / "abstracts.jsonl"
    records = [
        {"pmid": "1", "title": "Aspirin with TP53 .", "abstract": "Aspirin inhibits COX-2 in human platelets."},
        {"pmid": "devel0", "title": "Aspirin with TP53 and insulin .", "abstract": ""},  # the id of a devel document
        {"pmid": "2", "title": "Aspirin inhibits COX-2 in mice.", "abstract": "", "in_test_split": True},
    ]
    text.write_text("".join(json.dumps(r) + "\n" for r in records))
    from biotag.relations.datasets import read_examples

    task, _ = read_examples(str(corpus), "train")
    ids, texts = held_out(str(corpus), task)
    assert "devel0" in ids and "train0" not in ids and texts  # devel documents and their texts are held out
    config = RelationDistillConfig(
        teacher=str(model_dir), dataset=str(corpus), output_dir=str(tmp_path / "run"), student_layers=[0], soft_text=[str(text)],
        epochs=1, lr=3e-3, batch_size=8, max_length=32, threads=1, checkpoint_every=0,
    )
    trainer = RelationDistillTrainer(config)
    unlabelled = trainer.train_examples[trainer.n_gold :]
    assert unlabelled and all(e.label is None and e.key.startswith("unlabelled:1:") for e in unlabelled)
    assert {e.text for e in unlabelled} <= {"Aspirin with TP53 .", "Aspirin inhibits COX-2 in human platelets."}
    assert (trainer.labels[trainer.n_gold :] == -1).all()
    with np.load(tmp_path / "run" / TEACHER_LOGITS) as cached:
        assert cached["logits"].shape[0] == len(trainer.train_examples)
    # a batch of unlabelled pairs: the loss is the soft term alone, finite, with gradients
    rows = np.arange(trainer.n_gold, len(trainer.train_examples))
    logits = torch.zeros(len(rows), len(task.all_labels), requires_grad=True)
    loss = trainer._loss(logits, torch.from_numpy(trainer.labels[rows]), rows)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.abs().sum() > 0
    every_batch = np.concatenate(trainer._plan(0))
    assert set(rows) <= set(every_batch)  # unlabelled pairs are in every epoch
    with pytest.raises(InputError) as error:
        RelationDistillConfig(teacher=str(model_dir), dataset=str(corpus), output_dir="x", student_layers=[0], soft_text=[str(text)],
                              weighting="fixed", soft_weight=0.0)
    assert error.value.field == "soft_text"


# -- perturbed copies of the gold pairs -----------------------------------------------------------
def _pair(text: str, head: str, tail: str, label: str | None = "CPR:4"):
    from biotag.relations.examples import Mention, RelationExample

    h, t = text.index(head), text.rindex(tail)
    return RelationExample("k1", text, Mention(h, h + len(head), "chemical"), Mention(t, t + len(tail), "gene"), label)


def test_perturbed_copies_keep_both_arguments_and_drop_the_label():
    import random

    from biotag.relations.augment import augmented_examples, perturb

    example = _pair("Low doses of aspirin strongly inhibit the COX-2 enzyme in human platelets today .", "aspirin", "COX-2")
    pool = (["alpha", "beta"], [1, 2])  # cumulative weights: equally likely
    words = example.text.split()
    changed = []
    for seed in range(30):
        copy = perturb(example, random.Random(seed), 0.5, pool)
        assert copy.text[copy.head.start : copy.head.end] == "aspirin" and copy.text[copy.tail.start : copy.tail.end] == "COX-2"
        assert copy.label is None and copy.head.type == "chemical" and copy.tail.type == "gene"
        assert "  " not in copy.text and not copy.text.startswith(" ")
        assert set(copy.text.split()) <= set(words) | {"alpha", "beta"}  # deleted or replaced from the pool, nothing else
        changed.append(copy.text != example.text)
    assert sum(changed) >= 25  # half the words change at rate 0.5: a copy is almost never the original
    assert perturb(example, random.Random(1), 0.5, pool).text == perturb(example, random.Random(1), 0.5, pool).text
    # the argument at the very start and end of the text
    edge = _pair("aspirin blocks the enzyme made by COX-2", "aspirin", "COX-2")
    for seed in range(10):
        copy = perturb(edge, random.Random(seed), 0.9, pool)
        assert copy.text.startswith("aspirin") and copy.text.endswith("COX-2")
    copies = augmented_examples([example, edge], 3, rate=0.3, seed=5, exclude_texts=set())
    assert copies and all(c.key.startswith("augmented:k1:") and c.label is None for c in copies)
    assert len(copies) <= 6 and all(c.text not in (example.text, edge.text) for c in copies)
    held_out = {" ".join(copies[0].text.split())}
    assert all(c.text != copies[0].text for c in augmented_examples([example, edge], 3, rate=0.3, seed=5, exclude_texts=held_out))


def test_a_relation_student_learns_perturbed_gold_pairs_from_the_teacher(teacher, tmp_path):
    from biotag.relations.distill import TEACHER_LOGITS, RelationDistillConfig, RelationDistillTrainer

    model_dir, corpus, _ = teacher
    config = RelationDistillConfig(
        teacher=str(model_dir), dataset=str(corpus), output_dir=str(tmp_path / "run"), student_layers=[0], augment_copies=2,
        augment_rate=0.3, epochs=1, lr=3e-3, batch_size=8, max_length=32, threads=1, checkpoint_every=0,
    )
    trainer = RelationDistillTrainer(config)
    gold = trainer.train_examples[: trainer.n_gold]
    copies = trainer.train_examples[trainer.n_gold :]
    assert len(gold) // 2 < len(copies) <= 2 * len(gold)  # two copies each, less those that came out unchanged
    by_key = {g.key: g for g in gold}
    for c in copies:
        source = by_key[c.key.removeprefix("augmented:").rsplit(":", 1)[0]]
        assert c.label is None and c.text != source.text
        assert c.text[c.head.start : c.head.end] == source.text[source.head.start : source.head.end]
    assert (trainer.labels[trainer.n_gold :] == -1).all()
    with np.load(tmp_path / "run" / TEACHER_LOGITS) as cached:
        assert cached["logits"].shape[0] == len(trainer.train_examples)
    for bad, field in (({"augment_copies": -1}, "augment_copies"), ({"augment_rate": 0.0}, "augment_rate"),
                       ({"augment_copies": 1, "weighting": "fixed", "soft_weight": 0.0}, "augment_copies")):
        with pytest.raises(InputError) as error:
            RelationDistillConfig(teacher=str(model_dir), dataset=str(corpus), output_dir="x", student_layers=[0], **bad)
        assert error.value.field == field
