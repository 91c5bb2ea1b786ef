"""Sample the bundled (or any) model's predictions of entity types that a corpus does NOT
annotate, with context, for a manual audit (docs/results.md, "Types a corpus does not
annotate").

    python scripts/audit_unannotated_types.py --corpus ncbi-disease-doc --split test --per-type 15
"""

from __future__ import annotations

import argparse
import collections
import random

import biotag
from biotag.corpora import read_corpus, resolve
from biotag.entity_types import default_type_map
from biotag.evaluation import strip_entities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--corpus", default="ncbi-disease-doc")
    parser.add_argument("--split", default="test")
    parser.add_argument("--per-type", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    nlp = biotag.load(args.model)
    tmap = default_type_map()
    annotated = {tmap.unify(t) or t for t in resolve(args.corpus).types}
    docs = list(read_corpus(args.corpus, args.split))
    found: dict[str, list] = collections.defaultdict(list)
    for doc in docs:
        out = nlp(strip_entities(doc))
        for e in out.entities:
            if e.type in annotated:
                continue
            start, end = e.spans[0].start, e.spans[-1].end
            context = f"{out.text[max(0, start - 50):start]}[[{out.text[start:end]}]]{out.text[end:end + 40]}"
            found[e.type].append((doc.id, e.text, round(e.score, 2), context.replace("\n", " ")))
    rng = random.Random(args.seed)
    for entity_type, items in sorted(found.items()):
        print(f"## {entity_type}: {len(items)} predictions in {len(docs)} {args.corpus} {args.split} documents")
        for item in rng.sample(items, min(args.per_type, len(items))):
            print("  ", item)


if __name__ == "__main__":
    main()
