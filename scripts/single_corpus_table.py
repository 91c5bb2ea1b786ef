"""The single-corpus table of docs/results.md from finished runs under runs/single/.

For every run with a summary.json it evaluates the best model on the test split (once;
``biotag evaluate ... -o runs/eval/single-<run>-test.json``) and prints one markdown row per
corpus/type: devel F1 (best epoch), test P/R/F1, the BioBERT v1.1 anchor, and the seconds per
training epoch from the run's log (median over epochs; other jobs shared the cores).

    python scripts/single_corpus_table.py [--runs runs/single] [--no-evaluate]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

# run name -> (corpus for `biotag evaluate`, [(row label, type or None for micro, BioBERT v1.1)])
RUNS = {
    "ncbi-disease": ("ncbi-disease", [("NCBI-disease", "disease", 89.71)]),
    "bc5cdr": ("bc5cdr", [("BC5CDR-chemical", "chemical", 93.47), ("BC5CDR-disease", "disease", 87.15)]),
    "bc2gm": ("bc2gm", [("BC2GM", None, 84.72)]),
    "jnlpba": ("jnlpba", [("JNLPBA", None, 77.49)]),
    "linnaeus": ("linnaeus", [("Linnaeus", None, 88.24)]),
    "s800": ("s800", [("S800", None, 74.06)]),
}
ENCODERS = {"l6": "MiniLM-L6", "mpnet": "MPNet-base"}


def test_report(run: Path, corpus: str, evaluate: bool) -> dict | None:
    out = Path("runs/eval") / f"single-{run.name}-test.json"
    if not out.exists() and evaluate:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(Path(sys.executable).with_name("biotag")), "evaluate", "-m", str(run / "model"), "-c", corpus, "--split", "test", "-o", str(out)],
            check=True, stdout=subprocess.DEVNULL,
        )
    return json.loads(out.read_text()) if out.exists() else None


def seconds_per_epoch(run: Path) -> float | None:
    values = [
        event["seconds_per_epoch"]
        for event in map(json.loads, (run / "log.jsonl").read_text().splitlines())
        if event.get("event") == "eval" and event.get("epoch_progress") == 1.0 and event.get("seconds_per_epoch")
    ]
    return statistics.median(values) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/single"))
    parser.add_argument("--no-evaluate", action="store_true", help="only use test reports already written")
    args = parser.parse_args(argv)
    print("| corpus | encoder | devel F1 (micro) | test P | test R | **test F1** | BioBERT v1.1 | s/epoch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for run in sorted(p for p in args.runs.iterdir() if (p / "summary.json").is_file()):
        corpus_key, _, encoder_key = run.name.rpartition("-")
        if corpus_key not in RUNS:
            continue
        corpus, rows = RUNS[corpus_key]
        summary = json.loads((run / "summary.json").read_text())
        report = test_report(run, corpus, not args.no_evaluate)
        seconds = seconds_per_epoch(run)
        for label, type_, anchor in rows:
            scores = (report["types"][type_] if type_ else report["micro"]) if report else None
            cells = [f"{100 * scores[k]:.2f}" for k in ("precision", "recall")] + [f"**{100 * scores['f1']:.2f}**"] if scores else ["", "", "(not evaluated)"]
            epoch_time = f"{seconds:.0f}" if seconds else ""
            print(f"| {label} | {ENCODERS.get(encoder_key, encoder_key)} | {100 * summary['best_f1']:.2f} | "
                  + " | ".join(cells) + f" | {anchor:.2f} | {epoch_time} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
