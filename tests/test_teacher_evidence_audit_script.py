"""scripts/teacher_evidence_audit.py: the chemical words a teacher-evidence rule overrules, per corpus."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from teacher_evidence_audit import overruled_words  # noqa: E402

from biotag.distill.trainer import DistillTrainer  # noqa: E402
from biotag.labels import LabelSchema  # noqa: E402

SCHEMA = LabelSchema(("gene", "chemical"), "multilabel")
GENE_AND_CHEMICAL = [0.05, 0.9, 0.05] * 2
CHEMICAL_ONLY = [0.9, 0.05, 0.05] + [0.05, 0.9, 0.05]


def test_counts_only_chemical_guesses_the_rule_turns_off_where_gold_is_silent():
    rows = {0: [GENE_AND_CHEMICAL, CHEMICAL_ONLY], 1: [GENE_AND_CHEMICAL], 2: [GENE_AND_CHEMICAL, GENE_AND_CHEMICAL]}
    gold = [SimpleNamespace(words=["BRCA1", "cisplatin"]), SimpleNamespace(words=["G6PD"])]
    text = [SimpleNamespace(words=["CIITA", "and", "Tax"])]
    trainer = SimpleNamespace(
        config=SimpleNamespace(corpora=["ncbi-disease", "bc5cdr"], teacher_evidence_threshold=0.5, teacher_evidence_agreement="all"),
        schema=SCHEMA, teacher_exclusions={1: [(0,)]}, n_gold=2,
        annotated_types=np.array([[False, False], [False, True]]),  # the second corpus annotates chemicals
        pool=[
            SimpleNamespace(labels=np.zeros(2), corpus=0, window=SimpleNamespace(sequence=0, words=np.array([0, 1]))),
            SimpleNamespace(labels=np.zeros(1), corpus=1, window=SimpleNamespace(sequence=1, words=np.array([0]))),
            SimpleNamespace(labels=np.zeros(2), corpus=0, window=SimpleNamespace(sequence=0, words=np.array([0, 2]))),
        ],
        train_examples=gold, soft_examples=text,
        _cached_teacher_scores=lambda index: torch.tensor(rows[int(index[0])]).log().numpy(),
        model=SimpleNamespace(schema=SCHEMA), evidence_matcher=None, _word_corpora=DistillTrainer._word_corpora,
    )
    trainer._teacher_evidence = lambda items, teacher, text_only: DistillTrainer._teacher_evidence(trainer, items, teacher, text_only)
    per_corpus, forms = overruled_words(trainer, "chemical")
    assert per_corpus == {"ncbi-disease": 1, "bc5cdr": 0, "unlabelled text": 2}
    assert forms == {"brca1": 1, "ciita": 1, "tax": 1}
