"""Relation models side by side in one run: PyTorch fp32 and its int8 ONNX export (and any
other relation model directories), each scored on the same dataset split with BLURB's
micro-F1 over the positive classes and timed in pairs/s, with the same thread count.

    python benchmarks/relations_speed.py runs/rel/chemprot-typed/model -d chemprot --split test \
        --threads 2 -o runs/rel/bench-chemprot

The first model directory must hold PyTorch weights; its int8 export is made under
``OUTPUT/int8`` (``biotag export --quantize int8``) unless ``--onnx DIR`` names one.
Writes ``OUTPUT/results.json`` and ``OUTPUT/results.md`` (the summary table and a
per-class table for each model) and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from biotag.relations.evaluate import evaluate_pairs
from biotag.relations.onnx import export_relation_model, load_relation_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="relation model directory with PyTorch weights")
    parser.add_argument("more", type=Path, nargs="*", help="further relation model directories to compare")
    parser.add_argument("-d", "--dataset", required=True, help="chemprot, ddi, or a corpus folder with relations")
    parser.add_argument("--split", default="test")
    parser.add_argument("--onnx", type=Path, help="an existing ONNX export of MODEL (default: export int8 now)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, help="a seeded random subset of this many pairs")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    args.output.mkdir(parents=True, exist_ok=True)
    onnx_dir = args.onnx or export_relation_model(args.model, args.output / "int8", quantize="int8", overwrite=True)
    runs = [(args.model, "torch"), (onnx_dir, "onnx"), *[(m, "auto") for m in args.more]]
    results = []
    for path, backend in runs:
        model = load_relation_model(path, backend=backend, threads=args.threads)
        kind = "onnx" if hasattr(model, "session") else "torch"
        result = evaluate_pairs(model, args.dataset, args.split, limit=args.limit, batch_size=args.batch_size)
        report = result.pop("report")
        results.append({**result, "model": str(path), "backend": kind, "scores": report.to_dict(), "table": report.table()})
        print(f"{path} ({kind}): micro-F1 {100 * report.micro.f1:.2f}, {result['pairs_per_second']} pairs/s", flush=True)

    base = results[0]["pairs_per_second"] or 0
    lines = [
        f"{args.dataset} {args.split}, {results[0]['pairs']} pairs, {args.threads} threads, batch {args.batch_size}, "
        f"{platform.machine()} {platform.processor() or ''}".rstrip(),
        "",
        "| model | backend | P | R | micro-F1 | pairs/s | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["scores"]["micro"]
        speedup = f"{r['pairs_per_second'] / base:.2f}x" if base and r["pairs_per_second"] else "-"
        lines.append(
            f"| {r['model']} | {r['backend']} | {100 * m['precision']:.2f} | {100 * m['recall']:.2f} | {100 * m['f1']:.2f} "
            f"| {r['pairs_per_second']} | {speedup} |"
        )
    for r in results:
        lines += ["", f"### {r['model']} ({r['backend']})", "", r.pop("table")]
    markdown = "\n".join(lines) + "\n"
    (args.output / "results.md").write_text(markdown, encoding="utf-8")
    (args.output / "results.json").write_text(json.dumps({"threads": args.threads, "results": results}, indent=2) + "\n", encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
