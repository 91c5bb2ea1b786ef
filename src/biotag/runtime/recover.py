"""Rebuild a PyTorch model directory from a biotag ONNX export (float32 or dynamic int8).

Why: a model sometimes survives only as its export — the bundled default's PyTorch form was
trained on a lent GPU machine and lost with ``runs/``, and retraining it costs three CPU
hours. Distilling a student cut from it (``student_layers`` / ``student_width``) or
fine-tuning it further needs PyTorch weights. int8 weights come back dequantised,
``(q - zero_point) * scale``, within half a quantisation step of the weights that were
exported, so the rebuilt model predicts what the export predicts up to that error
(:func:`recover_torch` reports the largest logit difference on a sample).

The graph is read, not guessed: weights are found through the nodes that use them
(``MatMul``/``MatMulInteger`` named after the PyTorch module that was traced, the fused
``Attention``/``QAttention`` nodes whose packed Q, K, V matrices are split again, and the
embedding / layer-norm / bias initialisers, which keep their PyTorch names); BERT-style
(MiniLM) and MPNet exports are covered by the tests. Every weight of the Hugging Face network
must be found, with its shape, or the rebuild stops with the list of what is missing. Models
with word features (their fusion layer lives inside the graph) are refused.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np

from biotag.errors import InputError
from biotag.models.metadata import BIOTAG_FILE, read_metadata

log = logging.getLogger(__name__)

QUANTIZED = "_quantized"
MATMUL_OPS = {"MatMul", "MatMulInteger"}
ATTENTION_OPS = {"Attention", "QAttention"}
# the traced module path in ONNX node names: "/bert/encoder/layer.0/attention/output/dense/MatMul_quant"
_MODULE_OF_MATMUL = re.compile(r"^/?(?P<module>.+)/MatMul[^/]*$")
_SELF_ATTENTION = re.compile(r"^/?(?P<module>.+/attention/self)/")


class _Initializers:
    """The graph's constants as float32 arrays, int8/uint8 ones dequantised."""

    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.raw = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def base_name(self, name: str) -> str:
        return name[: -len(QUANTIZED)] if name.endswith(QUANTIZED) else name

    def get(self, name: str) -> np.ndarray | None:
        base = self.base_name(name)
        quantized = self.raw.get(base + QUANTIZED)
        if quantized is not None:
            scale = self.raw[base + "_scale"].astype(np.float32)
            zero = self.raw.get(base + "_zero_point", np.zeros((), quantized.dtype)).astype(np.float32)
            return (quantized.astype(np.float32) - zero) * scale  # per-tensor or per-column (last axis)
        value = self.raw.get(base)
        return None if value is None or value.dtype.kind != "f" else value.astype(np.float32)

    def names(self) -> set[str]:
        return {self.base_name(n) for n in self.raw}


def recovered_state(graph, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """PyTorch parameter name -> float32 array for the parameters ``expected`` (name ->
    shape) found in an ONNX ``graph`` exported by biotag; raises :class:`InputError` naming
    what is missing or misshapen."""
    constants = _Initializers(graph)
    state: dict[str, np.ndarray] = {}
    for name in constants.names() & set(expected):  # embeddings, layer norms, biases keep their names
        state[name] = constants.get(name)
    for node in graph.node:
        if node.op_type in MATMUL_OPS and len(node.input) > 1:
            match = _MODULE_OF_MATMUL.match(node.name)
            weight = constants.get(node.input[1])
            if match and weight is not None and weight.ndim == 2:
                state[match["module"].replace("/", ".") + ".weight"] = weight.T
        elif node.op_type in ATTENTION_OPS:
            match = _SELF_ATTENTION.match(node.output[0])
            weight, bias = constants.get(node.input[1]), constants.get(node.input[2])
            if match is None or weight is None or bias is None:
                continue
            prefix = match["module"].replace("/", ".")
            for part, w, b in zip(("query", "key", "value"), np.split(weight, 3, axis=1), np.split(bias, 3)):
                state[f"{prefix}.{part}.weight"], state[f"{prefix}.{part}.bias"] = w.T, b
    missing = sorted(set(expected) - set(state))
    if missing:
        raise InputError(
            f"cannot find {len(missing)} of the network's {len(expected)} weights in the graph "
            f"(first: {', '.join(missing[:5])}); the export does not name them as biotag exports do",
            field="model",
        )
    wrong = [f"{k} {state[k].shape} != {expected[k]}" for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if wrong:
        raise InputError(f"weights of the wrong shape: {'; '.join(wrong[:5])}", field="model")
    return {k: np.ascontiguousarray(state[k]) for k in expected}


def recover_torch(onnx_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> tuple[Path, float]:
    """Write a PyTorch biotag model directory rebuilt from the ONNX export in ``onnx_dir``;
    returns ``(out_dir, largest |logit difference|)`` between the rebuilt model and the export
    on :data:`biotag.runtime.export.SAMPLE_WORDS`."""
    import onnx
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from biotag.models.token_classifier import TokenClassifier, _quiet_transformers
    from biotag.runtime.engine import OnnxTokenClassifier
    from biotag.runtime.export import SAMPLE_WORDS

    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    meta, schema = read_metadata(onnx_dir)
    record = meta.get("onnx") or {}
    if not record.get("file"):
        raise InputError("not an ONNX export (biotag.json has no onnx entry)", path=str(onnx_dir), field="model")
    if meta.get("features"):
        raise InputError("models with word features cannot be rebuilt from their export", path=str(onnx_dir), field="features")
    if out_dir.exists() and not (overwrite and (out_dir / BIOTAG_FILE).is_file()):
        raise InputError("exists; choose a new directory (or --overwrite a biotag model directory)", path=str(out_dir), field="output")

    config = AutoConfig.from_pretrained(onnx_dir)
    with _quiet_transformers():
        network = AutoModelForTokenClassification.from_config(config)
    expected = {k: tuple(v.shape) for k, v in network.named_parameters()}
    graph = onnx.load(str(onnx_dir / record["file"])).graph
    try:
        state = recovered_state(graph, expected)
    except InputError as error:
        error.path = error.path or str(onnx_dir / record["file"])
        raise
    network.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)

    model = TokenClassifier.from_metadata(network, AutoTokenizer.from_pretrained(onnx_dir), meta, schema)
    if model.crf is not None:
        from biotag.models.decoding import CrfParams

        model.crf.load_params(CrfParams.from_dict(meta["crf"]))
    rebuilt = model.predict_words(SAMPLE_WORDS)
    exported = OnnxTokenClassifier.from_pretrained(onnx_dir, threads=1).predict_words(SAMPLE_WORDS)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(rebuilt, exported))
    model.card["rebuilt_from_onnx"] = {
        "directory": str(onnx_dir), "file": record["file"], "quantize": record.get("quantize"),
        "max_abs_diff_vs_onnx": round(difference, 6),
    }  # fmt: skip
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(out_dir)
    log.info("rebuilt %s from %s (largest logit difference %.4f)", out_dir, onnx_dir, difference)
    return out_dir, difference
