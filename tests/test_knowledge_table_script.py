"""scripts/knowledge_table.py --write keeps the rows whose evaluation reports are gone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knowledge_table import merge_rows  # noqa: E402

HEADER = ["| corpus | model | devel F1 | test F1 | Δ devel | Δ test | s/epoch |", "|---|---|---:|---:|---:|---:|---:|"]


def test_rows_without_a_fresh_report_are_kept_and_fresh_ones_replace_or_join_their_corpus():
    current = HEADER + [
        "| NCBI-disease | MiniLM-L6 plain | 83.16 | **82.08** |  |  | 114 |",
        "| NCBI-disease | MiniLM-L6 + CRF | 84.16 | **83.28** | +1.00 | +1.20 | 106 |",
        "| S800 | MiniLM-L6 plain | 66.07 | **65.68** |  |  | 133 |",
    ]
    fresh = HEADER + [
        "| NCBI-disease | MiniLM-L6 + CRF | 84.16 | **83.28** |  |  | 68 |",
        "| S800 | MPNet-base + CRF | 75.85 | **71.79** |  |  | 964 |",
        "| BC2GM | MiniLM-L6 plain | 75.52 | **73.56** |  |  | 391 |",
    ]
    merged = merge_rows(current, fresh)
    assert merged[:2] == HEADER
    assert merged[2:] == [
        "| NCBI-disease | MiniLM-L6 plain | 83.16 | **82.08** |  |  | 114 |",  # no report now: kept
        "| NCBI-disease | MiniLM-L6 + CRF | 84.16 | **83.28** | +1.00 | +1.20 | 68 |",  # updated in place, Δ kept
        "| S800 | MiniLM-L6 plain | 66.07 | **65.68** |  |  | 133 |",
        "| S800 | MPNet-base + CRF | 75.85 | **71.79** |  |  | 964 |",  # a new row after its corpus
        "| BC2GM | MiniLM-L6 plain | 75.52 | **73.56** |  |  | 391 |",  # a new corpus at the end
    ]


def test_a_changed_score_drops_the_old_change_columns():
    current = HEADER + ["| S800 | MiniLM-L6 + CRF | 69.11 | **65.93** | +3.04 | +0.25 | — |"]
    fresh = HEADER + ["| S800 | MiniLM-L6 + CRF | 69.50 | **66.10** |  |  | 80 |"]
    assert merge_rows(current, fresh)[2:] == ["| S800 | MiniLM-L6 + CRF | 69.50 | **66.10** |  |  | 80 |"]
