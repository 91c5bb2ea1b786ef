"""Relation scores: BLURB's micro-F1 over the positive classes, per class, and the
document-level (concept pair) scores used for BioRED.

BLURB (and BLUE before it) score ChemProt and DDI as micro-averaged precision, recall and
F1 over the positive labels only: a pair predicted as a positive label is a true
positive when the gold label is that label, a false positive otherwise; a gold positive
not predicted as its label is a false negative. The negative label (``false``,
``DDI-false``) earns nothing, so a model that says "no relation" everywhere scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass
class ClassScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def to_dict(self) -> dict:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.support,
        }


@dataclass
class RelationReport:
    micro: ClassScore
    per_class: dict[str, ClassScore]
    n: int

    def to_dict(self) -> dict:
        return {"n": self.n, "micro": self.micro.to_dict(), "per_class": {k: v.to_dict() for k, v in self.per_class.items()}}

    def table(self) -> str:
        """A markdown table: one row per positive class, then the micro average."""
        rows = ["| class | support | P | R | F1 |", "|---|---:|---:|---:|---:|"]
        for name, s in [*self.per_class.items(), ("micro (positive classes)", self.micro)]:
            rows.append(f"| {name} | {s.support} | {100 * s.precision:.2f} | {100 * s.recall:.2f} | {100 * s.f1:.2f} |")
        return "\n".join(rows)


def score_labels(gold: Sequence[str], predicted: Sequence[str], labels: Iterable[str], negative: str) -> RelationReport:
    """BLURB micro P/R/F1 over the positive ``labels``, plus per-class scores."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    per_class = {label: ClassScore() for label in labels if label != negative}
    micro = ClassScore()
    for g, p in zip(gold, predicted):
        if p == g:
            if g != negative:
                micro.tp += 1
                per_class.setdefault(g, ClassScore()).tp += 1
            continue
        if p != negative:
            micro.fp += 1
            per_class.setdefault(p, ClassScore()).fp += 1
        if g != negative:
            micro.fn += 1
            per_class.setdefault(g, ClassScore()).fn += 1
    return RelationReport(micro, per_class, len(gold))


def score_pairs(gold: set[tuple], predicted: set[tuple]) -> ClassScore:
    """Set overlap of gold and predicted items (``(doc, concept pair[, type])`` tuples)."""
    tp = len(gold & predicted)
    return ClassScore(tp, len(predicted) - tp, len(gold) - tp)
