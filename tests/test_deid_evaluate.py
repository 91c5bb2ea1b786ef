"""De-identification metrics on hand-built cases, threshold choice, and the physionet
readers (skipped without the shared data)."""

import pytest

from biotag.deid.evaluate import DeidReport, choose_threshold, count_note

TEXT = "Dr Ann Smith saw pt on 7/22 at General Hospital today."
#       0123456789012345678901234567890123456789012345678901234
ANN_SMITH, DATE, HOSPITAL = (3, 12), (23, 27), (31, 47)


def test_exact_and_overlap_counts():
    gold = [ANN_SMITH, DATE, HOSPITAL]
    predicted = [(3, 6), DATE, (48, 53)]  # half a name, the exact date, a false alarm
    c = count_note(TEXT, gold, predicted)
    r = DeidReport(counts=c, notes=1).to_dict()
    assert (c.exact_gold, c.overlap_gold) == (1, 2)
    assert r["recall_exact"] == pytest.approx(1 / 3) and r["recall_overlap"] == pytest.approx(2 / 3)
    assert r["precision_exact"] == pytest.approx(1 / 3) and r["precision_overlap"] == pytest.approx(2 / 3)


def test_token_recall_counts_hidden_words_only():
    # gold words: Ann, Smith, 7, /, 22, General, Hospital = 7; hidden: Ann, 7, /, 22
    c = count_note(TEXT, [ANN_SMITH, DATE, HOSPITAL], [(3, 6), (20, 28), (31, 40)])
    assert c.gold_tokens == 7
    assert c.covered_gold_tokens == 5  # Ann, 7, /, 22, General; "Hospital" only partly
    # predicted words: Ann | on, 7, /, 22 | General, H ("on" lies outside the gold)
    assert c.predicted_tokens == 1 + 4 + 2 and c.correct_predicted_tokens == 1 + 3 + 2


def test_empty_cases_are_perfect_not_undefined():
    r = DeidReport(counts=count_note("no phi here", [], []), notes=1).to_dict()
    assert r["recall_overlap"] == 1.0 and r["precision_overlap"] == 1.0


def test_reports_add_up_over_notes():
    report = DeidReport()
    report.add_note(TEXT, [DATE], [DATE])
    report.add_note(TEXT, [DATE], [])
    assert report.to_dict()["recall_exact"] == 0.5 and report.notes == 2


def test_threshold_choice_prefers_precision_among_those_reaching_recall():
    rows = [
        {"threshold": 0.05, "recall_overlap": 0.99, "precision_overlap": 0.6},
        {"threshold": 0.2, "recall_overlap": 0.981, "precision_overlap": 0.8},
        {"threshold": 0.5, "recall_overlap": 0.95, "precision_overlap": 0.9},
    ]
    assert choose_threshold(rows, 0.98)["threshold"] == 0.2
    assert choose_threshold(rows, 0.999)["threshold"] == 0.05  # none reaches: best recall


def test_physionet_split_by_patient(shared_data):
    from biotag.deid.data import physionet_split, read_presidio

    train, devel, dev = (physionet_split(s, shared_data) for s in ("train", "devel", "dev"))
    patients = [{d.metadata["patient"] for d in docs} for docs in (train, devel, dev)]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])
    assert len(train) + len(devel) == 1535 and len(dev) == 378
    assert sum(len(d.entities) for d in dev) == 320
    assert all(e.type == "PHI" and e.text.strip() for d in dev for e in d.entities)
    presidio = list(read_presidio(shared_data / "deid/presidio-synthetic/synth_dataset_v2.json.gz", typed=True))
    assert len(presidio) == 1500 and {"NAME", "LOCATION", "DATE"} <= {e.type for d in presidio for e in d.entities}
    for d in presidio[:50]:
        d.validate()
