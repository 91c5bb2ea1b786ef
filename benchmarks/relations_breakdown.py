"""Where relation models differ: BLURB micro-F1 of each model per bucket of sentence length,
of distance between the two arguments (words) and of source (the example key's first part,
when a corpus has a few, as DDI's DrugBank and MedLine), and how often each model agrees
with the first (the teacher) pair by pair. A student can match its teacher on a devel set of
short sentences and still lose on a test set of long ones; this shows it.

    python benchmarks/relations_breakdown.py runs/rel/ddi-mask-e3/model runs/rel/ddi-student-int8 \
        -d ddi --splits devel test --threads 2 -o runs/rel/breakdown-ddi.md

Each model's logits are cached next to the output (``<output>.<hash of the model path>.<split>.npy``),
so a rerun with other buckets costs nothing; ``--fresh`` recomputes them.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from biotag.relations.datasets import read_examples
from biotag.relations.metrics import score_labels
from biotag.relations.onnx import load_relation_model


def words_between(example) -> int:
    first, second = sorted((example.head, example.tail), key=lambda m: m.start)
    return len(example.text[first.end : second.start].split())


def numeric_buckets(values: np.ndarray, edges: list[int]) -> list[tuple[str, np.ndarray]]:
    bounds = [0, *edges, None]
    return [
        (f"{low}–{high - 1}" if high is not None else f"≥ {low}", (values >= low) & (values < (high if high is not None else np.inf)))
        for low, high in zip(bounds[:-1], bounds[1:])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="relation model directories; the first is the reference")
    parser.add_argument("-d", "--dataset", required=True)
    parser.add_argument("--splits", nargs="+", default=["devel", "test"])
    parser.add_argument("--length-edges", type=int, nargs="+", default=[30, 60], help="sentence-length bucket edges (words)")
    parser.add_argument("--gap-edges", type=int, nargs="+", default=[5, 10, 20], help="argument-distance bucket edges (words)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("-o", "--output", type=Path, required=True, help="markdown report")
    args = parser.parse_args()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{args.dataset}; models: " + ", ".join(f"[{i}] {m}" for i, m in enumerate(args.models)), ""]
    for split in args.splits:
        task, examples = read_examples(args.dataset, split)
        labels = list(task.all_labels)
        gold = [e.label or task.negative for e in examples]
        predicted = []
        for path in args.models:
            digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
            cache = args.output.with_name(f"{args.output.name}.{digest}.{split}.npy")
            if cache.is_file() and not args.fresh:
                logits = np.load(cache)
            else:
                logits = load_relation_model(path, threads=args.threads).predict_logits(examples)
                np.save(cache, logits)
            predicted.append([labels[i] for i in logits.argmax(-1)])
        lengths = np.array([len(e.text.split()) for e in examples])
        gaps = np.array([words_between(e) for e in examples])
        sources = np.array([e.key.split(".")[0] for e in examples])  # DDI-DrugBank.d1.s0.p0 -> DDI-DrugBank
        groupings = {
            "sentence words": numeric_buckets(lengths, args.length_edges),
            "words between arguments": numeric_buckets(gaps, args.gap_edges),
        }
        if len(set(sources)) <= 10:  # a corpus made of a few sources (DDI); ChemProt keys are PMIDs
            groupings["source"] = [(name, sources == name) for name in sorted(set(sources))]
        header = " | ".join(f"[{i}] F1" for i in range(len(args.models)))
        agree = " | ".join(f"[{i}] agrees with [0]" for i in range(1, len(args.models)))
        for name, buckets in groupings.items():
            lines += [f"### {split}: by {name}", "", f"| {name} | pairs | positive | {header} | {agree} |",
                      "|---|---:|---:|" + "---:|" * (2 * len(args.models) - 1)]
            for label, mask in buckets:
                rows = np.flatnonzero(mask)
                if not len(rows):
                    continue
                pick = lambda seq: [seq[i] for i in rows]  # noqa: E731
                f1 = [100 * score_labels(pick(gold), pick(p), task.labels, task.negative).micro.f1 for p in predicted]
                same = [100 * np.mean([predicted[0][i] == p[i] for i in rows]) for p in predicted[1:]]
                positive = sum(gold[i] != task.negative for i in rows)
                lines.append(f"| {label} | {len(rows)} | {positive} | " + " | ".join(f"{v:.2f}" for v in f1)
                             + " | " + " | ".join(f"{v:.1f} %" for v in same) + " |")
            lines.append("")
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
