"""What ONNX Runtime's SkipLayerNormalization fusion costs on this CPU (biotag.runtime.layernorm).

    python benchmarks/layernorm_fusion.py runs/bench/students-bc5cdr-ensemble/exports/bc5cdr-l024-w256-from-ensemble-int8 \
        --threads 2 --docs 200 -o runs/bench/layernorm-fusion.json

1. The operator alone: ``SkipLayerNormalization`` against ``Add`` + ``LayerNormalization`` on one
   ``[1, tokens, hidden]`` input per hidden size, at 1 and 2 threads (ms per call, best of 5 x 100).
2. End to end: the same exported model directory annotating the first ``--docs``
   bern2-benchmark abstracts (sentences + NER) with two sessions in turn, best of ``--repeat``
   passes each: *fused*, ORT's default session (its load-time fusion turns every Add +
   LayerNormalization into SkipLayerNormalization), and *split*, what biotag loads. Both must
   give the same entities up to rounding: int8 graphs re-quantize each
   normalised activation, so a last-digit difference can move a value to the next int8 step.
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import islice
from pathlib import Path

import numpy as np


def _norm_graph(kind: str, tokens: int, hidden: int) -> bytes:
    from onnx import TensorProto, helper

    shape = [1, tokens, hidden]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "skip")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    weights = [
        helper.make_tensor("gamma", TensorProto.FLOAT, [hidden], np.ones(hidden, np.float32)),
        helper.make_tensor("beta", TensorProto.FLOAT, [hidden], np.zeros(hidden, np.float32)),
    ]
    if kind == "fused":
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y"], domain="com.microsoft", epsilon=1e-12)]
    else:
        nodes = [
            helper.make_node("Add", ["x", "skip"], ["sum"]),
            helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12),
        ]
    graph = helper.make_graph(nodes, kind, inputs, [output], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


def operator_times(tokens: int, hiddens: list[int]) -> list[dict]:
    import onnxruntime as ort

    rows = []
    rng = np.random.default_rng(0)
    for hidden in hiddens:
        feeds = {n: rng.normal(size=(1, tokens, hidden)).astype(np.float32) for n in ("x", "skip")}
        for threads in (1, 2):
            row = {"hidden": hidden, "tokens": tokens, "threads": threads}
            for kind in ("fused", "split"):
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # exactly these operators
                session = ort.InferenceSession(_norm_graph(kind, tokens, hidden), options, providers=["CPUExecutionProvider"])
                best = float("inf")
                for _ in range(5):
                    start = time.perf_counter()
                    for _ in range(100):
                        session.run(None, feeds)
                    best = min(best, (time.perf_counter() - start) / 100)
                row[f"{kind}_ms"] = round(best * 1e3, 4)
            row["speedup"] = round(row["fused_ms"] / row["split_ms"], 2)
            rows.append(row)
    return rows


def end_to_end(model_dir: Path, threads: int, docs: int, repeat: int) -> dict:
    import onnxruntime as ort

    import biotag
    from biotag.commands.bench import DEFAULT_DATA
    from biotag.document import Document
    from biotag.paths import data_root
    from biotag.pretrain.data import read_text_file
    from biotag.runtime.engine import session_options

    texts = [doc.text for doc in islice(read_text_file(data_root() / DEFAULT_DATA), docs)]  # as `biotag bench` reads them
    annotator = biotag.load(model_dir, steps="sentences,ner", threads=threads, backend="onnx")
    predictor = annotator.tagger.predictor
    split_session = predictor.session
    fused_session = ort.InferenceSession(str(predictor.model_file), session_options(threads), providers=["CPUExecutionProvider"])
    sessions = {"fused": fused_session, "split": split_session}
    seconds = {name: [] for name in sessions}
    entities = {}
    for name, session in sessions.items():  # warm-up
        predictor.session = session
        annotator([Document(id="w", text=t) for t in texts[:20]])
    for _ in range(repeat):
        for name, session in sessions.items():
            predictor.session = session
            start = time.perf_counter()
            out = annotator([Document(id=str(i), text=t) for i, t in enumerate(texts)])
            seconds[name].append(time.perf_counter() - start)
            entities[name] = [[(e.start, e.end, e.type) for e in d.entities] for d in out]
    best = {name: min(values) for name, values in seconds.items()}
    return {
        "model": str(model_dir),
        "docs": docs,
        "threads": threads,
        "seconds": seconds,
        "fused_s": round(best["fused"], 4),
        "split_s": round(best["split"], 4),
        "speedup": round(best["fused"] / best["split"], 3),
        "entities": sum(len(doc) for doc in entities["split"]),
        "entities_differing": sum(len(set(a) ^ set(b)) for a, b in zip(entities["fused"], entities["split"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="exported (ONNX) biotag model directories")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=1100, help="rows of the operator test (about one batch of 32 sentences)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[192, 256, 384, 768])
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    from biotag.bench.report import hardware, load_average

    result = {"hardware": hardware(), "load_before": load_average(), "operator": operator_times(args.tokens, args.hidden)}
    for row in result["operator"]:
        print(f"hidden {row['hidden']:4d} threads {row['threads']}: fused {row['fused_ms']:.3f} ms, split {row['split_ms']:.3f} ms ({row['speedup']}x)")
    result["end_to_end"] = []
    for model_dir in args.models:
        row = end_to_end(model_dir, args.threads, args.docs, args.repeat)
        result["end_to_end"].append(row)
        print(f"{model_dir}: fused {row['fused_s']:.3f} s, split {row['split_s']:.3f} s ({row['speedup']}x), {row['entities_differing']} of {row['entities']} entities differ")
    result["load_after"] = load_average()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
