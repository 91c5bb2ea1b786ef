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


def test_a_domain_pretrained_run_is_compared_with_its_recipe_on_the_general_encoder(tmp_path):
    """The reference of ``dapt-features-crf`` is ``features-crf``; when that run's reports are
    gone, its documented row is the reference."""
    import json

    from knowledge_table import LEVERS, documented_scores, table

    def report(path, micro, disease):
        path.write_text(json.dumps({"micro": {"f1": micro}, "types": {"disease": {"f1": disease}}}))

    report(tmp_path / "eval-ncbi-disease-l6-dapt-features-crf-devel.json", 0.85, 0.85)
    report(tmp_path / "eval-ncbi-disease-l6-dapt-features-crf-test.json", 0.8537, 0.8537)
    reference_label = f"MiniLM-L6 {LEVERS['features-crf']}"
    documented = documented_scores(HEADER + [f"| NCBI-disease | {reference_label} | 83.84 | **84.37** | +0.68 | +2.30 | 113 |"])
    assert documented == {("NCBI-disease", reference_label): (83.84, 84.37)}
    rows = table(tmp_path, documented)[2:]
    assert rows == [f"| NCBI-disease | MiniLM-L6 {LEVERS['dapt-features-crf']} | 85.00 | **85.37** | +1.16 | +1.00 | — |"]
    # without the documented reference the change columns stay empty rather than wrong
    assert table(tmp_path)[2:] == [f"| NCBI-disease | MiniLM-L6 {LEVERS['dapt-features-crf']} | 85.00 | **85.37** |  |  | — |"]
