"""Skip layer norms stay split into Add + LayerNormalization (biotag.runtime.layernorm)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from biotag.runtime import engine
from biotag.runtime.engine import OnnxTokenClassifier
from biotag.runtime.export import export_onnx
from biotag.runtime.layernorm import FUSED_OP, split_skip_layer_norms

from helpers import make_tiny_encoder

HIDDEN = 8
WORDS = [["The", "BRCA1", "gene", "is", "mutated", "in", "breast", "cancer", "."], ["Aspirin", "."]]


def _fused_graph(*, beta: bool, bias: bool, sum_output: bool, opset: int = 17) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    names = ["x", "skip", "gamma"] + (["beta"] if beta else [""] if bias else []) + (["bias"] if bias else [])
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [HIDDEN], rng.normal(size=HIDDEN).astype(np.float32)) for n in ("gamma", "beta", "bias")]
    outputs = ["y", "", "", "total"] if sum_output else ["y"]
    # a second node reads the first one's output: the split must keep the order valid
    nodes = [
        helper.make_node(FUSED_OP, names, outputs, domain="com.microsoft", epsilon=1e-5, name="sln0"),
        helper.make_node(FUSED_OP, ["y", "skip", "gamma"], ["z"], domain="com.microsoft", epsilon=1e-5, name="sln1"),
    ]
    graph_outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3, HIDDEN])]
    if sum_output:
        graph_outputs.append(helper.make_tensor_value_info("total", TensorProto.FLOAT, [2, 3, HIDDEN]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3, HIDDEN]) for n in ("x", "skip")],
        graph_outputs,
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)])


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("beta,bias,sum_output", [(True, True, True), (True, False, False), (False, True, False), (False, False, True)])
def test_split_computes_what_the_fused_operator_does(beta, bias, sum_output):
    rng = np.random.default_rng(1)
    feeds = {n: rng.normal(size=(2, 3, HIDDEN)).astype(np.float32) for n in ("x", "skip")}
    fused = _fused_graph(beta=beta, bias=bias, sum_output=sum_output)
    expected = _run(fused, feeds)
    split = onnx.ModelProto()
    split.CopyFrom(fused)
    assert split_skip_layer_norms(split) == 2
    onnx.checker.check_model(split)
    ops = [n.op_type for n in split.graph.node]
    assert FUSED_OP not in ops and ops.count("LayerNormalization") == 2
    for got, want in zip(_run(split, feeds), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_graphs_it_cannot_split_are_left_alone():
    old = _fused_graph(beta=True, bias=True, sum_output=False, opset=16)  # no LayerNormalization in opset 16
    assert split_skip_layer_norms(old) == 0 and [n.op_type for n in old.graph.node] == [FUSED_OP, FUSED_OP]
    reads_mean = _fused_graph(beta=True, bias=False, sum_output=False)
    reads_mean.graph.node[0].output[:] = ["y", "mean"]
    reads_mean.graph.output.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, None))
    assert split_skip_layer_norms(reads_mean) == 1  # only the second node: the first one's mean is read
    assert [n.op_type for n in reads_mean.graph.node][0] == FUSED_OP


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layernorm")
    encoder = make_tiny_encoder(root / "encoder")
    model = TokenClassifier.from_encoder(encoder, LabelSchema(("Gene", "Disease"), "bio"), max_length=16)
    source = model.save_pretrained(root / "torch")
    return {"torch": source, "fp32": export_onnx(source, root / "fp32", quantize="none"), "root": root}


def test_exports_keep_add_and_layer_norm_apart(exports):
    ops = {n.op_type for n in onnx.load(str(exports["fp32"] / "model.onnx")).graph.node}
    assert FUSED_OP not in ops and "LayerNormalization" in ops and "Attention" in ops  # the other fusions stay
    assert FUSED_OP not in json.loads((exports["fp32"] / "biotag.json").read_text())["onnx"]["fusions"]


def _fused_copy(exports, name: str) -> tuple[Path, int]:
    """A copy of the fp32 export as exports were made before: skip layer norms fused and
    listed in biotag.json."""
    from onnxruntime.transformers import optimizer

    old = exports["root"] / name
    shutil.copytree(exports["fp32"], old)
    fused = optimizer.optimize_model(str(old / "model.onnx"), model_type="bert", num_heads=2, hidden_size=32, opt_level=0)
    count = fused.get_fused_operator_statistics()[FUSED_OP]
    assert count > 0
    fused.save_model_to_file(str(old / "model.onnx"))
    meta = json.loads((old / "biotag.json").read_text())
    meta["onnx"]["fusions"][FUSED_OP] = count
    (old / "biotag.json").write_text(json.dumps(meta))
    return old, count


def test_engine_splits_a_graph_exported_with_the_fusion(exports, monkeypatch):
    """An export made before (its record lists SkipLayerNormalization) loads split and
    predicts what the split export predicts."""
    old, count = _fused_copy(exports, "old")
    expected = OnnxTokenClassifier.from_pretrained(exports["fp32"], threads=1).predict_words(WORDS)
    splits = []
    monkeypatch.setattr(engine, "split_skip_layer_norms", lambda graph: splits.append(split_skip_layer_norms(graph)) or splits[-1])
    got = OnnxTokenClassifier.from_pretrained(old, threads=1).predict_words(WORDS)
    assert splits == [count]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_split_export_rewrites_an_old_directory_once(exports):
    """split_export turns an old export into one that loads without the run-time split and
    predicts the same."""
    from biotag.runtime.layernorm import split_export

    old, count = _fused_copy(exports, "old-rewritten")
    assert split_export(old) == count
    assert FUSED_OP not in {n.op_type for n in onnx.load(str(old / "model.onnx")).graph.node}
    record = json.loads((old / "biotag.json").read_text())["onnx"]
    assert FUSED_OP not in record["fusions"] and record["skip_layer_norms_split"] == count
    assert split_export(old) == 0  # nothing left to do
    expected = OnnxTokenClassifier.from_pretrained(exports["fp32"], threads=1).predict_words(WORDS)
    for a, b in zip(OnnxTokenClassifier.from_pretrained(old, threads=1).predict_words(WORDS), expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
