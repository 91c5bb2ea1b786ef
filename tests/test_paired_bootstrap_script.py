"""scripts/paired_bootstrap.py: per-document counts by biotag's scorer, and a paired bootstrap
whose interval tells a real difference from a small corpus' noise."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from paired_bootstrap import document_counts, f1, paired_bootstrap  # noqa: E402

from biotag.document import Document  # noqa: E402


def _doc(doc_id, spans):
    doc = Document(doc_id, "BRCA1 causes breast cancer in mice.")
    for start, end, kind in spans:
        doc.add_entity(start, end, kind)
    return doc


def test_document_counts_score_each_document_on_the_corpus_types():
    gold = [_doc("a", [(0, 5, "gene"), (13, 26, "disease")]), _doc("b", [(30, 34, "species")])]
    pred = [_doc("a", [(0, 5, "gene"), (13, 19, "disease")]), _doc("b", [(30, 34, "species"), (0, 5, "chemical")])]
    counts = document_counts(gold, pred, ["disease", "gene"], scoring_types={"disease", "gene"}, type_map=None)
    # doc a: gene right, disease cut short (one FP and one FN); doc b: nothing of these types
    assert counts.tolist() == [[[0, 1, 1], [1, 0, 0]], [[0, 0, 0], [0, 0, 0]]]
    assert f1(counts.sum(axis=0)).tolist() == [0.0, 1.0]


def test_identical_models_differ_by_nothing():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 5, size=(40, 2, 3))
    result = paired_bootstrap(counts, counts.copy(), samples=200)
    assert np.all(result["diff"] == 0) and np.all(result["low"] == 0) and np.all(result["high"] == 0)
    assert np.all(result["b_ahead"] == 0.5)


def test_a_model_better_on_every_document_is_ahead_in_every_resample():
    worse = np.tile([[2, 2, 2]], (30, 1))[:, None, :]  # tp, fp, fn per document, one type
    better = np.tile([[4, 0, 0]], (30, 1))[:, None, :]
    result = paired_bootstrap(worse, better, samples=300)
    assert result["f1_a"][0] == pytest.approx(0.5) and result["f1_b"][0] == pytest.approx(1.0)
    assert result["low"][0] > 0 and result["b_ahead"][0] == 1.0


def test_a_difference_on_few_documents_has_a_wide_interval():
    """The same overall F1 gap is certain on 400 documents and uncertain on 8."""
    rng = np.random.default_rng(3)

    def pair(n):
        a = np.stack([rng.integers(5, 10, n), rng.integers(0, 4, n), rng.integers(0, 4, n)], axis=1)[:, None, :]
        b = a.copy()
        b[::4, 0, 0] += 1  # B finds one more mention in every fourth document
        b[::4, 0, 2] = np.maximum(b[::4, 0, 2] - 1, 0)
        return a, b

    wide = paired_bootstrap(*pair(8), samples=500)
    narrow = paired_bootstrap(*pair(400), samples=500)
    assert (wide["high"] - wide["low"])[0] > 3 * (narrow["high"] - narrow["low"])[0]
    assert narrow["low"][0] > 0


def test_models_scored_on_different_documents_are_refused():
    with pytest.raises(ValueError, match="different documents"):
        paired_bootstrap(np.zeros((3, 1, 3)), np.zeros((4, 1, 3)))
