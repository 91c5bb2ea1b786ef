"""Two forms of one teacher (a PyTorch model directory and its ONNX export) side by side: how
fast each labels sentences for distillation, and how far apart their word distributions are.

    python scripts/teacher_labelling_speed.py runs/knowledge/bc5cdr-mpnet-features-crf/model \\
        runs/teachers-onnx/bc5cdr-mpnet-features-crf [--corpus ncbi-disease --sentences 400 --rounds 2]

Timings alternate between the two (``--rounds`` each) so that load on a shared machine hits both
alike; the difference is the largest absolute difference of a probability over all words and labels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from biotag.distill.teachers import load_teacher
from biotag.training.data import load_corpus


def sentence_words(corpus: str, count: int) -> list[list[str]]:
    """The words of the first ``count`` training sentences of a sentence-level corpus."""
    docs = load_corpus(corpus, "train", "devel", unify_types=False).train
    return [doc.text.split() for doc in docs[:count]]


def compare(reference: str, other: str, words: list[list[str]], rounds: int = 2) -> tuple[dict[str, list[float]], float]:
    """Seconds per round of each teacher, and the largest probability difference between them."""
    teachers = {path: load_teacher(path) for path in (reference, other)}
    seconds: dict[str, list[float]] = {path: [] for path in teachers}
    outputs: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):
        for path, teacher in teachers.items():
            start = time.perf_counter()
            outputs[path] = teacher.word_distributions(words, batch_size=32)
            seconds[path].append(time.perf_counter() - start)
    diff = max(float(np.abs(np.exp(a) - np.exp(b)).max()) for a, b in zip(outputs[reference], outputs[other]))
    return seconds, diff


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="teacher directory (e.g. the PyTorch model)")
    parser.add_argument("other", help="the same teacher in another form (e.g. its fp32 ONNX export)")
    parser.add_argument("--corpus", default="ncbi-disease", help="a sentence-level (CoNLL) corpus")
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    words = sentence_words(args.corpus, args.sentences)
    print(f"{len(words)} sentences, {sum(map(len, words)):,} words of {args.corpus} train")
    seconds, diff = compare(args.reference, args.other, words, args.rounds)
    for path, rounds in seconds.items():
        print(f"{path}: " + ", ".join(f"{s:.1f} s ({len(words) / s:.1f} sentences/s)" for s in rounds))
    print(f"largest probability difference: {diff:.2e}")


if __name__ == "__main__":
    main()
