"""Structured pruning, vocabulary pruning and magnitude sparsity on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biotag.cli import app
from biotag.compress.sparsity import magnitude_prune
from biotag.compress.structured import PRUNED_HEADS, prune_structured
from biotag.compress.vocab import prune_vocabulary
from biotag.document import Document
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from biotag.ner import NerTagger
from biotag.runtime.engine import OnnxTokenClassifier
from biotag.runtime.export import export_onnx

from helpers import make_tiny_encoder

SCHEMA = LabelSchema(("Gene", "Disease"), "bio")
WORDS = [
    ["The", "BRCA", "gene", "is", "mutated", "in", "the", "Human", "."],
    ["Aspirin", "and", "Insulin", "in", "the", "Mouse", "blood", "."],
    ("the Insulin of Kinase was the cell in a mouse with blood cancer " * 3).split(),
]
HEADS, LAYERS, HIDDEN, FFN = 4, 3, 32, 64


def _max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b) if x.size)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random 3-layer, 4-head BERT classifier whose layer-0 head 2 and the first 16 FFN
    neurons of every layer contribute nothing (zero output weights)."""
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("compress")
    encoder = make_tiny_encoder(root / "encoder")
    config = BertConfig(vocab_size=len((encoder / "vocab.txt").read_text().split()), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=128, initializer_range=0.2)  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(encoder)
    model = TokenClassifier.from_encoder(encoder, SCHEMA, max_length=16)
    size = HIDDEN // HEADS
    with torch.no_grad():
        layers = model.network.bert.encoder.layer
        layers[0].attention.output.dense.weight[:, 2 * size : 3 * size] = 0
        for layer in layers:
            layer.output.dense.weight[:, :16] = 0
    return model.save_pretrained(root / "model")


def test_pruning_dead_heads_and_neurons_keeps_outputs(model_dir, tmp_path):
    """The zeroed head and neurons are the least important by magnitude, so removing
    exactly them changes nothing: the right rows and columns were cut."""
    original = TokenClassifier.from_pretrained(model_dir)
    out = prune_structured(model_dir, tmp_path / "p", heads=1 / (HEADS * LAYERS), ffn=16 / FFN)
    pruned = TokenClassifier.from_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    assert config[PRUNED_HEADS] == {"0": [2]} and config["intermediate_size"] == FFN - 16
    layer0 = pruned.network.bert.encoder.layer[0]
    assert layer0.attention.self.query.weight.shape == (HIDDEN - HIDDEN // HEADS, HIDDEN)
    assert layer0.attention.output.dense.weight.shape == (HIDDEN, HIDDEN - HIDDEN // HEADS)
    assert layer0.intermediate.dense.weight.shape == (FFN - 16, HIDDEN)
    assert _max_diff(pruned.predict_words(WORDS), original.predict_words(WORDS)) < 1e-5
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in original.parameters())


def test_pruning_nothing_is_the_same_model(model_dir, tmp_path):
    original = TokenClassifier.from_pretrained(model_dir)
    out = prune_structured(model_dir, tmp_path / "p")
    same = TokenClassifier.from_pretrained(out)
    assert PRUNED_HEADS not in json.loads((out / "config.json").read_text())
    a, b = original.network.state_dict(), same.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _max_diff(same.predict_words(WORDS), original.predict_words(WORDS)) == 0.0


def test_dropped_layer_is_the_one_named_and_the_others_keep_their_weights(model_dir, tmp_path):
    original = TokenClassifier.from_pretrained(model_dir).network.bert.encoder.layer
    pruned = TokenClassifier.from_pretrained(prune_structured(model_dir, tmp_path / "p", drop_layers=[1])).network.bert.encoder.layer
    assert len(pruned) == LAYERS - 1
    for new, old in ((0, 0), (1, 2)):
        a, b = pruned[new].state_dict(), original[old].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_activation_importance_finds_the_dead_head(model_dir, tmp_path):
    out = prune_structured(model_dir, tmp_path / "p", heads=1 / (HEADS * LAYERS), word_lists=WORDS)
    assert json.loads((out / "config.json").read_text())[PRUNED_HEADS] == {"0": [2]}
    card = json.loads((out / "biotag.json").read_text())["training"]["compression"][-1]
    assert card["importance"] == "activation" and card["removed_heads"] == {"0": 1}


def test_heads_ffn_and_layers_removed_and_the_model_still_works(model_dir, tmp_path):
    out = prune_structured(model_dir, tmp_path / "p", heads=0.5, ffn=0.5, drop_layers=[1])
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["intermediate_size"] == FFN // 2
    removed = config[PRUNED_HEADS]
    assert sum(map(len, removed.values())) == 4  # half of the 2 x 4 heads left after dropping a layer
    model = TokenClassifier.from_pretrained(out)
    for i, layer in enumerate(model.network.bert.encoder.layer):
        heads_left = HEADS - len(removed.get(str(i), []))
        assert heads_left >= 1 and layer.attention.self.query.weight.shape[0] == heads_left * (HIDDEN // HEADS)
    scores = model.predict_words(WORDS)
    assert [s.shape for s in scores] == [(len(w), SCHEMA.num_outputs) for w in WORDS]
    # pruning a pruned model composes, in the original head numbering
    again = prune_structured(out, tmp_path / "again", heads=0.3)
    assert sum(map(len, json.loads((again / "config.json").read_text())[PRUNED_HEADS].values())) > 4
    # the ONNX export (per-layer head counts) gives the PyTorch scores and the same entities
    onnx = export_onnx(out, tmp_path / "onnx", quantize="none")
    engine = OnnxTokenClassifier.from_pretrained(onnx, threads=1)
    assert _max_diff(engine.predict_words(WORDS), scores) < 1e-4
    texts = [" ".join(w) for w in WORDS]
    tag = lambda p: [[(e.spans[0].start, e.type) for e in d.entities] for d in NerTagger(p)(Document(id=str(i), text=t) for i, t in enumerate(texts))]  # noqa: E731
    assert tag(engine) == tag(model)


def test_width_cut_keeps_the_strongest_dimensions_and_heads(model_dir, tmp_path):
    """Weight subcloning: dimensions whose layer-norm gains are tiny everywhere go, every
    matrix loses the same columns/rows, each layer keeps its strongest heads (layer 0 loses
    its dead head 2), and the result is a stock config that exports and runs."""
    weak = TokenClassifier.from_pretrained(model_dir)
    dead = torch.arange(8)  # one head's worth of hidden dimensions
    with torch.no_grad():
        bert = weak.network.bert
        for norm in [bert.embeddings.LayerNorm] + [n for layer in bert.encoder.layer for n in (layer.attention.output.LayerNorm, layer.output.LayerNorm)]:
            norm.weight[dead] = 0.01
    source = weak.save_pretrained(tmp_path / "weak")
    width = HIDDEN - 8
    out = prune_structured(source, tmp_path / "narrow", width=width, ffn=0.5)
    config = json.loads((out / "config.json").read_text())
    size = HIDDEN // HEADS
    assert config["hidden_size"] == width and config["num_attention_heads"] == width // size and PRUNED_HEADS not in config
    card = json.loads((out / "biotag.json").read_text())["training"]["compression"][-1]
    assert card["hidden_size"] == [HIDDEN, width]
    narrow = TokenClassifier.from_pretrained(out)
    kept = torch.arange(8, HIDDEN)
    old_bert, new_bert = weak.network.bert, narrow.network.bert
    assert torch.equal(new_bert.embeddings.word_embeddings.weight, old_bert.embeddings.word_embeddings.weight[:, kept])
    old0, new0 = old_bert.encoder.layer[0].attention.self, new_bert.encoder.layer[0].attention.self
    rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in (0, 1, 3)])  # head 2 of layer 0 is dead
    assert torch.equal(new0.query.weight, old0.query.weight[rows][:, kept])
    assert narrow.network.classifier.weight.shape == (SCHEMA.num_outputs, width)
    assert new_bert.encoder.layer[0].intermediate.dense.weight.shape == (FFN // 2, width)
    scores = narrow.predict_words(WORDS)
    assert [x.shape for x in scores] == [(len(w), SCHEMA.num_outputs) for w in WORDS]
    engine = OnnxTokenClassifier.from_pretrained(export_onnx(out, tmp_path / "onnx", quantize="none"), threads=1)
    assert _max_diff(engine.predict_words(WORDS), scores) < 1e-4
    # activation importance on text also gives a working model of that width
    active = TokenClassifier.from_pretrained(prune_structured(model_dir, tmp_path / "active", width=16, word_lists=WORDS))
    assert active.network.config.hidden_size == 16 and len(active.predict_words(WORDS)) == len(WORDS)


def test_bad_width_requests(model_dir, tmp_path):
    for kwargs in ({"width": 20}, {"width": 0}, {"width": HIDDEN + 8}, {"width": 16, "heads": 0.25}):
        with pytest.raises(InputError) as info:
            prune_structured(model_dir, tmp_path / "w", **kwargs)
        assert info.value.field == "width"
    same = prune_structured(model_dir, tmp_path / "same", width=HIDDEN)
    assert json.loads((same / "config.json").read_text())["hidden_size"] == HIDDEN


def test_bad_structured_requests(model_dir, tmp_path):
    with pytest.raises(InputError, match="drop_layers"):
        prune_structured(model_dir, tmp_path / "a", drop_layers=[0, 1, 2])
    with pytest.raises(InputError, match="drop_layers"):
        prune_structured(model_dir, tmp_path / "b", drop_layers=[7])
    with pytest.raises(InputError, match="heads"):
        prune_structured(model_dir, tmp_path / "c", heads=1.0)


def test_vocabulary_pruning_keeps_outputs_on_known_words(model_dir, tmp_path):
    seen = "the Insulin of Kinase was the cell in a mouse with blood cancer . The BRCA gene is mutated"
    out = prune_vocabulary(model_dir, tmp_path / "v", [seen, "Human"])
    original, pruned = TokenClassifier.from_pretrained(model_dir), TokenClassifier.from_pretrained(out)
    old_rows = original.network.get_input_embeddings().weight.shape[0]
    new_rows = pruned.network.get_input_embeddings().weight.shape[0]
    assert new_rows < old_rows and json.loads((out / "config.json").read_text())["vocab_size"] == new_rows
    assert len(pruned.tokenizer.get_vocab()) == new_rows
    known = [seen.split(), "The BRCA gene is mutated in the Human .".split()]
    assert _max_diff(pruned.predict_words(known), original.predict_words(known)) < 1e-6
    # a dropped whole word ("Aspirin" is in the vocabulary but not in the text) is spelt with kept pieces, never [UNK]
    assert "Aspirin" in original.tokenizer.get_vocab() and "Aspirin" not in pruned.tokenizer.get_vocab()
    ids = pruned.tokenizer([["Aspirin"]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
    assert len(ids) > 1 and pruned.tokenizer.unk_token_id not in ids
    # the ONNX engine (tokenizers only, no transformers) reads the renumbered tokenizer alike
    engine = OnnxTokenClassifier.from_pretrained(export_onnx(out, tmp_path / "onnx", quantize="none"), threads=1)
    assert _max_diff(engine.predict_words(known), original.predict_words(known)) < 1e-4


def test_magnitude_sparsity_zeroes_weights_and_still_exports(model_dir, tmp_path):
    out = magnitude_prune(model_dir, tmp_path / "s", sparsity=0.6)
    model = TokenClassifier.from_pretrained(out)
    linears = [m.weight for m in model.network.bert.encoder.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in linears) / sum(w.numel() for w in linears)
    assert 0.59 < zeros < 0.62
    original = TokenClassifier.from_pretrained(model_dir).network.get_input_embeddings().weight
    assert torch.equal(model.network.get_input_embeddings().weight, original)  # embeddings stay dense
    engine = OnnxTokenClassifier.from_pretrained(export_onnx(out, tmp_path / "onnx", quantize="none"), threads=1)
    assert _max_diff(engine.predict_words(WORDS), model.predict_words(WORDS)) < 1e-4
    with pytest.raises(InputError, match="sparsity"):
        magnitude_prune(model_dir, tmp_path / "x", sparsity=1.5)


def test_per_matrix_sparsity_reaches_the_target_in_every_matrix(model_dir, tmp_path):
    out = magnitude_prune(model_dir, tmp_path / "s", sparsity=0.8, scope="layer")
    model = TokenClassifier.from_pretrained(out)
    original = dict(TokenClassifier.from_pretrained(model_dir).network.named_parameters())
    linears = [(n, m.weight) for n, m in model.network.named_modules() if isinstance(m, torch.nn.Linear) and ".encoder." in f".{n}."]
    assert len(linears) == LAYERS * 6  # query, key, value, attention output, intermediate, output
    for name, weight in linears:
        assert abs(float((weight == 0).float().mean()) - 0.8) < 0.01, name
        kept = weight != 0  # the survivors are the largest-magnitude entries, unchanged
        before = original[f"{name}.weight"]
        assert torch.equal(weight[kept], before[kept])
        assert before[kept].abs().min() >= before[~kept].abs().max()
    card = json.loads((out / "biotag.json").read_text())["training"]["compression"][-1]
    assert card["scope"] == "layer" and abs(card["sparsity"] - 0.8) < 0.01


def test_export_command_compresses(model_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the Insulin of Kinase was the cell .\nThe BRCA gene is mutated in the Human .\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["export", str(model_dir), "-o", str(tmp_path / "out"), "--quantize", "int8", "--prune-heads", "0.25", "--prune-ffn", "0.5",
         "--drop-layers", "2", "--prune-vocab", "--vocab-text", str(text), "--save-pytorch", str(tmp_path / "pt")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "pt" / "biotag.json").read_text())["training"]["compression"]
    assert [c["method"] for c in card] == ["structured pruning", "vocabulary pruning"]
    config = json.loads((tmp_path / "pt" / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["intermediate_size"] == FFN // 2 and config["vocab_size"] < 200
    engine = OnnxTokenClassifier.from_pretrained(tmp_path / "out", threads=1)
    assert len(engine.predict_words(WORDS)) == len(WORDS)
    bad = CliRunner().invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "o2"), "--drop-layers", "one"])
    assert bad.exit_code != 0 and "--drop-layers" in bad.output


def test_export_command_cuts_the_width(model_dir, tmp_path):
    result = CliRunner().invoke(
        app, ["export", str(model_dir), "-o", str(tmp_path / "out"), "--quantize", "int8", "--width", "16", "--save-pytorch", str(tmp_path / "pt")]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "pt" / "config.json").read_text())
    assert config["hidden_size"] == 16 and config["num_attention_heads"] == 16 // (HIDDEN // HEADS)
    assert len(OnnxTokenClassifier.from_pretrained(tmp_path / "out", threads=1).predict_words(WORDS)) == len(WORDS)
    bad = CliRunner().invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "o2"), "--width", "12"])
    assert bad.exit_code != 0 and "width" in bad.output
