"""De-identification metrics: span recall and precision (exact and any-overlap) and
token-level recall, as reported for the physionet deid corpus.

* exact: a gold span is found when a predicted span has exactly its offsets (and vice
  versa for precision);
* any-overlap: a gold span is found when any predicted span shares a character with it;
  a predicted span is correct when it shares a character with any gold span;
* token recall: of the words inside gold spans (biotag's word segmentation), the share
  whose every character is covered by predicted spans, i.e. hidden in the output; token
  precision is the share of predicted-span words that lie inside gold spans.

Types are ignored: the physionet gold is untyped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

from biotag.deid.spans import PhiSpan
from biotag.document import Document
from biotag.text.words import word_spans

Interval = tuple[int, int]


@dataclass
class DeidCounts:
    gold: int = 0
    predicted: int = 0
    exact_gold: int = 0  # gold spans predicted exactly
    exact_predicted: int = 0  # predicted spans equal to a gold span
    overlap_gold: int = 0  # gold spans overlapped by a prediction
    overlap_predicted: int = 0  # predictions overlapping a gold span
    gold_tokens: int = 0
    covered_gold_tokens: int = 0
    predicted_tokens: int = 0
    correct_predicted_tokens: int = 0

    def add(self, other: "DeidCounts") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def report(self) -> dict[str, float | int]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else 1.0

        return {
            "gold_spans": self.gold,
            "predicted_spans": self.predicted,
            "recall_exact": ratio(self.exact_gold, self.gold),
            "precision_exact": ratio(self.exact_predicted, self.predicted),
            "recall_overlap": ratio(self.overlap_gold, self.gold),
            "precision_overlap": ratio(self.overlap_predicted, self.predicted),
            "token_recall": ratio(self.covered_gold_tokens, self.gold_tokens),
            "token_precision": ratio(self.correct_predicted_tokens, self.predicted_tokens),
        }


def _overlaps_any(span: Interval, others: Sequence[Interval]) -> bool:
    # a note has a handful of spans: a scan is simpler than an interval index and fast enough
    return any(s < span[1] and span[0] < e for s, e in others)


def _covered(a: int, b: int, cover: Sequence[Interval]) -> bool:
    """Whether every character of ``[a, b)`` lies in the union of ``cover`` (sorted)."""
    pos = a
    for s, e in cover:
        if s > pos:
            if s >= b:
                break
            return False
        pos = max(pos, e)
        if pos >= b:
            return True
    return pos >= b


def count_note(text: str, gold: Iterable[Interval], predicted: Iterable[Interval]) -> DeidCounts:
    """The counts of one note (``text`` is needed for its words)."""
    gold = sorted(set(gold))
    predicted = sorted(set(predicted))
    gold_set, predicted_set = set(gold), set(predicted)
    counts = DeidCounts(gold=len(gold), predicted=len(predicted))
    counts.exact_gold = sum(g in predicted_set for g in gold)
    counts.exact_predicted = sum(p in gold_set for p in predicted)
    counts.overlap_gold = sum(_overlaps_any(g, predicted) for g in gold)
    counts.overlap_predicted = sum(_overlaps_any(p, gold) for p in predicted)
    for s, e in gold:
        for a, b in word_spans(text, s, e):
            counts.gold_tokens += 1
            counts.covered_gold_tokens += _covered(a, b, predicted)
    for s, e in predicted:
        for a, b in word_spans(text, s, e):
            counts.predicted_tokens += 1
            counts.correct_predicted_tokens += _overlaps_any((a, b), gold)
    return counts


@dataclass
class DeidReport:
    counts: DeidCounts = field(default_factory=DeidCounts)
    notes: int = 0

    def add_note(self, text: str, gold: Iterable[Interval], predicted: Iterable[Interval]) -> DeidCounts:
        note = count_note(text, gold, predicted)
        self.counts.add(note)
        self.notes += 1
        return note

    def to_dict(self) -> dict:
        return {"notes": self.notes, **self.counts.report()}


def gold_intervals(doc: Document) -> list[Interval]:
    return [(s.start, s.end) for e in doc.entities for s in e.spans]


def evaluate_spans(docs: Sequence[Document], find: Callable[[Document], Sequence[PhiSpan]]) -> DeidReport:
    """Score ``find`` (a document -> its PHI spans) against the documents' gold entities."""
    report = DeidReport()
    for doc in docs:
        report.add_note(doc.text, gold_intervals(doc), [(s.start, s.end) for s in find(doc)])
    return report


# -- systems and thresholds -------------------------------------------------------------
def compare_systems(docs: Sequence[Document], tagger_model, rules, threshold: float, *, scores=None) -> dict[str, dict]:
    """Reports of rules only, model only and both (each with propagation), from one pass
    of the model (``scores`` may be given to reuse it)."""
    from biotag.deid.tagger import PhiTagger

    if tagger_model is not None and scores is None:
        scores = tagger_model.score(docs)
    systems = {"rules": (None, rules), "model": (tagger_model, None), "combined": (tagger_model, rules)}
    out = {}
    for name, (model, rule) in systems.items():
        if (name != "rules" and tagger_model is None) or (name != "model" and rules is None):
            continue
        tagger = PhiTagger(model, rule, threshold=threshold)
        found = tagger.find(docs, scores=scores if model is not None else None)
        report = DeidReport()
        for doc, spans in zip(docs, found):
            report.add_note(doc.text, gold_intervals(doc), [(s.start, s.end) for s in spans])
        out[name] = report.to_dict()
    return out


THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def sweep_thresholds(docs: Sequence[Document], model, rules, scores=None, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """The combined system's report at each threshold (one model pass)."""
    from biotag.deid.tagger import PhiTagger

    scores = model.score(docs) if scores is None else scores
    rows = []
    for threshold in thresholds:
        found = PhiTagger(model, rules, threshold=threshold).find(docs, scores=scores)
        report = DeidReport()
        for doc, spans in zip(docs, found):
            report.add_note(doc.text, gold_intervals(doc), [(s.start, s.end) for s in spans])
        rows.append({"threshold": threshold, **report.to_dict()})
    return rows


def choose_threshold(rows: Sequence[dict], target_recall: float = 0.98) -> dict:
    """The highest threshold whose any-overlap recall reaches ``target_recall`` (the best
    precision among those that do); if none does, the one with the highest recall."""
    reaching = [r for r in rows if r["recall_overlap"] >= target_recall]
    if reaching:
        return max(reaching, key=lambda r: (r["precision_overlap"], r["threshold"]))
    return max(rows, key=lambda r: (r["recall_overlap"], r["precision_overlap"]))
