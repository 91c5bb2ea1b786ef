"""The seven-column row of an all-types model (issue 4): devel and test strict F1 per corpus and
their macro, from ``biotag evaluate`` reports.

The columns are those of the bundled-model table in docs/results.md: each corpus' micro F1 over
the types it annotates, except BC5CDR, whose chemical and disease are two columns. Reports are
``<dir>/eval-<corpus>-<split>.json``, written by

    for c in ncbi-disease bc5cdr bc2gm jnlpba linnaeus s800; do for s in devel test; do
      biotag evaluate -m MODEL -c $c --split $s -o DIR/eval-$c-$s.json; done; done
    python scripts/all_types_table.py DIR [DIR ...]

One markdown row per directory: devel F1 of each column, devel macro, test F1 of each column,
test macro. The adoption rule of the bundled model compares the devel macro. With ``--variant``,
two more columns, outside the macros: the ``variant`` F1 of ``eval-tmvar-devel.json`` and
``eval-tmvar-test.json`` (tmVar's devel is the held-out tenth of its train), "—" for a model
without them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# (column name, corpus, type or None for the micro over the corpus' types)
COLUMNS = (
    ("NCBI-disease", "ncbi-disease", None),
    ("BC5CDR-chemical", "bc5cdr", "chemical"),
    ("BC5CDR-disease", "bc5cdr", "disease"),
    ("BC2GM", "bc2gm", None),
    ("JNLPBA", "jnlpba", None),
    ("Linnaeus", "linnaeus", None),
    ("S800", "s800", None),
)
SPLITS = ("devel", "test")
VARIANT = ("tmvar", "variant")  # the extra columns of --variant: corpus, type


def column_scores(reports: dict[str, dict], split: str) -> list[float]:
    """F1 × 100 of each column; ``reports`` maps ``<corpus>-<split>`` to a report."""
    scores = []
    for name, corpus, entity_type in COLUMNS:
        key = f"{corpus}-{split}"
        if key not in reports:
            raise SystemExit(f"no report for {name} {split}: eval-{key}.json is missing")
        report = reports[key]
        scores.append(100 * (report["micro"] if entity_type is None else report["types"][entity_type])["f1"])
    return scores


def row(folder: Path, variant: bool = False) -> str:
    reports = {p.stem.removeprefix("eval-"): json.loads(p.read_text()) for p in folder.glob("eval-*.json")}
    cells = [folder.name]
    for split in SPLITS:
        scores = column_scores(reports, split)
        cells += [f"{s:.2f}" for s in scores] + [f"**{statistics.fmean(scores):.2f}**"]
    if variant:
        corpus, entity_type = VARIANT
        for split in SPLITS:
            found = reports.get(f"{corpus}-{split}", {}).get("types", {}).get(entity_type)
            cells.append("—" if found is None else f"{100 * found['f1']:.2f}")
    return "| " + " | ".join(cells) + " |"


def header(variant: bool = False) -> str:
    names = [name for name, _, _ in COLUMNS]
    cells = ["model"] + [f"{n} {s}" for s in SPLITS for n in names + ["macro"]]
    cells += [f"tmVar variant {s}" for s in SPLITS] if variant else []
    return "| " + " | ".join(cells) + " |\n|---|" + "---:|" * (len(cells) - 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of eval-<corpus>-<split>.json reports")
    parser.add_argument("--variant", action="store_true", help="add tmVar variant F1 columns (outside the macros)")
    args = parser.parse_args(argv)
    print(header(args.variant))
    for folder in args.folders:
        print(row(folder, args.variant))


if __name__ == "__main__":
    main()
