"""The knowledge-lever ablation table of docs/results.md from runs under runs/knowledge/.

Each run is ``<corpus>-<l6|mpnet>-<lever>`` (configs/ner/knowledge/), the single-corpus recipe with
one lever switched on; its devel and test reports come from ``biotag evaluate ... -o
runs/knowledge/eval-<run>-<split>.json`` (runs/knowledge/job*.sh). One markdown row per
corpus/type and lever: devel and test strict F1, the change against the plain run of the
same corpus (for a domain-pretrained run: against the same recipe on the general encoder), and
the median seconds per training epoch.

    python scripts/knowledge_table.py [--runs runs/knowledge] [--write docs/results.md]

``--write`` replaces the table between the ``knowledge-table`` markers of that file. Rows of the
file whose run has no report here (lost with an earlier machine) are kept, not dropped.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from pathlib import Path

from single_corpus_table import ENCODERS, RUNS

LEVERS = {
    "plain": "plain (BIO head, BIO-constrained Viterbi decoding)",
    "greedy": "the plain weights, greedy (argmax) decoding",
    "dictionary": "+ dictionary features",
    "shape": "+ shape features",
    "features": "+ dictionary + shape features",
    "crf": "+ CRF",
    "dictionary-crf": "+ dictionary features + CRF",
    "features-crf": "+ dictionary + shape + CRF",
    "plain-seed14": "plain, seed 14",
    "crf-seed14": "+ CRF, seed 14",
    # the encoder continued on biomedical text (configs/pretrain/minilm-l6-biomedical.json)
    "dapt-plain": "domain-pretrained, plain",
    "dapt-features-crf": "domain-pretrained + dictionary + shape + CRF",
}


def f1(report: dict | None, type_name: str | None) -> float | None:
    if report is None:
        return None
    scores = report["micro"] if type_name is None else report["types"].get(type_name)
    return None if scores is None else 100 * scores["f1"]


def seconds_per_epoch(run: Path) -> float | None:
    log = run / "log.jsonl"
    if not log.exists():
        return None
    times = [e["seconds_per_epoch"] for e in map(json.loads, log.read_text().splitlines()) if e.get("event") == "eval" and "seconds_per_epoch" in e]
    return statistics.median(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/knowledge"))
    parser.add_argument("--write", type=Path, help="Markdown file whose knowledge-table section to replace.")
    args = parser.parse_args()
    start, end = "<!-- knowledge-table:start -->\n", "<!-- knowledge-table:end -->"
    before, current, after = "", "", ""
    if args.write:
        before, rest = args.write.read_text().split(start, 1)
        current, after = rest.split(end, 1)
    lines = table(args.runs, documented_scores(current.splitlines()))
    print("\n".join(lines))
    if args.write:
        merged = merge_rows(current.splitlines(), lines)
        args.write.write_text(before + start + "\n".join(merged) + "\n" + end + after)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def documented_scores(rows: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """(corpus, model) → (devel F1, test F1) of the table rows already in the docs: the
    reference of a fresh row whose reference run's reports went with an earlier machine."""
    scores = {}
    for row in rows[2:]:
        cells = _cells(row)
        try:
            scores[(cells[0], cells[1])] = (float(cells[2]), float(cells[3].strip("*")))
        except (IndexError, ValueError):
            continue
    return scores


def merge_rows(current: list[str], fresh: list[str]) -> list[str]:
    """``fresh`` (header first) with the rows of ``current`` that it lacks, keyed by corpus and
    model: a fresh row replaces its old one in place, one with a new key follows the last row
    of its corpus, and old rows without a fresh report stay where they were."""

    def key(row: str) -> tuple[str, str]:
        return tuple(_cells(row)[:2])

    header, fresh_rows = fresh[:2], {key(r): r for r in fresh[2:]}

    def update(old: str) -> str:
        """The fresh row of ``old``'s run; where the fresh row lacks a cell (its plain reference's
        report is gone too) and both agree on F1, the old cell stays."""
        row = fresh_rows.pop(key(old), None)
        if row is None:
            return old
        new_cells, old_cells = _cells(row), _cells(old)
        if new_cells[2:4] == old_cells[2:4]:
            new_cells = [o if n in ("", "—") else n for n, o in zip(new_cells, old_cells)]
        return "| " + " | ".join(new_cells) + " |"

    merged = [update(r) for r in current[2:] if r.strip()]
    for k, row in fresh_rows.items():
        same_corpus = [i for i, r in enumerate(merged) if key(r)[0] == k[0]]
        merged.insert(same_corpus[-1] + 1 if same_corpus else len(merged), row)
    return header + merged


def table(runs: Path, documented: dict[tuple[str, str], tuple[float, float]] | None = None) -> list[str]:
    """The markdown rows, header first. A reference run without reports is taken from
    ``documented`` (:func:`documented_scores`) when it has that row."""

    @functools.cache
    def report(run: str, split: str) -> dict | None:
        path = runs / f"eval-{run}-{split}.json"
        return json.loads(path.read_text()) if path.exists() else None

    lines = ["| corpus | model | devel F1 | test F1 | Δ devel | Δ test | s/epoch |", "|---|---|---:|---:|---:|---:|---:|"]
    for corpus, (_, rows) in RUNS.items():
        for label, type_name, _ in rows:
            for encoder, encoder_label in ENCODERS.items():
                for lever, description in LEVERS.items():
                    run = f"{corpus}-{encoder}-{lever}"
                    devel, test = f1(report(run, "devel"), None), f1(report(run, "test"), type_name)
                    if devel is None or test is None:
                        continue
                    reference = reference_lever(lever)
                    plain = f"{corpus}-{encoder}-{reference}"
                    ref_devel, ref_test = f1(report(plain, "devel"), None), f1(report(plain, "test"), type_name)
                    if ref_devel is None or ref_test is None:
                        ref_devel, ref_test = (documented or {}).get((label, f"{encoder_label} {LEVERS[reference]}"), (None, None))
                    change = ["", ""] if run == plain else [_delta(devel, ref_devel), _delta(test, ref_test)]
                    seconds = seconds_per_epoch(runs / run)
                    seconds = "—" if seconds is None else f"{seconds:.0f}"
                    lines.append(f"| {label} | {encoder_label} {description} | {devel:.2f} | **{test:.2f}** | {change[0]} | {change[1]} | {seconds} |")
    return lines


def reference_lever(lever: str) -> str:
    """The run a lever's row is compared with: the same recipe on the general encoder for a
    domain-pretrained one, else the plain run of the same encoder and seed."""
    if lever.startswith("dapt-"):
        return lever.removeprefix("dapt-")
    return "plain-seed14" if lever.endswith("seed14") else "plain"


def _delta(value: float, base: float | None) -> str:
    return "" if base is None else f"{value - base:+.2f}"

if __name__ == "__main__":
    main()
