"""How often a model tags gold mentions of one type as another type that their corpus does not
annotate — a cost the per-corpus scores cannot see, since each corpus is scored only on its own
types (docs/results.md, "The bundled default model": gene symbols tagged as chemicals).

    python scripts/cross_type_leak.py [--model DIR ...] [--corpus bc2gm --split devel --as chemical]
        [--count-corpus ncbi-disease-doc --count-split test]

Per model: the corpus' gold mentions predicted with exactly their span as their own type and as
``--as``, and the number of ``--as`` predictions on a second corpus (by default the 100
NCBI-disease test abstracts, where no chemical is annotated).
"""

from __future__ import annotations

import argparse
import collections

import biotag
from biotag.corpora import read_corpus
from biotag.entity_types import default_type_map
from biotag.evaluation import strip_entities


def predicted_spans(nlp, doc) -> dict[str, set[tuple[int, int]]]:
    spans: dict[str, set[tuple[int, int]]] = collections.defaultdict(set)
    for e in nlp(strip_entities(doc)).entities:
        spans[e.type].add((e.spans[0].start, e.spans[-1].end))
    return spans


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="model directory; repeat it (default: the bundled model)")
    parser.add_argument("--corpus", default="bc2gm")
    parser.add_argument("--split", default="devel")
    parser.add_argument("--as", dest="other", default="chemical", help="the type the corpus' gold mentions should not get")
    parser.add_argument("--count-corpus", default="ncbi-disease-doc")
    parser.add_argument("--count-split", default="test")
    args = parser.parse_args(argv)
    print(f"| model | {args.corpus} {args.split} gold | as own type | as {args.other} | {args.other} predictions, {args.count_corpus} {args.count_split} |")
    print("|---|---:|---:|---:|---:|")
    unify = default_type_map().unify
    for model in args.model or [None]:
        nlp = biotag.load(model, steps="sentences,ner")
        gold_total = own = other = 0
        for doc in read_corpus(args.corpus, args.split):
            pred = predicted_spans(nlp, doc)
            for e in doc.entities:
                span = (e.spans[0].start, e.spans[-1].end)
                gold_total += 1
                own += span in pred[unify(e.type) or e.type]
                other += span in pred[args.other]
        count = sum(len(predicted_spans(nlp, doc)[args.other]) for doc in read_corpus(args.count_corpus, args.count_split))
        print(f"| {model or 'bundled'} | {gold_total:,} | {own:,} | {other:,} | {count:,} |")


if __name__ == "__main__":
    main()
