"""What a linking re-ranker could gain at best: of the gold mentions whose linking asks the
re-ranker (no exact or variant name matched), how many have the gold concept at rank 1, 5,
10 and 20 of the string matcher (with BioSyn's training synonyms, as the tuning runs). A
re-ranker of ``pool`` candidates can at most move the rank-``pool`` hits to the top.
No model is needed.

usage: python benchmarks/rerank_ceiling.py [SPLIT] [BENCHMARK ...]
"""

import json
import sys

from biotag.linking.evaluate import _hit, get_benchmark, load_benchmark, with_training_synonyms
from biotag.linking.linker import Linker, abbreviation_long_forms
from biotag.linking.rerank_train import DEFAULT_BENCHMARKS, reranked_mentions

RANKS = (1, 5, 10, 20)


class KeepOrder:
    """A re-ranker that changes nothing, so the linker hands it (and keeps) 20 candidates."""

    pool = max(RANKS)

    def rerank(self, mention, entity_type, candidates):
        return candidates


split = sys.argv[1] if len(sys.argv) > 1 else "devel"
for name in sys.argv[2:] or DEFAULT_BENCHMARKS:
    bench = get_benchmark(name)
    linker = Linker(None, list(bench.ontologies))
    with with_training_synonyms(linker, bench, split):
        mentions, docs = load_benchmark(bench, split, linker)
        asking = reranked_mentions(linker, mentions, docs, max(RANKS))
        long_forms = {doc_id: abbreviation_long_forms(doc) for doc_id, doc in docs.items()}
        linker.reranker = KeepOrder()
        linker.clear_cache()
        parts = [linker.resolve(m.text, m.type, max(RANKS), long_form=long_forms.get(m.document, {}).get(m.text)) for m in asking]
        hits = {k: sum(_hit(p, m.ids, k) for p, m in zip(parts, asking)) for k in RANKS}
        all_hits = sum(_hit(linker.resolve(m.text, m.type, 5, long_form=long_forms.get(m.document, {}).get(m.text)), m.ids, 1) for m in mentions)
    print(json.dumps({
        "benchmark": name,
        "split": split,
        "mentions": len(mentions),
        "acc@1": round(100.0 * all_hits / len(mentions), 2),
        "asking the re-ranker": len(asking),
        "their hits at rank": hits,
        "acc@1 ceiling per pool": {k: round(100.0 * (all_hits - hits[1] + hits[k]) / len(mentions), 2) for k in RANKS},
    }))
