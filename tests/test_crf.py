"""The CRF layer and the decoders: loss and decoding against brute force over every
label sequence, partial labels, BIO constraints, training, save/load and ONNX."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from helpers import make_tiny_encoder, write_toy_corpus

from biotag.labels import IGNORE, LabelSchema, TokenSpan
from biotag.models.crf import CRF
from biotag.models.decoding import CrfParams, allowed_transitions, crf_marginals, crf_viterbi, decode_many, decode_scores


def _paths(n: int, states: int, allowed: np.ndarray):
    for path in itertools.product(range(states), repeat=n):
        if allowed[states, path[0]] and all(allowed[a, b] for a, b in zip(path, path[1:])):
            yield path


def _path_score(e, trans, start, end, path):
    return start[path[0]] + sum(e[i, s] for i, s in enumerate(path)) + sum(trans[a, b] for a, b in zip(path, path[1:])) + end[path[-1]]


def _random_crf(schema, seed=0):
    crf = CRF(schema)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return crf


@pytest.mark.parametrize("scheme", ["bio", "multilabel"])
def test_crf_loss_is_the_exact_negative_log_likelihood(scheme):
    schema = LabelSchema(("a", "b"), scheme)
    crf = _random_crf(schema)
    n = 4
    scores = torch.randn(n, schema.num_outputs, generator=torch.Generator().manual_seed(1))
    if scheme == "bio":
        labels = torch.tensor([1, 2, 0, 3])  # B-a I-a O B-b
    else:
        labels = torch.tensor([[1, 0], [2, 0], [0, 1], [0, 2]])
    loss = crf.loss(scores, labels, None, torch.zeros(n, dtype=torch.long))
    allowed = allowed_transitions(schema)
    params = crf.params()
    chains, states = crf.chains, crf.states
    e = scores.double().numpy().reshape(n, chains, states)
    total = 0.0
    for c in range(chains):
        trans = params.transitions[c]
        paths = list(_paths(n, states, allowed))
        log_z = np.logaddexp.reduce([_path_score(e[:, c], trans, params.start[c], params.end[c], p) for p in paths])
        gold = labels.numpy().reshape(n, chains)[:, c]
        total += log_z - _path_score(e[:, c], trans, params.start[c], params.end[c], tuple(gold))
    assert loss.item() == pytest.approx(total / (n * chains), rel=1e-5)


def test_partial_labels_marginalise_over_what_a_corpus_does_not_annotate():
    schema = LabelSchema(("a", "b"), "multilabel")
    crf = _random_crf(schema, seed=3)
    n = 3
    scores = torch.randn(n, 6, generator=torch.Generator().manual_seed(4))
    labels = torch.tensor([[1, 0], [2, 0], [0, 0]])
    rows = torch.zeros(n, dtype=torch.long)
    full = crf.loss(scores, labels, None, rows)
    only_a = crf.loss(scores, labels, torch.tensor([[True, False]] * n), rows)
    # type b not annotated: its chain contributes nothing, a's chain is averaged alone
    labels_a = labels.clone()
    labels_a[:, 1] = IGNORE
    assert only_a.item() == pytest.approx(crf.loss(scores, labels_a, None, rows).item())
    assert only_a.item() != pytest.approx(full.item())
    # a window of unknown labels only has no loss, and an unconstrained word costs nothing
    assert crf.loss(scores, torch.full((n, 2), IGNORE), None, rows).item() == 0.0
    # bio: an O of an unannotated type may hide that type, so the loss is lower than with a full O
    bio = _random_crf(LabelSchema(("a", "b"), "bio"), seed=5)
    s = torch.randn(n, 5, generator=torch.Generator().manual_seed(6))
    gold = torch.tensor([1, 0, 0])
    strict = bio.loss(s, gold, None, rows)
    partial = bio.loss(s, gold, torch.tensor([[True, False]] * n), rows)
    assert partial.item() < strict.item()


def test_windows_of_a_batch_are_separate_chains():
    schema = LabelSchema(("a",), "multilabel")
    crf = _random_crf(schema, seed=7)
    scores = torch.randn(5, 3, generator=torch.Generator().manual_seed(8))
    labels = torch.tensor([[1], [2], [0], [1], [0]])
    together = crf.loss(scores, labels, None, torch.tensor([0, 0, 0, 1, 1]))
    first = crf.loss(scores[:3], labels[:3], None, torch.zeros(3, dtype=torch.long))
    second = crf.loss(scores[3:], labels[3:], None, torch.zeros(2, dtype=torch.long))
    assert together.item() == pytest.approx((first.item() * 3 + second.item() * 2) / 5, rel=1e-5)


def test_viterbi_and_marginals_match_brute_force():
    schema = LabelSchema(("a", "b"), "bio")
    allowed = allowed_transitions(schema)
    rng = np.random.default_rng(0)
    e, trans, start, end = rng.normal(size=(4, 5)), rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=5)
    trans_m = np.where(allowed[:5], trans, -1e9)
    start_m = np.where(allowed[5], start, -1e9)
    paths = list(_paths(4, 5, allowed))
    scores = np.array([_path_score(e, trans, start, end, p) for p in paths])
    assert tuple(crf_viterbi(e, trans_m, start_m, end)) == paths[int(scores.argmax())]
    probs = np.exp(scores - np.logaddexp.reduce(scores))
    expected = np.zeros((4, 5))
    for p, w in zip(paths, probs):
        expected[np.arange(4), list(p)] += w
    assert np.allclose(crf_marginals(e, trans_m, start_m, end), expected)


@pytest.mark.parametrize("scheme", ["bio", "multilabel"])
def test_decoding_many_sentences_at_once_gives_each_sentences_own_result(scheme, monkeypatch):
    """The vectorised CRF decoder pads sentences of different lengths (and several length
    groups) together; every sentence must come out as when decoded alone."""
    import biotag.models.decoding as decoding

    schema = LabelSchema(("a", "b", "c"), scheme)
    params = _random_crf(schema, seed=3).params()
    rng = np.random.default_rng(5)
    lengths = [7, 1, 0, 12, 3, 7, 30, 2, 1, 9]
    score_list = [rng.normal(scale=3.0, size=(n, schema.num_outputs)) for n in lengths]
    monkeypatch.setattr(decoding, "DECODE_GROUP", 4)  # three groups of similar length
    together = decode_many(schema, score_list, "crf", params)
    alone = [decode_scores(schema, s, "crf", params) for s in score_list]
    assert [[sp for sp, _ in d] for d in together] == [[sp for sp, _ in d] for d in alone]
    assert all(np.allclose([c for _, c in a], [c for _, c in b], atol=1e-12) for a, b in zip(together, alone))
    assert sum(map(len, alone)) > 5 and together[2] == []
    # other decoders, and greedy on request, go sentence by sentence as before
    assert decode_many(schema, score_list, "crf", params, constrained=False) == [decode_scores(schema, s, "crf", params, constrained=False) for s in score_list]


def test_decoders_greedy_viterbi_and_untrained_crf():
    schema = LabelSchema(("a",), "bio")
    # O, then a stray I-a, then I-a: greedy keeps the stray I as an entity start
    scores = np.log(np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.2, 0.1, 0.7]]))
    assert [s for s, _ in decode_scores(schema, scores, "greedy")] == [TokenSpan(1, 3, "a")]
    viterbi = [s for s, _ in decode_scores(schema, scores, "viterbi")]
    assert viterbi == [s for s, _ in schema.decode(scores)]
    # a CRF with zero transitions decodes as the constrained Viterbi does
    zero = CrfParams(np.zeros((1, 3, 3)), np.zeros((1, 3)), np.zeros((1, 3)))
    assert [s for s, _ in decode_scores(schema, scores, "crf", zero)] == viterbi
    # and constrained=False is greedy whatever the decoder
    assert [s for s, _ in decode_scores(schema, scores, "crf", zero, constrained=False)] == [TokenSpan(1, 3, "a")]
    # learned transitions matter: make O -> B expensive and the entity disappears
    costly = CrfParams(np.array([[[0, -50, 0], [0, 0, 0], [0, 0, 0]]], dtype=float), np.array([[0, -50, 0]], dtype=float), np.zeros((1, 3)))
    assert decode_scores(schema, scores, "crf", costly) == []
    multilabel = LabelSchema(("a", "b"), "multilabel")
    ml = np.zeros((3, 6))
    ml[:, [0, 3]] = 2.0
    ml[1, 1] = 5.0  # B-a at word 1
    params = CrfParams(np.zeros((2, 3, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    ((span, conf),) = decode_scores(multilabel, ml, "crf", params)
    assert span == TokenSpan(1, 2, "a") and 0.5 < conf <= 1.0
    assert CrfParams.from_dict(json.loads(json.dumps(params.to_dict()))).transitions.shape == (2, 3, 3)


@pytest.fixture(scope="module")
def crf_model(tmp_path_factory):
    from biotag.training import TrainConfig, train

    root = tmp_path_factory.mktemp("crf-model")
    config = TrainConfig(
        corpora=[str(write_toy_corpus(root / "toy", n_train=80, n_devel=20))], output_dir=str(root / "run"),
        encoder=str(make_tiny_encoder(root / "encoder")), unify_types=False, epochs=6, lr=3e-3, batch_size=8,
        max_length=32, threads=1, patience=0, checkpoint_every=0, decoder="crf",
        dictionary_features=False, shape_features=False,
    )
    return train(config)


def test_a_crf_model_learns_saves_loads_and_exports(crf_model, tmp_path):
    from biotag.models.token_classifier import TokenClassifier
    from biotag.runtime.engine import OnnxTokenClassifier
    from biotag.runtime.export import export_onnx

    summary = json.loads((crf_model.parent / "summary.json").read_text())
    assert summary["best_f1"] > 0.5  # the toy rule is learnable through the CRF loss
    meta = json.loads((crf_model / "biotag.json").read_text())
    assert meta["decoder"] == "crf" and np.asarray(meta["crf"]["transitions"]).shape == (1, 3, 3)
    model = TokenClassifier.from_pretrained(crf_model)
    assert model.crf is not None and np.allclose(model.crf.params().transitions, meta["crf"]["transitions"], atol=1e-5)
    # the transitions were trained (they start at zero)
    assert np.abs(model.crf.params().transitions).sum() > 0
    words = [["the", "Aspirin", "and", "the", "Insulin", "."], ["Mouse", "blood", "."]]
    scores = model.predict_words(words)
    spans = [model.decode(s) for s in scores]
    out = export_onnx(crf_model, tmp_path / "onnx", quantize="none", optimize=False)
    engine = OnnxTokenClassifier.from_pretrained(out, threads=1)
    assert engine.decoder == "crf"
    assert [[s for s, _ in engine.decode(sc)] for sc in engine.predict_words(words)] == [[s for s, _ in x] for x in spans]


def test_ner_tagger_uses_the_models_decoder(crf_model):
    from biotag.document import Document
    from biotag.models.token_classifier import TokenClassifier
    from biotag.ner import NerTagger

    model = TokenClassifier.from_pretrained(crf_model)
    calls = []
    original = model.decode_batch

    def spy(score_list, *, constrained=True):
        calls.append((len(score_list), constrained))
        return original(score_list, constrained=constrained)

    model.decode_batch = spy
    (doc,) = NerTagger(model)([Document(id="d", text="the Aspirin and the Insulin . The Mouse gene .")])
    assert calls == [(2, True)]  # both sentences in one call
    assert all(e.source == "ner" for e in doc.entities)


def test_a_decoder_override_changes_how_scores_are_decoded(crf_model, tmp_path):
    from typer.testing import CliRunner

    from biotag.api import load_predictor
    from biotag.cli import app
    from biotag.errors import InputError

    words = [["the", "Aspirin", "and", "the", "Insulin", "."], ["Mouse", "blood", "."]]
    for decoder in ("greedy", "viterbi", "crf"):
        predictor = load_predictor(crf_model, backend="torch", decoder=decoder)
        assert predictor.decoder == decoder
        crf = predictor.crf.params() if decoder == "crf" else None
        for scores in predictor.predict_words(words):
            assert predictor.decode(scores) == decode_scores(predictor.schema, scores, decoder, crf)
    with pytest.raises(InputError, match="unknown decoder 'beam'") as error:
        load_predictor(crf_model, backend="torch", decoder="beam")
    assert error.value.field == "decoder"
    plain = load_predictor(crf_model, backend="torch", decoder="viterbi")
    plain.crf = None  # a model trained without a CRF layer
    from biotag.api import set_decoder

    with pytest.raises(InputError, match="trained with a CRF layer"):
        set_decoder(plain, "crf")

    corpus = crf_model.parent.parent / "toy"
    reports = {}
    for decoder in ("greedy", "crf"):
        out = tmp_path / f"{decoder}.json"
        result = CliRunner().invoke(app, ["evaluate", "-m", str(crf_model), "-c", str(corpus), "--split", "devel", "--backend", "torch", "--decoder", decoder, "-o", str(out)])
        assert result.exit_code == 0, result.output
        reports[decoder] = json.loads(out.read_text())
    assert set(reports["greedy"]) == set(reports["crf"]) and reports["crf"]["micro"]["f1"] > 0.5
    bad = CliRunner().invoke(app, ["evaluate", "-m", str(crf_model), "-c", str(corpus), "--decoder", "beam"])
    assert bad.exit_code != 0 and "decoder" in bad.output


def test_word_log_probs_are_the_crf_marginals_per_chain_or_the_softmax():
    from biotag.models.decoding import LOG_FLOOR, word_log_probs

    schema = LabelSchema(("a", "b"), "multilabel")  # two independent O/B/I chains
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(5, 6))
    params = CrfParams(rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3)), rng.normal(size=(2, 3)))
    out = word_log_probs(schema, scores, params).reshape(5, 2, 3)
    allowed = allowed_transitions(schema)
    for c in range(2):
        trans = np.where(allowed[:3], params.transitions[c], -1e9)
        start = np.where(allowed[3], params.start[c], -1e9)
        expected = crf_marginals(scores.reshape(5, 2, 3)[:, c], trans, start, params.end[c])
        assert np.allclose(np.exp(out[:, c]), expected, atol=1e-6)
    assert np.allclose(np.exp(out).sum(-1), 1.0, atol=1e-5)
    assert np.all(out[0, :, 2] == LOG_FLOOR)  # no chain may start inside an entity
    # without a CRF: the softmax of each group, which the CRF's marginals are not
    plain = word_log_probs(schema, scores).reshape(5, 2, 3)
    x = scores.reshape(5, 2, 3)
    assert np.allclose(plain, x - np.log(np.exp(x).sum(-1, keepdims=True)), atol=1e-5)
    assert not np.allclose(plain, out, atol=1e-2)
    assert word_log_probs(schema, np.zeros((0, 6)), params).shape == (0, 6)


@pytest.mark.parametrize("scheme", ["bio", "multilabel"])
def test_crf_soft_loss_pulls_the_crf_marginals_towards_the_teachers(scheme):
    """Its gradient with respect to the emissions is (CRF marginals - teacher's), word by
    word and chain by chain: zero exactly when the CRF already has the teacher's marginals."""
    from biotag.models.decoding import crf_log_marginals, word_log_probs

    schema = LabelSchema(("a", "b"), scheme)
    crf = CRF(schema)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_()
    rows = torch.tensor([0, 0, 0, 0, 1, 1, 1])  # two windows of 4 and 3 words
    scores = torch.randn(7, schema.num_outputs, dtype=torch.float64, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(7, crf.chains, crf.states, dtype=torch.float64), -1).reshape(7, -1)
    crf = crf.double()
    loss = crf.soft_loss(scores, teacher, rows)
    (grad,) = torch.autograd.grad(loss * 7 * crf.chains, scores)
    own = np.concatenate([np.exp(word_log_probs(schema, scores.detach().numpy()[w], crf.params())) for w in (slice(0, 4), slice(4, 7))])
    q = np.exp(teacher.numpy())
    np.testing.assert_allclose(grad.numpy(), own - q, atol=1e-5)
    # the CRF's own marginals as the teacher: nothing left to learn on the emissions
    mine = torch.from_numpy(np.log(np.maximum(own, 1e-30)))
    (still,) = torch.autograd.grad(crf.soft_loss(scores, mine, rows), scores)
    assert float(still.abs().max()) < 1e-5
    assert crf.soft_loss(scores[:0], teacher[:0], rows[:0]).item() == 0.0


def test_scaled_marginals_equal_the_log_space_ones():
    """decode_many's confidences come from forward-backward in probability space with
    rescaling; they must equal the log-space marginals, padding, forbidden transitions
    and an emission gap too large for exp (the log-space fallback) included."""
    import biotag.models.decoding as decoding

    rng = np.random.default_rng(11)
    for chains, states in ((1, 5), (3, 3)):
        emissions = rng.normal(scale=4.0, size=(17, 23, chains, states))
        lengths = rng.integers(1, 24, size=17)
        trans = np.where(rng.random((chains, states, states)) < 0.2, -1e9, rng.normal(size=(chains, states, states)))
        start = np.where(rng.random((chains, states)) < 0.3, -1e9, rng.normal(size=(chains, states)))
        start[:, 0] = 0.0
        end = rng.normal(size=(chains, states))
        real = np.arange(23)[None, :] < lengths[:, None]
        for case in (emissions, np.where(np.arange(states) == 1, 2000.0, emissions)):
            expected = np.exp(decoding._batched_log_marginals(case, lengths, trans, start, end))
            got = decoding._batched_marginals(case, lengths, trans, start, end)
            assert np.allclose(got[real], expected[real], atol=1e-10)
            assert np.allclose(got[real].sum(-1), 1.0)
