"""Rebuilding a PyTorch model directory from an ONNX export (biotag.runtime.recover), on
tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biotag.cli import app
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from biotag.runtime.engine import OnnxTokenClassifier
from biotag.runtime.export import export_onnx
from biotag.runtime.recover import recover_torch, recovered_state

from helpers import make_tiny_encoder, make_tiny_mpnet

WORDS = [["The", "BRCA", "gene", "is", "mutated", "in", "the", "Human", "."], ["Aspirin", "."], "the Insulin of Kinase was the cell in a mouse".split()]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("recover")


@pytest.fixture(scope="module")
def source(root) -> Path:
    """A random multi-label model with a CRF. Every weight is perturbed, as training does: a
    fresh model's all-ones / all-zeros layer norms and biases would be merged into one
    constant by the ONNX exporter, which no trained model meets."""
    model = TokenClassifier.from_encoder(
        make_tiny_encoder(root / "encoder"), LabelSchema(("Gene", "Disease"), "multilabel"), max_length=16, decoder="crf"
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return model.save_pretrained(root / "torch")


def _parameters(directory: Path) -> dict[str, np.ndarray]:
    model = TokenClassifier.from_pretrained(directory)
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "quantize, optimize", [("none", True), ("none", False), ("int8", True), ("int8-fp32-embeddings", True)]
)
def test_rebuilt_model_has_the_exported_weights(root, source, quantize, optimize):
    name = f"{quantize}-{'opt' if optimize else 'plain'}"
    export = export_onnx(source, root / f"onnx-{name}", quantize=quantize, optimize=optimize)
    rebuilt, difference = recover_torch(export, root / f"rebuilt-{name}")
    original, got = _parameters(source), _parameters(rebuilt)
    assert set(got) == set(original)
    for key, value in original.items():
        # float graphs give the weights back exactly; int8 ones within half a quantisation
        # step of each tensor's (or column's) range: 7-bit weights (export uses reduce_range)
        step = 0 if quantize == "none" else 2 * np.abs(value).max() / 127
        assert np.abs(got[key] - value).max() <= step / 2 + 1e-5, key
    # the rebuilt model predicts what the export predicts, up to the export's own rounding
    expected = OnnxTokenClassifier.from_pretrained(export, threads=1).predict_words(WORDS)
    scores = TokenClassifier.from_pretrained(rebuilt).predict_words(WORDS)
    largest = max(float(np.abs(a - b).max()) for a, b in zip(scores, expected))
    bound = 1e-4 if quantize == "none" else 0.2
    assert largest < bound and difference < bound
    card = json.loads((rebuilt / "biotag.json").read_text())["training"]["rebuilt_from_onnx"]
    assert card["quantize"] == quantize and card["max_abs_diff_vs_onnx"] == pytest.approx(difference, abs=1e-6)


def test_rebuilt_model_is_a_model_to_train_and_export_again(root, source):
    """The rebuilt directory is an ordinary PyTorch model directory: it loads, keeps the
    CRF, and exports again."""
    rebuilt, _ = recover_torch(export_onnx(source, root / "onnx-again", quantize="none"), root / "rebuilt-again")
    model = TokenClassifier.from_pretrained(rebuilt)
    np.testing.assert_allclose(model.crf.transitions.detach().numpy(), TokenClassifier.from_pretrained(source).crf.transitions.detach().numpy(), atol=1e-6)  # biotag.json keeps 6 decimals
    assert model.decoder == "crf"
    export_onnx(rebuilt, root / "onnx-twice", quantize="int8")


def test_refusals_name_the_problem(root, source, tmp_path):
    export = export_onnx(source, root / "onnx-refusals", quantize="int8")
    with pytest.raises(InputError, match="no onnx entry"):
        recover_torch(source, tmp_path / "a")
    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError, match="exists"):
        recover_torch(export, tmp_path / "taken")
    import onnx

    graph = onnx.load(str(export / "model.int8.onnx")).graph
    expected = {k: tuple(v.shape) for k, v in TokenClassifier.from_pretrained(source).network.named_parameters()}
    with pytest.raises(InputError, match="cannot find 1 of"):
        recovered_state(graph, {**expected, "bert.encoder.layer.9.output.dense.weight": (4, 4)})
    with pytest.raises(InputError, match="wrong shape"):
        recovered_state(graph, {**expected, "classifier.weight": (3, 3)})


def test_mpnet_exports_rebuild_too(tmp_path):
    """MPNet (relative attention bias, separate q/k/v projections) comes back as well: its
    weights keep their names or sit behind MatMuls named after their modules."""
    model = TokenClassifier.from_encoder(make_tiny_mpnet(tmp_path / "enc"), LabelSchema(("Gene",), "bio"), max_length=16)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    source = model.save_pretrained(tmp_path / "torch")
    rebuilt, difference = recover_torch(export_onnx(source, tmp_path / "onnx", quantize="none"), tmp_path / "rebuilt")
    original, got = _parameters(source), _parameters(rebuilt)
    assert set(got) == set(original) and any("relative_attention_bias" in k for k in got)
    assert max(float(np.abs(got[k] - v).max()) for k, v in original.items()) < 1e-6
    assert difference < 1e-4


def test_cli_rebuild_pytorch(root, source, tmp_path):
    export = export_onnx(source, root / "onnx-cli", quantize="int8")
    result = CliRunner().invoke(app, ["rebuild-pytorch", str(export), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "largest logit difference" in result.output and (tmp_path / "out" / "model.safetensors").is_file()
    again = CliRunner().invoke(app, ["rebuild-pytorch", str(export), "-o", str(tmp_path / "out")])
    assert again.exit_code != 0 and "exists" in again.output
