"""Is model B's F1 on a corpus really different from model A's, or is the corpus too small to
tell? A paired bootstrap over documents: both models predict once; each resample draws the
corpus' documents with replacement and scores both models on the same draw, strictly and on the
types the corpus annotates, as ``biotag evaluate`` does.

    python scripts/paired_bootstrap.py --model A --model B --corpus s800 --split devel [--samples 2000] [--seed 0]
    python scripts/paired_bootstrap.py --model A --model B --all-types --split devel

Prints, per type (and pooled over the types, where there are several): A's and B's F1, B − A,
the 95 % interval of B − A over the resamples and how often B came out ahead. An interval that
contains 0 means this corpus cannot tell the two apart.
``--all-types`` scores the seven columns of the issue-4 table (scripts/all_types_table.py), each
corpus resampled on its own, and their macro: the measure the bundled model's adoption rules use.
"""

from __future__ import annotations

import argparse

import numpy as np

MICRO = "micro"  # the column pooling a corpus' types


def document_counts(gold_docs, pred_docs, types: list[str], *, scoring_types, type_map) -> np.ndarray:
    """``[n_docs, n_types, 3]`` true positives, false positives and false negatives of each
    document, by the scorer of ``biotag evaluate``."""
    from biotag.entity_types import TypeMap
    from biotag.metrics import score_documents

    type_map = None if type_map is None else TypeMap.coerce(type_map)
    counts = np.zeros((len(gold_docs), len(types), 3), dtype=np.int64)
    for i, (gold, pred) in enumerate(zip(gold_docs, pred_docs, strict=True)):
        report = score_documents([gold], [pred], types=scoring_types, type_map=type_map)
        for j, t in enumerate(types):
            if t in report.per_type:
                s = report.per_type[t]
                counts[i, j] = (s.tp, s.fp, s.fn)
    return counts


def f1(counts: np.ndarray) -> np.ndarray:
    """F1 from ``[..., 3]`` summed counts (0 where there is nothing to score)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape, dtype=float), where=denominator > 0)


def paired_bootstrap(counts_a: np.ndarray, counts_b: np.ndarray, samples: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`summarise` per type (axis 1 of the ``[n_docs, n_types, 3]`` counts), each resample
    drawing the same documents for both models, plus the ``resampled`` differences
    ``[samples, n_types]``."""
    if counts_a.shape != counts_b.shape:
        raise ValueError(f"the two models were scored on different documents or types: {counts_a.shape} and {counts_b.shape}")
    rng = np.random.default_rng(seed)
    n = counts_a.shape[0]
    draws = rng.integers(0, n, size=(samples, n))
    diff = f1(counts_b[draws].sum(axis=1)) - f1(counts_a[draws].sum(axis=1))  # [samples, n_types]
    return {**summarise(f1(counts_a.sum(axis=0)), f1(counts_b.sum(axis=0)), diff), "resampled": diff}


def summarise(observed_a, observed_b, resampled: np.ndarray) -> dict:
    """Observed F1 of A and B, their difference, the 2.5th and 97.5th percentiles of the
    resampled differences (axis 0) and the share of resamples where B is ahead (ties count half)."""
    return {
        "f1_a": observed_a,
        "f1_b": observed_b,
        "diff": observed_b - observed_a,
        "low": np.percentile(resampled, 2.5, axis=0),
        "high": np.percentile(resampled, 97.5, axis=0),
        "b_ahead": (resampled > 0).mean(axis=0) + 0.5 * (resampled == 0).mean(axis=0),
    }


def predicted_counts(predictors: list, corpus: str, split: str) -> tuple[list[str], list[np.ndarray]]:
    """Each predictor's :func:`document_counts` on a corpus split, with the scored types (plus a
    pooled ``micro`` column where there are several)."""
    from biotag.corpora import read_corpus
    from biotag.evaluation import corpus_scoring, strip_entities
    from biotag.ner import NerTagger

    gold = list(read_corpus(corpus, split))
    counts, types = [], None
    for predictor in predictors:
        scoring_types, type_map = corpus_scoring(corpus, predictor.schema.types)
        predicted = list(NerTagger(predictor)(strip_entities(d) for d in gold))
        types = types or sorted(scoring_types or {e.type for d in gold for e in d.entities})
        counts.append(document_counts(gold, predicted, types, scoring_types=scoring_types, type_map=type_map))
    if len(types) > 1:  # JNLPBA's column (and BioBERT's) is the micro F1 over its types
        types = [*types, MICRO]
        counts = [np.concatenate([c, c.sum(axis=1, keepdims=True)], axis=1) for c in counts]
    return types, counts


def _line(name: str, r: dict[str, float]) -> str:
    pct = {k: 100 * v for k, v in r.items()}
    return f"| {name} | {pct['f1_a']:.2f} | {pct['f1_b']:.2f} | {pct['diff']:+.2f} | [{pct['low']:+.2f}, {pct['high']:+.2f}] | {pct['b_ahead']:.0f} % |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="model directory, twice: A then B")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--corpus", help="one corpus: a row per type it annotates")
    target.add_argument("--all-types", action="store_true", help="the seven columns of scripts/all_types_table.py and their macro")
    parser.add_argument("--split", default="devel")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if len(args.model) != 2:
        parser.error("give --model exactly twice (A, then B)")
    from biotag.api import load_predictor

    predictors = [load_predictor([model]) for model in args.model]
    print(f"A = {args.model[0]}, B = {args.model[1]}; {args.split}, {args.samples} paired resamples per corpus")
    print("| column | A F1 | B F1 | B − A | 95 % interval | B ahead |")
    print("|---|---:|---:|---:|---:|---:|")
    if args.corpus:
        types, counts = predicted_counts(predictors, args.corpus, args.split)
        result = paired_bootstrap(counts[0], counts[1], args.samples, args.seed)
        for j, t in enumerate(types):
            print(_line(t, {k: v[j] for k, v in result.items() if k != "resampled"}))
        return

    from all_types_table import COLUMNS

    rng = np.random.default_rng(args.seed)
    by_corpus = {}
    for corpus in dict.fromkeys(c for _, c, _ in COLUMNS):  # each corpus drawn independently, its columns together
        types, counts = predicted_counts(predictors, corpus, args.split)
        by_corpus[corpus] = (types, paired_bootstrap(counts[0], counts[1], args.samples, int(rng.integers(2**31))))
    columns = []
    for name, corpus, entity_type in COLUMNS:
        types, result = by_corpus[corpus]
        j = types.index(entity_type or (MICRO if MICRO in types else types[0]))
        columns.append({k: v[..., j] for k, v in result.items()})
        print(_line(name, {k: v for k, v in columns[-1].items() if k != "resampled"}))
    mean = {k: float(np.mean([c[k] for c in columns])) for k in ("f1_a", "f1_b")}
    macro = summarise(mean["f1_a"], mean["f1_b"], np.mean([c["resampled"] for c in columns], axis=0))
    print(_line("**macro**", macro))


if __name__ == "__main__":
    main()
