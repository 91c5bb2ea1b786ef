"""What a model's output looks like on raw text, per type: how many mentions, how many are cut
at an inner hyphen ("IL" and "-2" for "IL-2"), and how many of one type sit on or overlap a
mention of another (a bundled model's ``protein`` against its ``gene``; docs/results.md).

    python scripts/type_profile.py [--model DIR ...] [--data FILE.jsonl] [--limit 300] [--overlap protein:gene]
"""

from __future__ import annotations

import argparse
import collections

import biotag
from biotag.pretrain.data import read_text_file  # the reader of biotag bench's --data


def cut_at_hyphen(text: str, start: int, end: int) -> bool:
    """Whether a mention starts or ends at a hyphen inside a word (or starts with one)."""
    before = start > 1 and text[start - 1] == "-" and text[start - 2].isalnum()
    after = end + 1 < len(text) and text[end] == "-" and text[end + 1].isalnum()
    return before or after or text[start] == "-"


def profile(docs, pair: tuple[str, str]) -> tuple[collections.Counter, collections.Counter, list[int]]:
    """Per type: mentions and mentions cut at a hyphen; and for ``pair`` (a, b): the a mentions,
    those on the span of a b mention and those overlapping one."""
    counts, cut = collections.Counter(), collections.Counter()
    overlap = [0, 0, 0]
    for doc in docs:
        spans = collections.defaultdict(list)
        for e in doc.entities:
            span = (e.spans[0].start, e.spans[-1].end)
            spans[e.type].append(span)
            counts[e.type] += 1
            cut[e.type] += cut_at_hyphen(doc.text, *span)
        for start, end in spans[pair[0]]:
            overlap[0] += 1
            overlap[1] += (start, end) in spans[pair[1]]
            overlap[2] += any(a < end and start < b for a, b in spans[pair[1]])
    return counts, cut, overlap


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="model directory; repeat it (default: the bundled model)")
    parser.add_argument("--data", default="../shared/data/text/bern2-benchmark-1k.jsonl")
    parser.add_argument("--limit", type=int, default=300, help="the first N documents (as biotag bench reads them)")
    parser.add_argument("--overlap", default="protein:gene", help="A:B, how A mentions sit on B mentions")
    args = parser.parse_args(argv)
    pair = tuple(args.overlap.split(":", 1))
    texts = [doc.text for _, doc in zip(range(args.limit), read_text_file(args.data))]
    for model in args.model or [None]:
        counts, cut, (n, same, overlapping) = profile(biotag.load(model, steps="sentences,ner")(texts), pair)
        print(f"{model or 'bundled'}: {len(texts)} documents")
        print("| type | mentions | cut at an inner hyphen |")
        print("|---|---:|---:|")
        for t in sorted(counts):
            print(f"| {t} | {counts[t]:,} | {cut[t]:,} ({100 * cut[t] / counts[t]:.1f} %) |")
        if n:
            print(f"{pair[0]}: {n:,} mentions, {same:,} ({100 * same / n:.1f} %) on a {pair[1]} span, {overlapping:,} ({100 * overlapping / n:.1f} %) overlapping one")


if __name__ == "__main__":
    main()
