"""Where the time of ``biotag annotate`` goes: cProfile of one model over bern2-benchmark abstracts.

    python benchmarks/profile_ner.py MODEL_DIR [--docs 300] [--steps sentences,ner] [--threads 2] [--top 25]

Prints the wall time of a timed pass (after a warm-up on 20 documents) and the functions
with the most own time over a second, profiled pass. Use it to see whether the network
(``onnxruntime...run`` / torch) or the Python around it dominates for a model size.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

import biotag
from biotag.paths import data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Model directory (PyTorch or ONNX export).")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--steps", default="sentences,ner")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data", type=Path, default=None, help="JSONL with title/abstract (default: bern2-benchmark-1k).")
    args = parser.parse_args()
    path = args.data or data_root() / "text" / "bern2-benchmark-1k.jsonl"
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(args.docs), fh)]
    texts = [" ".join(filter(None, (r.get("title"), r.get("abstract"), r.get("text")))) for r in rows]
    annotator = biotag.load(args.model, steps=args.steps, threads=args.threads)
    annotator(texts[:20])
    start = time.perf_counter()
    annotator(texts)
    print(f"wall {time.perf_counter() - start:.2f} s for {len(texts)} documents")
    profile = cProfile.Profile()
    profile.enable()
    annotator(texts)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
