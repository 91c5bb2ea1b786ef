"""Keep residual additions and layer norms as two plain operators on CPU.

ONNX Runtime fuses ``Add`` + ``LayerNormalization`` into its ``SkipLayerNormalization``
contrib operator, both offline (``onnxruntime.transformers.optimizer``) and when a session
loads at ``ORT_ENABLE_ALL``. On this project's CPU the fused CPU kernel (onnxruntime 1.32)
is about five times slower than the two operators it replaces: 0.71 against 0.14 ms for
1,100 tokens x 256 at 2 threads, and 28 % of a 3-layer student's ONNX time
(docs/benchmarks.md, "Layer-norm fusion"). So exports no longer fuse it, sessions
disable ORT's fusion, and graphs exported before have their fused nodes split back
into the two operators when they load (:func:`split_skip_layer_norms`), or once on disk
(:func:`split_export`, done for the bundled model).
"""

from __future__ import annotations

from typing import Any

FUSED_OP = "SkipLayerNormalization"
# ORT's load-time graph transformer that would fuse the two operators again
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
MIN_OPSET = 17  # LayerNormalization entered the ONNX domain in opset 17


def has_fused_layer_norms(onnx_record: dict[str, Any] | None) -> bool:
    """Whether an export record (``biotag.json``'s ``onnx`` entry) lists fused skip layer norms."""
    return bool(((onnx_record or {}).get("fusions") or {}).get(FUSED_OP))


def split_skip_layer_norms(model) -> int:
    """Replace each ``SkipLayerNormalization`` of an ``onnx.ModelProto`` by ``Add`` (input +
    skip [+ bias]) and ``LayerNormalization`` over the last axis, in place; returns how many
    were split. Nodes whose mean / inverse-std outputs are read, and graphs below opset 17,
    are left as they are."""
    from onnx import helper

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        return 0
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    nodes, split = [], 0
    for index, node in enumerate(model.graph.node):
        outputs = list(node.output) + [""] * (4 - len(node.output))
        if node.op_type != FUSED_OP or node.domain != "com.microsoft" or read & set(filter(None, outputs[1:3])):
            nodes.append(node)
            continue
        data, skip, gamma, beta, bias = (list(node.input) + [""] * 5)[:5]
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        stem = node.name or f"{FUSED_OP}_{index}"
        total = outputs[3] or f"{stem}/sum"
        if bias:
            nodes.append(helper.make_node("Add", [data, skip], [f"{stem}/skip_sum"], name=f"{stem}/add_skip"))
            nodes.append(helper.make_node("Add", [f"{stem}/skip_sum", bias], [total], name=f"{stem}/add_bias"))
        else:
            nodes.append(helper.make_node("Add", [data, skip], [total], name=f"{stem}/add_skip"))
        norm_inputs = [total, gamma] + ([beta] if beta else [])
        nodes.append(
            helper.make_node("LayerNormalization", norm_inputs, [outputs[0]], name=f"{stem}/norm", axis=-1, epsilon=epsilon)
        )
        split += 1
    if split:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return split


def split_export(directory) -> int:
    """Rewrite an exported model directory made before this module (its ``biotag.json``
    lists fused skip layer norms) so that it loads without the split at run time, which
    needs the ``onnx`` package (about 0.6 s to import). Returns how many nodes were split;
    0 leaves the directory as it was.

        python -c "from biotag.runtime.layernorm import split_export; print(split_export('MODEL_DIR'))"
    """
    import json
    import os
    from pathlib import Path

    import onnx

    from biotag.errors import InputError
    from biotag.models.metadata import BIOTAG_FILE

    directory = Path(directory)
    meta_path = directory / BIOTAG_FILE
    if not meta_path.is_file():
        raise InputError("not a biotag model directory", path=str(directory), field="model")
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    record = metadata.get("onnx")
    if not has_fused_layer_norms(record):
        return 0
    model_file = directory / record["file"]
    graph = onnx.load(str(model_file))
    split = split_skip_layer_norms(graph)
    if not split:
        return 0
    staged = model_file.with_suffix(".split.tmp")
    onnx.save(graph, str(staged))
    os.replace(staged, model_file)
    record["fusions"] = {op: n for op, n in record["fusions"].items() if op != FUSED_OP}
    record["skip_layer_norms_split"] = split
    meta_path.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return split

