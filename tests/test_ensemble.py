"""Several NER models as one predictor: the mean of their word distributions, decoded with
BIO-constrained Viterbi; through the Python API and `biotag evaluate -m A -m B`."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from biotag.api import load_predictor
from biotag.cli import app
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.ensemble import EnsemblePredictor
from biotag.models.token_classifier import TokenClassifier
from helpers import make_tiny_encoder, perturbed_copy

runner = CliRunner()
WORDS = [["the", "Insulin", "of", "Kinase", "was", "the", "cell", "."], ["the", "Aspirin", "."]]


def test_the_ensemble_distribution_is_the_mean_of_its_members(toy_trained, tmp_path):
    model_dir, _ = toy_trained
    other_dir = perturbed_copy(model_dir, tmp_path / "other", seed=5)
    one, other = load_predictor(model_dir), load_predictor(other_dir)
    ensemble = load_predictor([model_dir, other_dir])
    assert isinstance(ensemble, EnsemblePredictor) and ensemble.schema == one.schema
    mine, theirs = one.word_distributions(WORDS), other.word_distributions(WORDS)
    for a, b, mean in zip(mine, theirs, ensemble.predict_words(WORDS)):
        assert not np.allclose(a, b, atol=1e-3)  # the members disagree ...
        assert np.allclose(np.exp(mean), (np.exp(a) + np.exp(b)) / 2, atol=1e-5)  # ... and meet halfway
    # a model with itself is that model's distribution, and finds its entity
    twice = load_predictor([model_dir, model_dir])
    for a, mean in zip(mine, twice.predict_words(WORDS)):
        assert np.allclose(mean, a, atol=1e-5)
    spans = twice.decode(twice.predict_words(WORDS)[0])
    assert [(s.start, s.end, s.type) for s, _ in spans] == [(1, 2, "Thing")]


def test_members_may_mix_backends(toy_trained, tmp_path):
    """An ONNX Runtime engine hands over the same distribution (its CRF's marginals) as the
    PyTorch model it was exported from."""
    from biotag.runtime.export import export_onnx

    model_dir, _ = toy_trained
    onnx_dir = export_onnx(model_dir, tmp_path / "onnx", quantize="none")
    torch_model, engine = load_predictor(model_dir), load_predictor(onnx_dir)
    assert engine.crf is not None
    for a, b in zip(torch_model.word_distributions(WORDS), engine.word_distributions(WORDS)):
        assert np.allclose(a, b, atol=1e-4)
    mixed = load_predictor([model_dir, onnx_dir])
    for a, mean in zip(torch_model.word_distributions(WORDS), mixed.predict_words(WORDS)):
        assert np.allclose(a, mean, atol=1e-4)


def test_an_ensemble_refuses_other_types_and_the_crf_decoder(toy_trained, tmp_path):
    model_dir, _ = toy_trained
    encoder = make_tiny_encoder(tmp_path / "encoder")
    other = TokenClassifier.from_encoder(encoder, LabelSchema(("gene",), "bio"), max_length=32).save_pretrained(tmp_path / "gene")
    with pytest.raises(InputError) as info:
        load_predictor([model_dir, other])
    assert info.value.field == "model" and str(other) in str(info.value) and "same types" in str(info.value)
    with pytest.raises(InputError) as info:
        load_predictor([model_dir, model_dir], decoder="crf")
    assert info.value.field == "decoder" and "viterbi" in str(info.value)
    with pytest.raises(InputError):
        EnsemblePredictor([load_predictor(model_dir)])
    assert load_predictor([model_dir], decoder="greedy").decoder == "greedy"  # one model: that model


def test_evaluate_cli_scores_an_ensemble(toy_trained, tmp_path):
    model_dir, corpus = toy_trained
    noisy = perturbed_copy(model_dir, tmp_path / "noisy", seed=7)
    reports = {}
    for name, models in {"single": [model_dir], "noisy": [noisy], "pair": [model_dir, noisy]}.items():
        out = tmp_path / f"{name}.json"
        args = ["evaluate", "--corpus", str(corpus), "--split", "devel", "-o", str(out)]
        for m in models:
            args += ["-m", str(m)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())["micro"]["f1"]
    assert reports["single"] > 0.8
    # the noise swamps the copy's classifier; averaged with the trained model, the pair lands between the two
    assert reports["noisy"] < reports["pair"] < reports["single"]
    failed = runner.invoke(app, ["evaluate", "--corpus", str(corpus), "--split", "devel", "-m", str(model_dir), "-m", str(noisy), "--decoder", "crf"])
    assert failed.exit_code == 2 and "decoder" in failed.output
