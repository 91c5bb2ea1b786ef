"""Distillation: losses, loss-weight and sparsity schedules, the teacher-output cache, word
alignment across tokenizers, gradual pruning, ``biotag distill`` and exact resume."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from biotag.distill import DistillConfig, distill
from biotag.distill import trainer as trainer_module
from biotag.distill.losses import HiddenProjections, attention_loss, hidden_state_loss, overrule_known_absent, soft_label_loss, teacher_evidence, teacher_mentions
from biotag.distill.pruning import GradualPruner, encoder_linear_weights
from biotag.distill.schedule import cubic_sparsity, decay, loss_weights
from biotag.distill.soft_labels import SoftLabelCache, compress_scores, restore_scores, teacher_fingerprint
from biotag.distill.trainer import layer_pairs, word_hidden_states
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from helpers import TINY_WORDS, make_tiny_encoder, perturbed_copy, tiny_vocab

BIO = LabelSchema(("gene", "disease"), "bio")
MULTI = LabelSchema(("gene", "disease"), "multilabel")


# -- losses ------------------------------------------------------------------------------
@pytest.mark.parametrize("schema", [BIO, MULTI])
def test_soft_label_kl_is_zero_only_when_the_student_matches_the_teacher(schema):
    torch.manual_seed(0)
    teacher = torch.randn(7, schema.num_outputs)
    assert soft_label_loss(teacher.clone(), teacher, schema, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    # a constant added to a softmax group is the same distribution
    shifted = teacher + (torch.arange(schema.num_outputs) // 3 if schema.scheme == "multilabel" else 5.0)
    assert soft_label_loss(shifted, teacher, schema, 2.0).item() == pytest.approx(0.0, abs=1e-5)
    assert soft_label_loss(torch.randn(7, schema.num_outputs), teacher, schema, 2.0).item() > 0.01


def test_negative_evidence_overrules_the_teacher_only_where_gold_rules_a_type_out():
    torch.manual_seed(2)
    teacher = torch.randn(3, MULTI.num_outputs)
    absent = torch.tensor([[False, False], [True, False], [False, False]])  # word 1: gold says no gene
    out = overrule_known_absent(teacher, absent, MULTI)
    probs = torch.softmax(out.reshape(3, 2, 3) / 2.0, -1)  # at the distillation temperature
    assert probs[1, 0, 0].item() > 0.999999  # gene: a certain O
    assert torch.equal(out.reshape(3, 2, 3)[1, 1], teacher.reshape(3, 2, 3)[1, 1])  # disease untouched
    assert torch.equal(out[[0, 2]], teacher[[0, 2]])
    assert torch.equal(overrule_known_absent(teacher, torch.zeros_like(absent), MULTI), teacher)
    assert torch.equal(overrule_known_absent(teacher[:, :5], absent, BIO), teacher[:, :5])  # bio: one softmax, left alone


def test_known_absent_cells_are_the_mask_cells_beyond_each_word_corpus_own_types():
    annotated = np.array([[True, False], [False, True]])  # corpus 0 annotates gene, corpus 1 disease
    items = [SimpleNamespace(labels=np.zeros(2), corpus=0), SimpleNamespace(labels=np.zeros(1), corpus=1)]
    mask = np.array([[True, True], [True, False], [True, True]])  # word 0: gold rules disease out
    absent = trainer_module.DistillTrainer._known_absent(SimpleNamespace(annotated_types=annotated, _word_corpora=trainer_module.DistillTrainer._word_corpora), items, SimpleNamespace(type_mask=mask))
    assert absent.tolist() == [[False, True], [False, False], [True, False]]


GENE_CHEM = LabelSchema(("gene", "chemical"), "multilabel")


def _per_type(probs: list[list[list[float]]]) -> torch.Tensor:
    """Teacher log-probabilities ``[n_words, n_types * 3]`` from O/B/I probabilities."""
    return torch.tensor(probs).log().reshape(len(probs), -1)


def test_teacher_mentions_are_runs_of_inside_words_split_where_b_outweighs_i():
    probs = np.array([[0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.1, 0.7, 0.2], [0.9, 0.05, 0.05], [0.3, 0.1, 0.6]])
    assert teacher_mentions(probs, 0.5) == {(0, 2), (2, 3), (4, 5)}
    assert teacher_mentions(probs, 0.75) == {(0, 2), (2, 3)}  # word 4 (P inside 0.7) is no longer in a mention


SURE_B, SURE_I, SURE_O = [0.05, 0.9, 0.05], [0.05, 0.05, 0.9], [0.9, 0.05, 0.05]


def test_teacher_evidence_rules_a_type_out_on_the_same_words_of_another_type_where_gold_is_silent():
    teacher = _per_type([
        [SURE_B, SURE_B], [SURE_O, SURE_O],  # sentence 0: "BRCA1 mutations", gene and chemical on BRCA1 -> no chemical
        [SURE_B, SURE_B], [SURE_I, SURE_O],  # sentence 1: "glutathione transferase", a chemical nested in a gene: kept
        [SURE_B, SURE_B],  # sentence 2: "insulin", a dictionary chemical: kept
        [SURE_B, SURE_B],  # sentence 3: a corpus that annotates chemicals: gold decides
    ])
    open_cells = torch.tensor([[True, True]] * 5 + [[True, False]])
    rules, lengths, vouched = {1: [(0,)]}, [2, 2, 1, 1], [set(), set(), {(1, 0, 1)}, set()]
    absent = teacher_evidence(teacher, GENE_CHEM, rules, open_cells, 0.5, lengths, vouched.__getitem__)
    assert absent.tolist() == [[False, True]] + [[False, False]] * 5
    assert teacher_evidence(teacher, GENE_CHEM, rules, open_cells, 0.5, lengths)[4].tolist() == [False, True]  # no dictionary
    assert not teacher_evidence(teacher, GENE_CHEM, rules, open_cells, 0.97, lengths).any()  # P(B) + P(I) 0.95 is not sure enough
    assert not teacher_evidence(teacher, GENE_CHEM, {}, open_cells, 0.5, lengths).any()
    protein = LabelSchema(("gene", "chemical", "protein"), "multilabel")
    one_teacher = _per_type([[SURE_B, SURE_B, SURE_O], [SURE_O, SURE_O, SURE_O]])  # only the gene teacher sees "GSH"
    both = _per_type([[SURE_B, SURE_B, SURE_B], [SURE_O, SURE_O, SURE_O]])
    open3, any_of, all_of = torch.ones(2, 3, dtype=torch.bool), {1: [(0,), (2,)]}, {1: [(0, 2)]}
    assert teacher_evidence(one_teacher, protein, any_of, open3, 0.5, [2])[0, 1]  # two groups: one teacher is enough
    assert not teacher_evidence(one_teacher, protein, all_of, open3, 0.5, [2]).any()  # one group: both must see it
    assert teacher_evidence(both, protein, all_of, open3, 0.5, [2]).tolist() == [[False, True, False], [False, False, False]]
    variant = LabelSchema(("gene", "chemical", "protein", "variant"), "multilabel")
    only_variant = _per_type([[SURE_O, SURE_B, SURE_O, SURE_B], [SURE_O, SURE_O, SURE_O, SURE_O]])  # "C676T": no gene teacher
    mixed, open4 = {1: [(0, 2), (3,)]}, torch.ones(2, 4, dtype=torch.bool)
    assert teacher_evidence(only_variant, variant, mixed, open4, 0.5, [2])[:, 1].tolist() == [True, False]  # the variant group alone
    assert not teacher_evidence(only_variant, variant, {1: [(0, 2)]}, open4, 0.5, [2]).any()
    out = overrule_known_absent(teacher, absent, GENE_CHEM)
    assert torch.softmax(out.reshape(6, 2, 3)[0, 1], -1)[0].item() > 0.999999  # the chemical guess on the gene is gone
    assert torch.equal(out[1:], teacher[1:]) and torch.equal(out[0, :3], teacher[0, :3])


def test_evidence_rules_become_groups_by_the_agreement_and_lists_stay_groups():
    def groups(rules, agreement):
        config = SimpleNamespace(teacher_negative_evidence=rules, teacher_evidence_agreement=agreement)
        return DistillConfig.teacher_evidence_groups(config)

    assert groups({"chemical": ["gene", "protein"]}, "any") == {"chemical": [("gene",), ("protein",)]}
    assert groups({"chemical": ["gene", "protein"]}, "all") == {"chemical": [("gene", "protein")]}
    mixed = {"chemical": [["gene", "protein"], ["variant"]], "gene": ["variant"]}
    assert groups(mixed, "all") == {"chemical": [("gene", "protein"), ("variant",)], "gene": [("variant",)]}
    assert groups(mixed, "any") == groups(mixed, "all")  # a list is a group whatever the agreement


def test_dictionary_names_are_read_per_training_window():
    from biotag.features.dictionary import DictionaryMatcher

    matcher = DictionaryMatcher.build([("insulin", "chemical"), ("BRCA1", "gene")], ("chemical", "gene"))
    example = SimpleNamespace(words=["BRCA1", "and", "insulin", "levels"])
    fake = SimpleNamespace(evidence_matcher=matcher, schema=GENE_CHEM, train_examples=[example], soft_examples=[])
    items = [SimpleNamespace(window=SimpleNamespace(sequence=0, words=np.array([0, 1, 2, 3]))),
             SimpleNamespace(window=SimpleNamespace(sequence=0, words=np.array([2, 3])))]
    names = trainer_module.DistillTrainer._dictionary_names(fake, items, text_only=False)
    assert names == [{(0, 0, 1), (1, 2, 3)}, {(1, 0, 1)}]  # window offsets; (type index, start, end)
    assert trainer_module.DistillTrainer._dictionary_names(SimpleNamespace(evidence_matcher=None), items, False) is None


def test_soft_absent_joins_gold_and_teacher_evidence_by_each_word_corpus():
    teacher = _per_type([[SURE_B, SURE_B]] * 3)  # every word: a one-word gene, and a chemical on the same word
    fake = SimpleNamespace(
        config=SimpleNamespace(negative_evidence={"chemical": ["gene"]}, teacher_evidence_threshold=0.5, teacher_evidence_agreement="any"),
        schema=GENE_CHEM, model=SimpleNamespace(schema=GENE_CHEM), teacher_exclusions={1: [(0,)]},
        annotated_types=np.array([[True, True], [True, False]]),  # corpus 0 (BC5CDR-like) annotates chemicals, corpus 1 does not
        evidence_counts=np.zeros(2, dtype=np.int64),
    )
    real = trainer_module.DistillTrainer
    fake.evidence_matcher, fake._word_corpora = None, real._word_corpora
    fake._known_absent = lambda items, batch: real._known_absent(fake, items, batch)
    fake._teacher_evidence = lambda items, teacher, text_only: real._teacher_evidence(fake, items, teacher, text_only)
    items = [SimpleNamespace(labels=np.zeros(2), corpus=0), SimpleNamespace(labels=np.zeros(1), corpus=1)]
    batch = SimpleNamespace(type_mask=np.array([[True, True], [True, True], [True, True]]))  # word 2: gold gene, no chemical
    absent = trainer_module.DistillTrainer._soft_absent(fake, items, batch, teacher, text_only=False)
    assert absent.tolist() == [[False, False], [False, False], [False, True]]  # corpus 0's chemical gold decides its words
    assert fake.evidence_counts.tolist() == [1, 3]
    absent = trainer_module.DistillTrainer._soft_absent(fake, items, None, teacher, text_only=True)  # unlabelled text
    assert absent.tolist() == [[False, True]] * 3 and fake.evidence_counts.tolist() == [4, 6]


def _item_student(toy_trained, tmp_path) -> dict:
    """Settings of a 2-step distillation whose student adds an ``Item`` type (started from
    ``Thing``) that a random type teacher teaches and the toy corpus does not annotate."""
    teacher, corpus = toy_trained
    encoder = make_tiny_encoder(tmp_path / "encoder")
    item_teacher = TokenClassifier.from_encoder(encoder, LabelSchema(("Item",), "bio"), max_length=32).save_pretrained(tmp_path / "item")
    return dict(
        teacher=str(teacher), type_teachers=[str(item_teacher)], added_types={"Item": "Thing"}, corpora=[str(corpus)],
        output_dir=str(tmp_path / "run"), student_layers=[1], unify_types=False, max_steps=2, batch_size=8, max_length=32,
        threads=1, checkpoint_every=0,
    )


def test_a_student_is_not_taught_a_type_where_its_teachers_see_an_excluding_one(toy_trained, tmp_path):
    settings = _item_student(toy_trained, tmp_path)
    from biotag.features.dictionary import DictionaryMatcher

    dictionary = DictionaryMatcher.build([("widget", "Item")], ("Item",)).save(tmp_path / "dictionary")
    student = distill(DistillConfig(**settings, teacher_negative_evidence={"Item": ["Thing"]}, teacher_evidence_dictionary=str(dictionary)))
    summary = TokenClassifier.from_pretrained(student).card["distillation"]["teacher_negative_evidence"]
    assert summary["rules"] == {"Item": ["Thing"]} and 0 <= summary["words_overruled"] <= summary["words_seen"]
    assert summary["dictionary"] == str(dictionary)
    assert summary["words_seen"] > 0  # every gold and text batch went through the rule
    with pytest.raises(InputError) as info:
        trainer_module.DistillTrainer(DistillConfig(**settings, teacher_negative_evidence={"Item": ["Nothing"]}))
    assert info.value.field == "teacher_negative_evidence" and "'Nothing'" in str(info.value)
    for bad in ({"Item": "Thing"}, {"Item": ["Item"]}, {"Item": []}, {"Item": [[]]}, {"Item": [["Thing", "Item"]]}, {"Item": [[1]]}):
        with pytest.raises(InputError) as info:
            DistillConfig(**settings, teacher_negative_evidence=bad)
        assert info.value.field == "teacher_negative_evidence"
    with pytest.raises(InputError) as info:
        trainer_module.DistillTrainer(DistillConfig(**settings, teacher_negative_evidence={"Item": [["Thing", "Nothing"]]}))
    assert info.value.field == "teacher_negative_evidence" and "'Nothing'" in str(info.value)  # inside a group, too
    with pytest.raises(InputError) as info:
        DistillConfig(**settings, teacher_negative_evidence={"Item": ["Thing"]}, teacher_evidence_agreement="most")
    assert info.value.field == "teacher_evidence_agreement"


def test_multilabel_kl_is_one_softmax_per_type():
    torch.manual_seed(1)
    student, teacher = torch.randn(4, 6), torch.randn(4, 6)
    t = 3.0
    expected = []
    for group in (slice(0, 3), slice(3, 6)):
        p = torch.softmax(teacher[:, group] / t, -1)
        expected.append((p * (p.log() - torch.log_softmax(student[:, group] / t, -1))).sum(-1))
    assert soft_label_loss(student, teacher, MULTI, t).item() == pytest.approx(torch.stack(expected).mean().item() * t * t, rel=1e-5)


def test_hidden_projection_maps_student_width_to_teacher_width():
    proj = HiddenProjections(2, 32, 48)
    student = [torch.randn(5, 32), torch.randn(5, 32)]
    assert proj(0, student[0]).shape == (5, 48)
    loss = hidden_state_loss(student, [torch.randn(5, 48), torch.randn(5, 48)], proj)
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in proj.parameters())
    same = HiddenProjections(2, 32, 32)
    assert not list(same.parameters())  # equal widths: compared as they are
    assert hidden_state_loss(student, [s.clone() for s in student], same).item() == 0.0


def test_attention_loss_compares_head_averages_on_real_tokens():
    s = torch.softmax(torch.randn(2, 4, 5, 5), -1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert attention_loss([s], [s.clone()], mask).item() == 0.0
    two_heads = s.mean(1, keepdim=True).expand(2, 2, 5, 5)  # other head count, same average
    assert attention_loss([s], [two_heads], mask).item() == pytest.approx(0.0, abs=1e-7)
    changed = s.clone()
    changed[0, :, 4] = torch.softmax(torch.randn(4, 5), -1)  # a padding query row: ignored
    assert attention_loss([changed], [s], mask).item() == pytest.approx(0.0, abs=1e-7)
    assert attention_loss([torch.softmax(torch.randn(2, 4, 5, 5), -1)], [s], mask).item() > 0


# -- schedules ---------------------------------------------------------------------------
def test_decay_shapes():
    assert [decay(p, "linear") for p in (0, 0.25, 0.5, 1)] == [1.0, 0.75, 0.5, 0.0]
    assert [round(decay(p, "cosine"), 6) for p in (0, 0.5, 1)] == [1.0, 0.5, 0.0]
    assert decay(0.1, "cosine") > decay(0.1, "linear")  # cosine is flat at the start
    assert decay(-1) == 1.0 and decay(2) == 0.0


def test_dynamic_weights_move_from_soft_to_hard_and_fixed_ones_stay():
    start = loss_weights(0.0, weighting="dynamic", floor=0.2)
    middle = loss_weights(0.5, weighting="dynamic", floor=0.2)
    end = loss_weights(1.0, weighting="dynamic", floor=0.2, hidden=0.5)
    assert (start.soft, start.hard) == (1.0, 0.0)
    assert (middle.soft, middle.hard) == pytest.approx((0.6, 0.4))
    assert (end.soft, end.hard, end.hidden) == pytest.approx((0.2, 0.8, 0.5))
    for p in (0.0, 0.7, 1.0):
        assert loss_weights(p, weighting="fixed", hard=0.3, soft=2.0) == loss_weights(0.0, weighting="fixed", hard=0.3, soft=2.0)
    assert loss_weights(0.7, weighting="fixed", hard=0.3, soft=2.0).soft == 2.0


def test_cubic_sparsity_schedule():
    values = [cubic_sparsity(t, 0.8, 10, 50) for t in range(0, 61)]
    assert values[:11] == [0.0] * 11 and values[50:] == [0.8] * 11
    assert cubic_sparsity(30, 0.8, 10, 50) == pytest.approx(0.8 * (1 - 0.5**3))
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert values[20] - values[10] > values[50] - values[40]  # fast first, slow at the end


# -- the teacher cache --------------------------------------------------------------------
@pytest.mark.parametrize("schema", [BIO, MULTI])
def test_compact_forms_restore_the_teacher_distribution(schema):
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, size=(50, schema.num_outputs)).astype(np.float32)
    groups = 2 if schema.scheme == "multilabel" else 1
    probs = lambda x: torch.softmax(torch.from_numpy(x).reshape(50, groups, -1), -1).numpy()  # noqa: E731
    logits = restore_scores(*compress_scores(scores, schema, 0), schema, 0)
    assert np.allclose(probs(logits), probs(scores), atol=2e-3)
    classes = schema.num_outputs // groups
    full = restore_scores(*compress_scores(scores, schema, classes), schema, classes)
    assert np.allclose(probs(full), probs(scores), atol=1e-3)
    values, indices = compress_scores(scores, schema, 2)
    assert values.dtype == np.float16 and indices.dtype == np.uint16 and values.shape == (50, groups * 2)
    top2 = probs(restore_scores(values, indices, schema, 2))
    original = probs(scores)
    assert np.allclose(top2.sum(-1), 1.0, atol=1e-5)
    best = np.argsort(-original, -1)[..., :2]
    assert np.allclose(np.take_along_axis(top2, best, -1), np.take_along_axis(original, best, -1), atol=2e-3)


def test_cache_stores_each_sentence_once_and_reads_back_from_disk(tmp_path):
    calls: list[int] = []

    def predict(lists):
        calls.append(len(lists))
        return [np.arange(len(w) * BIO.num_outputs, dtype=np.float32).reshape(len(w), -1) / 10 + len(w) for w in lists]

    cache = SoftLabelCache(tmp_path, "abc", BIO, top_k=2)
    sentences = [["The", "gene"], ["A", "disease", "here"], ["The", "gene"]]
    assert cache.add(sentences, predict) == 2 and calls == [2]
    assert cache.add(sentences, predict) == 0 and calls == [2]  # nothing new: the teacher does not run
    assert cache.add([["new"]], predict) == 1
    reread = SoftLabelCache(tmp_path, "abc", BIO, top_k=2)
    assert len(reread) == 3
    starts = reread.starts([["A", "disease", "here"], ["new"]])
    rows = reread.scores(starts[0] + np.arange(3))
    expected = restore_scores(*compress_scores(predict([sentences[1]])[0], BIO, 2), BIO, 2)
    assert np.allclose(rows, expected)
    assert not (tmp_path / "abc-top2" / "keys.pkl").exists() and (tmp_path / "abc-top2" / "values.npy").is_file()
    assert len(SoftLabelCache(tmp_path, "other-teacher", BIO, top_k=2)) == 0
    with pytest.raises(InputError):
        reread.starts([["never", "seen"]])


def test_cache_keeps_what_a_killed_teacher_run_finished(tmp_path, monkeypatch):
    import biotag.distill.soft_labels as soft_labels

    class Killed(Exception):
        pass

    monkeypatch.setattr(soft_labels, "PREDICT_CHUNK", 2)
    monkeypatch.setattr(soft_labels, "FLUSH_SECONDS", 0.0)  # write after every chunk
    calls: list[list[list[str]]] = []
    kill_at = [2]

    def predict(lists):
        calls.append(lists)
        if len(calls) == kill_at[0]:
            raise Killed  # the run is killed during its second chunk
        return [np.zeros((len(w), BIO.num_outputs), dtype=np.float32) for w in lists]

    sentences = [["s", str(i)] for i in range(5)]
    with pytest.raises(Killed):
        SoftLabelCache(tmp_path, "abc", BIO).add(sentences, predict)
    resumed = SoftLabelCache(tmp_path, "abc", BIO)
    assert len(resumed) == 2  # the first chunk survived
    calls.clear()
    kill_at[0] = 0
    assert resumed.add(sentences, predict) == 3
    assert [len(c) for c in calls] == [2, 1]  # only the missing sentences ran
    assert len(SoftLabelCache(tmp_path, "abc", BIO)) == 5


# -- models ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory) -> Path:
    """A random tiny BERT token classifier saved as a biotag model (bio, 2 types)."""
    root = tmp_path_factory.mktemp("teacher")
    encoder = make_tiny_encoder(root / "encoder")
    model = TokenClassifier.from_encoder(encoder, BIO, max_length=32)
    return model.save_pretrained(root / "model")


def with_other_tokenizer(model_dir: Path, target: Path) -> Path:
    """A copy of a tiny model whose tokenizer has no whole words: every word splits into
    characters, so its sub-words (and windows) differ from the original's."""
    from transformers import BertTokenizerFast

    shutil.copytree(model_dir, target)
    vocab = [t for t in tiny_vocab() if t not in TINY_WORDS]  # the whole words are the vocabulary's tail: ids stay
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (target / name).unlink(missing_ok=True)
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab=str(target / "vocab.txt"), do_lower_case=False, model_max_length=128).save_pretrained(target)
    return target


def test_word_alignment_with_a_different_tokenizer(tiny_teacher, tmp_path):
    other = TokenClassifier.from_pretrained(with_other_tokenizer(tiny_teacher, tmp_path / "chars"))
    words = ["The", "Aspirin", "dose", "of", "BRCA", "."]
    mine = TokenClassifier.from_pretrained(tiny_teacher)
    assert len(other.tokenizer(words, is_split_into_words=True)["input_ids"]) > len(mine.tokenizer(words, is_split_into_words=True)["input_ids"])
    [states] = word_hidden_states(other, [words], [1, 2])
    assert states.shape == (len(words), 2 * 32)
    # by hand: the hidden state at each word's first sub-word of the model's own encoding
    encoded = other.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    first = [encoded.word_ids().index(i) for i in range(len(words))]
    with torch.no_grad():
        hidden = other.network(**encoded, output_hidden_states=True).hidden_states
    expected = torch.cat([hidden[1][0, first], hidden[2][0, first]], -1).numpy()
    assert np.allclose(states, expected, atol=1e-5)
    # the cached soft labels are per word too: one row per word whatever the tokenizer
    [scores] = other.predict_words([words])
    assert scores.shape == (len(words), BIO.num_outputs)


def test_an_ensemble_averages_its_teachers_distributions(tiny_teacher, tmp_path):
    from biotag.distill.teachers import Teachers

    other = perturbed_copy(tiny_teacher, tmp_path / "other", seed=3)
    words = [["The", "Aspirin", "dose", "."], ["BRCA", "of", "the", "Mouse"]]
    single, ensemble = Teachers([tiny_teacher]), Teachers([tiny_teacher, other])
    mine, theirs = single.word_log_probs(words), Teachers([other]).word_log_probs(words)
    for a, b, mean in zip(mine, theirs, ensemble.word_log_probs(words)):
        assert not np.allclose(a, b, atol=1e-3)  # the members disagree ...
        assert np.allclose(np.exp(mean), (np.exp(a) + np.exp(b)) / 2, atol=1e-5)  # ... and the soft label is their mean
        assert np.allclose(np.exp(mean).sum(-1), 1.0, atol=1e-5)
    # a cache is keyed by the members (in any order), not by the primary teacher alone
    assert single.fingerprint() == teacher_fingerprint(tiny_teacher)  # caches of one plain teacher stay valid
    assert ensemble.fingerprint() == Teachers([other, tiny_teacher]).fingerprint() != single.fingerprint()
    encoder = make_tiny_encoder(tmp_path / "encoder")
    multi = TokenClassifier.from_encoder(encoder, MULTI, max_length=32).save_pretrained(tmp_path / "multi")
    with pytest.raises(InputError) as info:
        Teachers([tiny_teacher, multi])
    assert info.value.field == "teacher" and str(multi) in str(info.value)


def test_type_teachers_teach_the_types_they_predict(tmp_path):
    """TinyBERN2-style: each type's soft label is the mean of the models that predict it,
    whatever their scheme; the other types keep the primary teacher's."""
    from biotag.distill.teachers import Teachers, type_log_probs

    encoder = make_tiny_encoder(tmp_path / "encoder")

    def model(schema, name, seed):
        saved = TokenClassifier.from_encoder(encoder, schema, max_length=32).save_pretrained(tmp_path / f"{name}-0")
        return perturbed_copy(saved, tmp_path / name, seed=seed)

    primary = model(MULTI, "primary", 1)
    gene_bio = model(LabelSchema(("gene",), "bio"), "gene-bio", 2)
    gene_multi = model(LabelSchema(("species", "gene"), "multilabel"), "gene-multi", 3)
    words = [["The", "Aspirin", "dose", "."], ["BRCA", "of", "the", "Mouse"]]
    with pytest.raises(InputError) as info:  # species is not a type of the student
        Teachers([primary], [gene_bio, gene_multi])
    assert info.value.field == "type_teachers" and str(gene_multi) in str(info.value)
    gene_multi = model(LabelSchema(("gene",), "multilabel"), "gene-multi", 3)
    both = Teachers([primary], [gene_bio, gene_multi])
    assert both.primary_types == ["disease"]
    own = Teachers([primary]).word_log_probs(words)
    bio_rows, multi_rows = Teachers([gene_bio]).word_log_probs(words), Teachers([gene_multi]).word_log_probs(words)
    for mixed, mine, b, m in zip(both.word_log_probs(words), own, bio_rows, multi_rows):
        assert np.allclose(mixed[:, 3:], mine[:, 3:])  # disease: the primary's own
        assert not np.allclose(mixed[:, :3], mine[:, :3], atol=1e-3)  # gene: the type teachers'
        expected = (np.exp(b) + np.exp(m)) / 2  # a one-type bio model's O, B, I are the gene's O, B, I
        assert np.allclose(np.exp(mixed[:, :3]), expected, atol=1e-5)
        assert np.allclose(np.exp(mixed).reshape(len(mixed), 2, 3).sum(-1), 1.0, atol=1e-5)
    # a two-type bio model: the other type's labels count as O for this one
    two = np.log(np.array([[0.5, 0.2, 0.1, 0.15, 0.05]]))
    assert np.allclose(np.exp(type_log_probs(BIO, two, "disease")), [[0.8, 0.15, 0.05]])
    assert both.fingerprint() == Teachers([primary], [gene_multi, gene_bio]).fingerprint() != Teachers([primary]).fingerprint()
    # every type taught by type teachers: the primary neither runs nor keys the cache
    other = perturbed_copy(primary, tmp_path / "other-primary", seed=9)
    disease = model(LabelSchema(("disease",), "bio"), "disease-bio", 4)
    full, full_other = Teachers([primary], [gene_bio, disease]), Teachers([other], [gene_bio, disease])
    assert full.primary_types == [] and full.fingerprint() == full_other.fingerprint()
    for a, b in zip(full.word_log_probs(words), full_other.word_log_probs(words)):
        assert np.allclose(a, b)
    with pytest.raises(InputError) as info:  # a bio student has no per-type groups to fill
        Teachers([gene_bio], [gene_multi])
    assert info.value.field == "type_teachers"


def test_corpus_aware_type_teachers_let_a_corpus_own_teacher_teach_its_types(tmp_path):
    """On a sentence of corpus A, the gene teacher trained on A teaches gene alone; on other
    corpora and unlabelled text, the mean of both gene teachers does. Each teacher's outputs
    are cached once, by itself."""
    from biotag.distill.teachers import Teachers

    encoder = make_tiny_encoder(tmp_path / "encoder")

    def model(schema, name, seed, corpus=None):
        saved = TokenClassifier.from_encoder(encoder, schema, max_length=32).save_pretrained(tmp_path / f"{name}-0")
        copy = TokenClassifier.from_pretrained(perturbed_copy(saved, tmp_path / f"{name}-1", seed=seed))
        return copy.save_pretrained(tmp_path / name, card={"data": {corpus: {"types": list(schema.types)}}} if corpus else None)

    primary = model(MULTI, "primary", 1)
    gene_a = model(LabelSchema(("gene",), "bio"), "gene-a", 2, corpus="corpus-a")
    gene_b = model(LabelSchema(("gene",), "bio"), "gene-b", 3, corpus="corpus-b")
    words = [["The", "Aspirin", "dose", "."], ["BRCA", "of", "the", "Mouse"]]
    a_rows, b_rows = (Teachers([m]).word_log_probs(words) for m in (gene_a, gene_b))
    aware = Teachers([primary], [gene_a, gene_b], cache_root=tmp_path / "cache")
    assert aware.corpus_aware and aware.type_corpora == [{"corpus-a"}, {"corpus-b"}]
    out = aware.word_log_probs(words, ["corpus-a", "soft-text"])
    probs = np.exp  # compared as probabilities: the member cache keeps fp16 log-probabilities
    assert np.allclose(probs(out[0][:, :3]), probs(a_rows[0]), atol=1e-3)  # corpus A: its own teacher
    assert np.allclose(probs(out[1][:, :3]), (probs(a_rows[1]) + probs(b_rows[1])) / 2, atol=1e-3)  # elsewhere: the mean
    assert np.allclose(probs(aware.word_log_probs(words, ["corpus-b", "corpus-b"])[0][:, :3]), probs(b_rows[0]), atol=1e-3)
    assert len(list((tmp_path / "cache" / "members").iterdir())) == 3  # one cache per teacher, the primary's too
    primary_rows = Teachers([primary], cache_root=tmp_path / "alone").word_log_probs(words)
    assert not (tmp_path / "alone" / "members").exists()  # a lone primary is its own combined cache
    assert np.allclose(probs(out[1][:, 3:]), probs(primary_rows[1][:, 3:]), atol=1e-3)  # chemical: the primary's, through its cache
    mean = Teachers([primary], [gene_a, gene_b], type_mode="mean")
    assert not mean.corpus_aware and mean.fingerprint() != aware.fingerprint()
    mixed = mean.word_log_probs(words, ["corpus-a", "corpus-a"])[0][:, :3]
    assert np.allclose(np.exp(mixed), (np.exp(a_rows[0]) + np.exp(b_rows[0])) / 2, atol=1e-5)
    with pytest.raises(InputError) as info:
        Teachers([primary], [gene_a], type_mode="vote")
    assert info.value.field == "type_mode"


def test_an_added_type_is_taught_by_the_teacher_of_the_corpus_label_it_keeps(tmp_path):
    """A student with its own ``protein`` type: JNLPBA's teacher learnt JNLPBA's ``protein``
    as ``gene``, so it teaches the student's ``protein``; ``gene`` is BC2GM's teacher's alone."""
    from biotag.distill.teachers import Teachers, teacher_type_names

    encoder = make_tiny_encoder(tmp_path / "encoder")

    def model(schema, name, seed, corpora=()):
        saved = TokenClassifier.from_encoder(encoder, schema, max_length=32).save_pretrained(tmp_path / f"{name}-0")
        copy = TokenClassifier.from_pretrained(perturbed_copy(saved, tmp_path / f"{name}-1", seed=seed))
        return copy.save_pretrained(tmp_path / name, card={"data": {c: {} for c in corpora}})

    primary = model(MULTI, "primary", 1)
    bc2gm = model(LabelSchema(("gene",), "bio"), "bc2gm", 2, ["bc2gm"])
    jnlpba = model(LabelSchema(("gene", "dna"), "bio"), "jnlpba", 3, ["jnlpba"])
    words = [["The", "Aspirin", "dose", "."], ["BRCA", "of", "the", "Mouse"]]
    assert teacher_type_names(TokenClassifier.from_pretrained(jnlpba), {"jnlpba"}, ("gene", "dna", "protein")) == {"gene": "protein", "dna": "dna"}
    assert teacher_type_names(TokenClassifier.from_pretrained(jnlpba), {"jnlpba"}, ("gene", "dna")) == {"gene": "gene", "dna": "dna"}
    with pytest.raises(InputError, match="dna"):  # the student has no dna type
        Teachers([primary], [bc2gm, jnlpba], added_types=["protein"])
    jnlpba = model(LabelSchema(("gene",), "bio"), "jnlpba-genes", 3, ["jnlpba"])
    split = Teachers([primary], [bc2gm, jnlpba], added_types=["protein"])
    assert split.schema.types == ("gene", "disease", "protein") and split.primary_types == ["disease"]
    rows = split.word_log_probs(words, ["jnlpba", "soft-text"])
    bc2gm_rows, jnlpba_rows, own = (Teachers([m]).word_log_probs(words) for m in (bc2gm, jnlpba, primary))
    for n in range(2):
        assert rows[n].shape == (4, 9)
        assert np.allclose(rows[n][:, 0:3], bc2gm_rows[n], atol=1e-5)  # gene: BC2GM's, even on JNLPBA text
        assert np.allclose(rows[n][:, 6:9], jnlpba_rows[n], atol=1e-5)  # protein: JNLPBA's
        assert np.allclose(rows[n][:, 3:6], own[n][:, 3:6], atol=1e-5)  # disease: the primary's
    assert split.fingerprint() != Teachers([primary], [bc2gm, jnlpba]).fingerprint()
    with pytest.raises(InputError) as info:  # nobody teaches the added type
        Teachers([primary], [bc2gm], added_types=["protein"])
    assert info.value.field == "added_types"
    both = model(LabelSchema(("gene",), "bio"), "both", 4, ["bc2gm", "jnlpba"])
    with pytest.raises(InputError, match="one teacher per type"):  # its gene is BC2GM's gene and JNLPBA's protein
        Teachers([primary], [both], added_types=["protein"])


def test_a_student_grows_the_added_types_its_type_teachers_teach(toy_trained, tmp_path):
    """``added_types``: the student is the primary teacher's layers with one more head,
    started from the named type's, and learns the new type from its type teacher."""
    settings = _item_student(toy_trained, tmp_path)
    teacher, corpus, item_teacher = settings["teacher"], settings["corpora"][0], settings["type_teachers"][0]
    config = DistillConfig(**settings)
    trainer = trainer_module.DistillTrainer(config)
    assert trainer.schema.types == ("Thing", "Item") and trainer.model.schema == trainer.schema
    head = trainer.model.network.classifier.weight
    assert head.shape[0] == 6 and torch.equal(head[3:6], head[0:3])  # Item starts as Thing
    assert trainer.annotated_types.tolist() == [[True, False]]  # the corpus does not annotate Item: soft labels only
    student = distill(config)
    assert TokenClassifier.from_pretrained(student).schema.types == ("Thing", "Item")
    for bad in ({"Item": ""}, ["Item"]):
        with pytest.raises(InputError) as info:
            DistillConfig(teacher=str(teacher), type_teachers=[str(item_teacher)], added_types=bad, corpora=[str(corpus)], output_dir="x", student_layers=[1])
        assert info.value.field == "added_types"
    with pytest.raises(InputError) as info:  # only type teachers teach an added type
        DistillConfig(teacher=str(teacher), added_types={"Item": "Thing"}, corpora=[str(corpus)], output_dir="x", student_layers=[1])
    assert info.value.field == "added_types"


def test_a_crf_teacher_hands_over_its_marginals(toy_trained):
    from biotag.distill.teachers import Teachers
    from biotag.models.decoding import word_log_probs

    teacher, _ = toy_trained
    teachers = Teachers([teacher])
    assert teachers.primary.crf is not None  # CRF is the training default
    words = [["the", "Kinase", "binds", "the", "Mouse", "."]]
    [scores] = teachers.primary.predict_words(words)
    [soft] = teachers.word_log_probs(words)
    assert np.allclose(soft, word_log_probs(teachers.primary.schema, scores, teachers.primary.crf.params()), atol=1e-6)
    assert not np.allclose(soft, word_log_probs(teachers.primary.schema, scores), atol=1e-3)
    assert teachers.fingerprint() != teacher_fingerprint(teacher)  # not a cache of its raw scores


def test_default_layer_pairs():
    config = DistillConfig(teacher="t", corpora=["c"], output_dir="o", student_layers=[0, 2, 4])
    assert layer_pairs(config, 3, 6) == [(1, 1), (2, 3), (3, 5)]
    config = DistillConfig(teacher="t", corpora=["c"], output_dir="o", encoder="minilm-l3")
    assert layer_pairs(config, 3, 6) == [(1, 2), (2, 4), (3, 6)]
    with pytest.raises(InputError):
        layer_pairs(config.replace(hidden_layers=[[4, 1]]), 3, 6)


def test_gradual_pruning_reaches_the_target_and_pruned_weights_stay_zero(tiny_teacher):
    model = TokenClassifier.from_pretrained(tiny_teacher)
    pruner = GradualPruner(model.network, 0.6, start=2, end=12, every=3)
    levels = []
    for step in range(1, 16):
        with torch.no_grad():  # an optimizer step would revive pruned weights
            for w in pruner.weights:
                w.add_(torch.randn_like(w) * 0.01)
        pruner.after_step(step)
        levels.append(pruner.measured())
    assert levels[0] == 0.0 and all(a <= b + 1e-9 for a, b in zip(levels, levels[1:]))
    for w in encoder_linear_weights(model.network):
        assert (w == 0).float().mean().item() == pytest.approx(0.6, abs=1e-3)  # each matrix
    assert model.network.classifier.weight.ne(0).all()  # the head stays dense
    again = GradualPruner(model.network, 0.6, start=2, end=12, every=3)
    again.restore()  # after a restart the zeros are the mask
    assert again.level == pytest.approx(0.6, abs=1e-3) and all(torch.equal(a, b) for a, b in zip(again.masks, pruner.masks))


# -- biotag distill ----------------------------------------------------------------------------
def _read_evals(out: Path) -> list[tuple]:
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["devel"]["f1"], r["weights"]["soft"]) for r in records if r["event"] == "eval"]


def test_cli_distills_a_trained_teacher_into_a_pruned_student(toy_trained, tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    teacher, corpus = toy_trained
    text = tmp_path / "abstracts.jsonl"
    rows = [{"pmid": "1", "title": "The Aspirin dose.", "abstract": "The Kinase of the Mouse is a gene."},
            {"pmid": "2", "title": "Held out.", "abstract": "The Insulin test.", "in_test_split": True}]
    text.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "student"
    args = ["distill", "-t", str(teacher), "-c", str(corpus), "--student-layers", "1", "-o", str(out), "--soft-text", str(text),
            "--soft-ratio", "0.25", "--soft-top-k", "2", "--prune-sparsity", "0.3", "--hidden-weight", "0.5",
            "--epochs", "4", "--lr", "3e-3", "--batch-size", "8", "--max-length", "32", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    student = TokenClassifier.from_pretrained(out / "model")
    assert student.network.config.num_hidden_layers == 1 and student.schema == TokenClassifier.from_pretrained(teacher).schema
    card = student.card["distillation"]
    assert card["teacher"] == str(teacher) and card["weighting"]["kind"] == "dynamic"
    assert card["losses"]["soft"].startswith("cross-entropy of the student's CRF")  # a CRF teacher makes a CRF student
    assert card["soft_text"]["sentences"] == 2  # the in_test_split record is dropped
    assert card["pruning"]["sparsity"] == pytest.approx(0.3, abs=1e-3)
    assert "distillation" in (out / "model" / "README.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_f1"] > 0.5  # the toy rule is learnable from the teacher's one remaining layer
    bad = CliRunner().invoke(app, ["distill", "-t", str(teacher), "-c", str(corpus), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "student" in bad.output


def _resume_config(teacher: Path, corpus: Path, out: Path, student: Path) -> DistillConfig:
    return DistillConfig(
        teacher=str(teacher), corpora=[str(corpus)], output_dir=str(out), encoder=str(student), unify_types=False,
        epochs=3, lr=3e-3, batch_size=8, max_length=32, threads=1, patience=0, checkpoint_every=4, eval_every=5,
        hidden_weight=1.0, soft_cache=str(out.parent / "shared-cache"),
    )


def test_resume_after_interruption_matches_an_uninterrupted_run(toy_trained, tmp_path, monkeypatch):
    teacher, corpus = toy_trained
    student = make_tiny_encoder(tmp_path / "student-encoder", seed=3)
    full = distill(_resume_config(teacher, corpus, tmp_path / "full", student))

    original = trainer_module.DistillTrainer._optimizer_step
    steps = []

    def crash_after_nine(self):
        original(self)
        steps.append(1)
        if len(steps) == 9:  # after the checkpoint at step 8, before the one at 12
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer_module.DistillTrainer, "_optimizer_step", crash_after_nine)
    cut = _resume_config(teacher, corpus, tmp_path / "cut", student)
    with pytest.raises(KeyboardInterrupt):
        distill(cut)
    assert not (tmp_path / "cut" / "summary.json").exists()
    with pytest.raises(InputError) as info:
        distill(cut.replace(kd_temperature=4.0), resume=True)
    assert info.value.field == "kd_temperature"
    steps.clear()
    monkeypatch.setattr(trainer_module.DistillTrainer, "_optimizer_step", lambda self: (original(self), steps.append(1)))
    resumed = distill(cut, resume=True)
    total = json.loads((tmp_path / "full" / "summary.json").read_text())["steps"]
    assert len(steps) == total - 8  # continued from the checkpoint at step 8, not from scratch
    assert _read_evals(tmp_path / "cut") == _read_evals(tmp_path / "full")
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_config_errors_name_the_setting(tmp_path):
    for changes, field in [
        ({"encoder": "minilm-l3", "student_layers": [0]}, "encoder"),
        ({"encoder": "minilm-l3", "weighting": "sometimes"}, "weighting"),
        ({"encoder": "minilm-l3", "soft_text": ["a.txt"], "weighting": "fixed", "soft_weight": 0.0}, "soft_text"),
        ({"encoder": "minilm-l3", "prune_sparsity": 0.5, "prune_start": 0.8, "prune_end": 0.5}, "prune_end"),
        ({"student_layers": [1, 1]}, "student_layers"),
        ({"encoder": "minilm-l3", "soft_loss": "mse"}, "soft_loss"),
    ]:
        with pytest.raises(InputError) as info:
            DistillConfig(teacher="t", corpora=["c"], output_dir=str(tmp_path), **changes)
        assert info.value.field == field
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"corpora": ["c"], "output_dir": "o", "encoder": "x"}))
    with pytest.raises(InputError) as info:
        DistillConfig.from_json(path)
    assert info.value.field == "teacher" and str(path) in str(info.value)


def test_distills_from_a_teacher_with_another_tokenizer(toy_trained, tmp_path):
    teacher, corpus = toy_trained
    other = with_other_tokenizer(teacher, tmp_path / "char-teacher")
    student = make_tiny_encoder(tmp_path / "student-encoder", seed=5)
    config = DistillConfig(
        teacher=str(other), corpora=[str(corpus)], output_dir=str(tmp_path / "run"), encoder=str(student),
        max_steps=4, batch_size=8, max_length=32, threads=1, hidden_weight=1.0, checkpoint_every=0,
    )
    model = TokenClassifier.from_pretrained(distill(config))
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    parts = [r["loss_parts"] for r in records if r["event"] == "eval"][-1]
    assert set(parts) == {"hard", "soft", "hidden"} and parts["hidden"] > 0
    assert model.schema == TokenClassifier.from_pretrained(teacher).schema
    with pytest.raises(InputError) as info:  # attention maps are per sub-word: they need one tokenizer
        distill(config.replace(output_dir=str(tmp_path / "att"), attention_weight=1.0))
    assert info.value.field == "attention_weight"


# -- the device ------------------------------------------------------------------------------
def test_device_auto_distills_here_and_a_bad_device_names_the_setting(toy_trained, tmp_path):
    teacher, corpus = toy_trained
    # every part that touches the device: soft labels, hidden and attention transfer, pruning
    config = DistillConfig(
        teacher=str(teacher), corpora=[str(corpus)], output_dir=str(tmp_path / "run"), student_layers=[1], unify_types=False,
        max_steps=2, batch_size=8, max_length=32, threads=1, hidden_weight=1.0, attention_weight=1.0, prune_sparsity=0.5,
        prune_end=0.5, checkpoint_every=0, device="auto",
    )
    model = TokenClassifier.from_pretrained(distill(config))  # a GPU when there is one, else the CPU: the same run
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert set([r["loss_parts"] for r in records if r["event"] == "eval"][-1]) == {"hard", "soft", "hidden", "attention"}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2
    assert model.card["distillation"]["pruning"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["device"] == "auto"
    assert next(model.parameters()).device.type == "cpu"  # saved models load on the CPU
    for bad in ("gpu", "cuda:x", 0):
        with pytest.raises(InputError) as info:
            config.replace(device=bad)
        assert info.value.field == "device"
    if not torch.cuda.is_available():  # asked for, not there: said before the teacher is loaded
        with pytest.raises(InputError, match="no GPU") as info:
            distill(config.replace(device="cuda", output_dir=str(tmp_path / "cuda")))
        assert info.value.field == "device"


def test_cli_keeps_every_config_value_unless_an_option_is_given(tmp_path, monkeypatch):
    """No ``biotag distill`` option may replace a config file's value by its own default
    (``biotag train --encoder`` once did): only options given on the command line count."""
    from typer.main import get_command
    from typer.testing import CliRunner

    import biotag.distill
    from biotag.cli import app

    command = get_command(app).commands["distill"]
    assert {p.name for p in command.params if p.default not in (None, False)} == set()  # flags default to off

    seen = []
    monkeypatch.setattr(biotag.distill, "distill", lambda cfg, resume=False: seen.append(cfg) or tmp_path)
    settings = {
        "teacher": "teacher-dir", "corpora": ["a", "b"], "output_dir": str(tmp_path / "out"), "student_layers": [0, 2],
        "unify_types": False, "soft_text": ["t.jsonl"], "soft_limit": 5, "soft_ratio": 0.5, "soft_top_k": 2,
        "soft_cache": "cache", "weighting": "fixed", "schedule": "cosine", "soft_floor": 0.3, "hard_weight": 0.7,
        "soft_weight": 0.4, "kd_temperature": 3.0, "hidden_weight": 0.2, "attention_weight": 0.1, "prune_sparsity": 0.5,
        "epochs": 2, "lr": 1e-4, "batch_size": 4, "max_length": 64, "max_steps": 9, "eval_every": 3,
        "checkpoint_every": 6, "seed": 5, "threads": 2, "device": "auto", "type_teachers": ["gene-teacher-dir"],
    }
    path = tmp_path / "distill.json"
    path.write_text(json.dumps(settings))
    runner = CliRunner()
    result = runner.invoke(app, ["distill", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert seen[-1] == DistillConfig.from_json(path) and seen[-1].device == "auto"
    assert runner.invoke(app, ["distill", "--config", str(path), "--device", "cpu", "--epochs", "3"]).exit_code == 0
    assert (seen[-1].device, seen[-1].epochs, seen[-1].lr) == ("cpu", 3, 1e-4)
    result = runner.invoke(app, ["distill", "--config", str(path), "--device", "gpu"])
    assert result.exit_code != 0 and "device" in result.output


def test_cli_distills_from_an_ensemble_of_teachers_with_different_tokenizers(toy_trained, tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    teacher, corpus = toy_trained
    other = perturbed_copy(with_other_tokenizer(teacher, tmp_path / "chars"), tmp_path / "chars-perturbed", seed=5)
    out = tmp_path / "student"
    args = ["distill", "-t", str(teacher), "-t", str(other), "-c", str(corpus), "--student-layers", "1", "-o", str(out),
            "--epochs", "2", "--lr", "3e-3", "--batch-size", "8", "--max-length", "32", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = TokenClassifier.from_pretrained(out / "model").card["distillation"]
    assert card["teacher"] == [str(teacher), str(other)] and card["soft_labels"].startswith("mean of 2 teachers")
    twice = CliRunner().invoke(app, ["distill", "-t", str(teacher), "-t", str(teacher), "-c", str(corpus), "--student-layers", "1",
                                     "-o", str(tmp_path / "x")])
    assert twice.exit_code == 2 and "teacher" in twice.output


def test_a_student_with_word_features_learns_through_them(toy_trained, tmp_path):
    """The student may use dictionary and shape features the teacher never had: they are
    computed for gold and unlabelled sentences alike, saved with the student and used when
    it predicts."""
    from biotag.features import DictionaryMatcher

    teacher, corpus = toy_trained
    toy = DictionaryMatcher.build([("Aspirin", "Thing"), ("Insulin", "Thing")], ("Thing",))
    toy.save(tmp_path / "dictionary")
    text = tmp_path / "abstracts.jsonl"
    text.write_text(json.dumps({"pmid": "1", "title": "The Aspirin dose.", "abstract": "The Kinase of the Mouse."}) + "\n")
    student = make_tiny_encoder(tmp_path / "student-encoder", seed=5)
    config = DistillConfig(
        teacher=str(teacher), corpora=[str(corpus)], output_dir=str(tmp_path / "run"), encoder=str(student),
        soft_text=[str(text)], soft_ratio=0.5, epochs=2, lr=3e-3, batch_size=8, max_length=32, threads=1, checkpoint_every=0,
        dictionary_features=str(tmp_path / "dictionary"), shape_features=True,
    )
    model = TokenClassifier.from_pretrained(distill(config))
    meta = json.loads((tmp_path / "run" / "model" / "biotag.json").read_text())
    assert meta["features"]["dictionary"]["types"] == ["Thing"] and meta["features"]["shape"]
    assert TokenClassifier.from_pretrained(teacher).features is None and model.features is not None
    words = [["the", "Aspirin", "dose"], ["the", "Kinase", "gene"]]
    first = model.predict_words(words)
    model.features.matcher = DictionaryMatcher.build([], ("Thing",))  # the features reach the scores
    assert not np.allclose(first[0], model.predict_words(words)[0])
    with pytest.raises(InputError) as info:  # transfer reads encoder states that bypass the fusion
        config.replace(hidden_weight=1.0)
    assert info.value.field == "hidden_weight"


def test_cli_distills_into_a_narrower_student_cut_from_the_teacher(toy_trained, tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    teacher, corpus = toy_trained
    text = tmp_path / "abstracts.jsonl"
    text.write_text(json.dumps({"pmid": "1", "title": "The Aspirin dose.", "abstract": "The Kinase of the Mouse is a gene."}) + "\n")
    out = tmp_path / "narrow"
    args = ["distill", "-t", str(teacher), "-c", str(corpus), "--student-layers", "0,1", "--student-width", "16", "--student-ffn", "0.5",
            "--soft-text", str(text), "-o", str(out), "--epochs", "4", "--lr", "3e-3", "--batch-size", "8", "--max-length", "32", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    wide = TokenClassifier.from_pretrained(teacher).network.config
    student = TokenClassifier.from_pretrained(out / "model")
    config = student.network.config
    assert (config.hidden_size, config.intermediate_size) == (16, wide.intermediate_size // 2) and wide.hidden_size == 32
    assert config.num_attention_heads == 16 // (wide.hidden_size // wide.num_attention_heads)
    assert student.card["distillation"]["student"] == "teacher layers [0, 1], hidden size 16, FFN -50%"
    assert student.encoder_name == f"{teacher} layers [0, 1], hidden size 16, FFN -50%"  # not the temporary init folder
    assert json.loads((out / "summary.json").read_text())["best_f1"] > 0.5
    # any student encoder can be narrowed too (fresh head, dimensions ranked on the text)
    encoder = make_tiny_encoder(tmp_path / "student-encoder", seed=5)
    config = DistillConfig(teacher=str(teacher), corpora=[str(corpus)], output_dir=str(tmp_path / "enc"), encoder=str(encoder),
                           student_width=16, soft_text=[str(text)], max_steps=3, batch_size=8, max_length=32, threads=1, checkpoint_every=0)  # fmt: skip
    narrowed = TokenClassifier.from_pretrained(distill(config))
    assert narrowed.network.config.hidden_size == 16 and narrowed.card["distillation"]["student"] == f"{encoder}, hidden size 16"
    assert not (tmp_path / "enc" / "student-init").exists() and not (tmp_path / "enc" / "student-init-source").exists()
    with pytest.raises(InputError) as info:
        config.replace(student_width=0)
    assert info.value.field == "student_width"


def test_an_onnx_export_teaches_like_its_pytorch_model(toy_trained, tmp_path):
    """An exported model (the bundled one is only that) is a teacher: the same word
    distributions through ONNX Runtime, its own cache key, and a clear error for what needs
    PyTorch weights."""
    from biotag.distill.teachers import OnnxTeacher, Teachers
    from biotag.runtime.export import export_onnx

    teacher, corpus = toy_trained
    onnx = export_onnx(teacher, tmp_path / "onnx", quantize="none")
    words = [["the", "Aspirin", "dose", "in", "the", "Mouse"], ["Insulin"]]
    exported, original = Teachers([onnx]), Teachers([teacher])
    assert isinstance(exported.primary, OnnxTeacher) and exported.primary.crf is not None
    for a, b in zip(exported.word_log_probs(words), original.word_log_probs(words)):
        assert np.allclose(a, b, atol=1e-4)
    assert exported.fingerprint() != original.fingerprint()
    student = make_tiny_encoder(tmp_path / "student-encoder", seed=5)
    config = DistillConfig(
        teacher=str(onnx), corpora=[str(corpus)], output_dir=str(tmp_path / "run"), encoder=str(student),
        epochs=2, lr=3e-3, batch_size=8, max_length=32, threads=1, checkpoint_every=0,
    )
    model = TokenClassifier.from_pretrained(distill(config))
    assert model.schema == exported.primary.schema and model.decoder == "crf"
    for name, value in (("student_layers", [0]), ("hidden_weight", 1.0)):
        changes = {name: value, "encoder": None} if name == "student_layers" else {name: value}
        with pytest.raises(InputError) as info:
            distill(config.replace(output_dir=str(tmp_path / name), **changes))
        assert info.value.field == name


def test_a_distilled_student_teaches_with_the_type_mapping_it_learned(tmp_path):
    """A student of a student maps corpus labels as the chain's first teacher did: the
    middle model's config leaves unify_types unset, its summary records what it used."""
    from helpers import write_toy_corpus

    from biotag.training import TrainConfig, train

    corpus = write_toy_corpus(tmp_path / "toy", n_train=16, n_devel=4, entity_type="Disease")  # unified: "disease"
    encoder = make_tiny_encoder(tmp_path / "encoder")
    common = dict(corpora=[str(corpus)], batch_size=8, max_length=32, threads=1, checkpoint_every=0, max_steps=2)
    plain = dict(dictionary_features=False, shape_features=False)
    teacher = train(TrainConfig(output_dir=str(tmp_path / "teacher"), encoder=str(encoder), unify_types=True, **common, **plain))
    assert TokenClassifier.from_pretrained(teacher).schema.types == ("disease",)
    first = distill(DistillConfig(teacher=str(teacher), output_dir=str(tmp_path / "first"), student_layers=[1], **common))
    assert TokenClassifier.from_pretrained(first).card["distillation"]["unify_types"] is True
    second = tmp_path / "second"
    distill(DistillConfig(teacher=str(first), output_dir=str(second), student_layers=[0], **common))
    data = next(json.loads(line) for line in (second / "log.jsonl").read_text().splitlines() if '"data"' in line)
    assert [c["types"] for c in data["corpora"].values()] == [["disease"]]  # gold labels reach the student
    # a corpus that annotates none of the model's types is an error, not a run on "O" alone
    with pytest.raises(InputError, match="none of the model's types") as info:
        train(TrainConfig(output_dir=str(tmp_path / "plain"), encoder=str(encoder), unify_types=False, types=["disease"], **common, **plain))
    assert info.value.field == "corpora" and "Disease" in str(info.value)


def test_a_distillation_with_corpus_aware_type_teachers_keys_sentences_by_corpus(toy_trained, tmp_path):
    teacher, corpus = toy_trained
    out = tmp_path / "run"
    config = DistillConfig(
        teacher=str(teacher), type_teachers=[str(teacher)], corpora=[str(corpus)], output_dir=str(out), student_layers=[1],
        unify_types=False, max_steps=1, batch_size=8, max_length=32, threads=1, checkpoint_every=0,
    )
    trainer = trainer_module.DistillTrainer(config)
    words = [e.words for e in trainer.train_examples]
    owners = [e.key[0] for e in trainer.train_examples]
    assert set(owners) == set(TokenClassifier.from_pretrained(teacher).card["data"])  # the type teacher's own corpus
    assert (trainer.cache.starts(words, owners) == trainer.gold_starts).all()
    with pytest.raises(InputError):  # keyed by corpus, not by the words alone
        trainer.cache.starts(words[:1])
    assert (out / "teacher-cache" / "members").is_dir()
