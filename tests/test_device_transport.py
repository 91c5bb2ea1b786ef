"""scripts/device_transport.py: a model moved in float16 with only its corpora's embedding rows
comes back with the same predictions on those corpora, and the rows left out are the
original encoder's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_transport.py"


@pytest.fixture(scope="module")
def transport():
    spec = importlib.util.spec_from_file_location("device_transport", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_model_round_trip_keeps_its_predictions(transport, toy_trained, tmp_path, monkeypatch):
    from biotag.models.token_classifier import TokenClassifier
    from biotag.training.data import load_corpus

    model_dir, corpus_dir = toy_trained
    encoder_dir = Path(model_dir).parents[1] / "encoder"  # toy_trained: <root>/model/model, <root>/encoder
    transport.main(["pack-model", str(model_dir), str(tmp_path / "out" / "toy"), "-c", str(corpus_dir)])
    parts = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in parts][:2] == ["toy.files.tar.gz", "toy.part0"]
    transport.main(["unpack-model", str(tmp_path / "out" / "toy"), str(tmp_path / "back"), "--encoder", str(encoder_dir)])

    before, after = load_file(str(Path(model_dir) / "model.safetensors")), load_file(str(tmp_path / "back" / "model.safetensors"))
    assert before.keys() == after.keys()
    key = next(k for k in before if k.endswith("word_embeddings.weight"))
    rows = transport.corpus_rows(Path(model_dir), [str(corpus_dir)])
    left_out = np.setdiff1d(np.arange(before[key].shape[0]), rows)
    original = load_file(str(encoder_dir / "model.safetensors"))
    original_key = next(k for k in original if k.endswith("word_embeddings.weight"))
    assert len(left_out) > 0
    assert np.array_equal(after[key][left_out].numpy(), original[original_key][left_out].numpy())
    # float16 rounding on everything moved; the left-out rows lose only the weight decay they
    # had in training (they were never looked up on these corpora)
    assert np.allclose(before[key][rows].numpy(), after[key][rows].numpy(), rtol=2e-3, atol=1e-4)
    for name in set(before) - {key}:
        assert np.allclose(before[name].float().numpy(), after[name].float().numpy(), rtol=2e-3, atol=1e-4), name

    corpus = load_corpus(str(corpus_dir), "train", "devel", unify_types=False)
    words = [[doc.text[t.start : t.end] for t in doc.tokens] for doc in corpus.devel]
    a = TokenClassifier.from_pretrained(model_dir).predict_words(words)
    b = TokenClassifier.from_pretrained(tmp_path / "back").predict_words(words)
    assert all(np.array_equal(x.argmax(-1), y.argmax(-1)) for x, y in zip(a, b))
