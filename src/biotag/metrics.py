"""Strict entity-level precision, recall and F1, per type, micro- and macro-averaged.

"Strict" means a predicted entity counts as a true positive only when a gold entity has
exactly the same boundaries and the same type (the CoNLL / seqeval / BioCreative
definition). Three entry points share one counting core:

* :func:`score_spans` - ``(unit_key, start, end, type)`` tuples (token or character offsets);
* :func:`score_tags` - IOB tag sequences, chunked as seqeval does, giving seqeval's numbers;
* :func:`score_documents` - entities of :class:`~biotag.document.Document` pairs matched
  by document id, with optional restriction to a corpus's types and a type mapping.

Entities are compared as sets, as seqeval does: the same entity listed twice counts once.
Scores are fractions (0..1); :meth:`Report.format_table` shows them as percentages. Where
nothing is gold or predicted, a score is 0 (seqeval gives 0 too, except the macro average
of an empty report, where it gives NaN; biotag gives 0 so reports stay valid JSON).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Mapping, Sequence

from biotag.entity_types import TypeMap
from biotag.errors import InputError
from biotag.labels import spans_from_tags

if TYPE_CHECKING:
    from biotag.document import Document, Entity

#: One scored entity: its type and whatever identifies its location (unit and offsets).
_Item = tuple[str, Hashable]


@dataclass(frozen=True, slots=True)
class TypeScore:
    """Scores of one entity type (or of an average): fractions in 0..1 and raw counts."""

    precision: float
    recall: float
    f1: float
    support: int  # number of gold entities
    tp: int
    fp: int
    fn: int

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> "TypeScore":
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        return cls(precision, recall, _f1(precision, recall), tp + fn, tp, fp, fn)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> "TypeScore":
        try:
            return cls(
                precision=float(data["precision"]),
                recall=float(data["recall"]),
                f1=float(data["f1"]),
                **{name: int(data[name]) for name in ("support", "tp", "fp", "fn")},
            )
        except (KeyError, TypeError, ValueError) as exc:
            expected = ", ".join(f.name for f in fields(cls))
            raise InputError(f"malformed score ({type(exc).__name__}: {exc}); expected {expected}", field=where or None) from None


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    # from the rounded ratios, in seqeval's order of operations, so the floats agree exactly
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Report:
    """Per-type scores (types sorted by name) with their micro and macro averages.

    ``micro`` pools the counts of all types. ``macro`` averages precision, recall and F1
    over the types (its F1 is the mean of the per-type F1s, not the F1 of the mean
    precision and recall, as in seqeval and scikit-learn); its counts are the totals.
    """

    per_type: dict[str, TypeScore]
    micro: TypeScore
    macro: TypeScore

    @classmethod
    def from_counts(cls, counts: Mapping[str, tuple[int, int, int]]) -> "Report":
        """A report from ``{type: (tp, fp, fn)}``."""
        per_type = {t: TypeScore.from_counts(*counts[t]) for t in sorted(counts)}
        scores = list(per_type.values())
        tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
        macro = TypeScore(
            precision=_mean([s.precision for s in scores]),
            recall=_mean([s.recall for s in scores]),
            f1=_mean([s.f1 for s in scores]),
            support=tp + fn,
            tp=tp,
            fp=fp,
            fn=fn,
        )
        return cls(per_type, TypeScore.from_counts(tp, fp, fn), macro)

    @property
    def types(self) -> list[str]:
        return list(self.per_type)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` reads it back."""
        return {
            "types": {t: s.to_dict() for t, s in self.per_type.items()},
            "micro": self.micro.to_dict(),
            "macro": self.macro.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Report":
        if not isinstance(data, Mapping) or not {"types", "micro", "macro"} <= set(data):
            raise InputError("a report needs the keys 'types', 'micro' and 'macro'", field="report")
        types = data["types"]
        if not isinstance(types, Mapping):
            raise InputError(f"expected an object of type -> scores, got {type(types).__name__}", field="types")
        return cls(
            per_type={str(t): TypeScore.from_dict(s, f"types.{t}") for t, s in types.items()},
            micro=TypeScore.from_dict(data["micro"], "micro"),
            macro=TypeScore.from_dict(data["macro"], "macro"),
        )

    def format_table(self, digits: int = 2) -> str:
        """A fixed-width table like seqeval's report, scores in percent."""
        headers = ("", "precision", "recall", "f1", "support", "tp", "fp", "fn")
        rows = [(t, s) for t, s in self.per_type.items()] + [("micro avg", self.micro), ("macro avg", self.macro)]
        cells = [
            [name] + [f"{100 * v:.{digits}f}" for v in (s.precision, s.recall, s.f1)] + [str(v) for v in (s.support, s.tp, s.fp, s.fn)]
            for name, s in rows
        ]
        widths = [max(len(row[c]) for row in [headers, *cells]) for c in range(len(headers))]

        def line(row: Sequence[str]) -> str:
            return "  ".join(f"{cell:>{w}}" for cell, w in zip(row, widths))

        body = [line(row) for row in cells]
        # a blank line under the header and above the averages, as in seqeval
        return "\n".join([line(headers), "", *body[: len(self.per_type)], "", *body[len(self.per_type) :]])

    def __str__(self) -> str:
        return self.format_table()


def _score_items(gold: Iterable[_Item], pred: Iterable[_Item]) -> Report:
    """The shared core: count exact matches of ``(type, location)`` items per type."""
    gold_by_type: dict[str, set[Hashable]] = defaultdict(set)
    pred_by_type: dict[str, set[Hashable]] = defaultdict(set)
    for entity_type, location in gold:
        gold_by_type[entity_type].add(location)
    for entity_type, location in pred:
        pred_by_type[entity_type].add(location)
    counts = {}
    for t in gold_by_type.keys() | pred_by_type.keys():
        g, p = gold_by_type.get(t, set()), pred_by_type.get(t, set())
        tp = len(g & p)
        counts[t] = (tp, len(p) - tp, len(g) - tp)
    return Report.from_counts(counts)


def score_spans(gold: Iterable[tuple], pred: Iterable[tuple]) -> Report:
    """Strict scores of predicted spans against gold spans.

    Each span is a tuple ``(unit_key, start, end, type)``: ``unit_key`` names the sentence
    or document (any hashable value), ``start``/``end`` are token or character offsets
    (any convention, as long as gold and predictions use the same one).
    """
    return _score_items(_span_items(gold, "gold"), _span_items(pred, "predicted"))


def _span_items(spans: Iterable[tuple], side: str) -> Iterable[_Item]:
    for i, span in enumerate(spans):
        try:
            unit, start, end, entity_type = span
            item = (entity_type, (unit, start, end))
            hash(item)
        except (TypeError, ValueError):
            raise InputError(
                f"{side} span #{i} is {span!r}; expected a tuple (unit_key, start, end, type) of hashable values",
                field="spans",
            ) from None
        yield item


def score_tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Report:
    """Strict scores of IOB tag sequences (one list of tags per sentence).

    Entities are chunked with :func:`biotag.labels.spans_from_tags`, seqeval's default
    (conlleval) chunking, so every number equals seqeval's ``classification_report``.
    """
    if len(gold) != len(pred):
        raise InputError(f"{len(gold)} gold sentences but {len(pred)} predicted ones", field="tags")
    gold_items: list[_Item] = []
    pred_items: list[_Item] = []
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise InputError(f"sentence {i}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted ones", field="tags")
        for tags, items, side in ((gold_tags, gold_items, "gold"), (pred_tags, pred_items, "predicted")):
            try:
                spans = spans_from_tags(tags)
            except InputError as exc:
                raise InputError(f"{side} sentence {i}: {exc.message}", field="tags") from None
            items.extend((s.type, (i, s.start, s.end)) for s in spans)
    return _score_items(gold_items, pred_items)


def score_documents(
    gold_docs: Iterable["Document"],
    pred_docs: Iterable["Document"],
    *,
    types: Iterable[str] | None = None,
    type_map: TypeMap | Mapping[str, str | None] | None = None,
) -> Report:
    """Strict character-offset scores of the entities of predicted documents.

    Documents are matched by id (the k-th gold document with an id pairs with the k-th
    predicted one, so corpora that repeat an id, such as NCBI-disease's training file,
    still work). A gold document without a prediction counts all its entities as false
    negatives; a predicted document that is not in the gold standard raises an
    :class:`~biotag.errors.InputError` naming it, as does one whose text differs from the
    gold text (its offsets would mean something else).

    ``type_map`` (a :class:`~biotag.entity_types.TypeMap`, or a dict renaming some labels
    and keeping the rest) maps gold and predicted types onto one inventory first;
    entities whose type maps to ``None`` are left out. ``types`` then restricts the
    evaluation to those (mapped) types, on both sides: predictions of types a corpus
    does not annotate are neither right nor wrong there. Discontinuous entities match
    only when all their fragments match.
    """
    if isinstance(types, str):
        raise InputError(f"types must be a collection of type names, not the string {types!r}", field="types")
    keep = None if types is None else set(types)
    mapping = None if type_map is None else TypeMap.coerce(type_map)

    def items(doc: "Document", key: tuple[str, int]) -> Iterable[_Item]:
        for entity in doc.entities:
            entity_type = _mapped_type(entity, mapping, doc.id)
            if entity_type is not None and (keep is None or entity_type in keep):
                yield entity_type, (key, _fragments(entity))

    gold_items: list[_Item] = []
    gold_texts: dict[tuple[str, int], str] = {}
    gold_seen: Counter[str] = Counter()
    for doc in gold_docs:
        key = (doc.id, gold_seen[doc.id])
        gold_seen[doc.id] += 1
        gold_texts[key] = doc.text
        gold_items.extend(items(doc, key))

    pred_items: list[_Item] = []
    pred_seen: Counter[str] = Counter()
    for doc in pred_docs:
        key = (doc.id, pred_seen[doc.id])
        pred_seen[doc.id] += 1
        if key not in gold_texts:
            if doc.id in gold_seen:
                message = f"predicted {pred_seen[doc.id]} times but only {gold_seen[doc.id]} times in the gold standard"
            else:
                message = "predicted document is not in the gold standard (documents are matched by id)"
            raise InputError(message, document=doc.id, field="id")
        if doc.text and doc.text != gold_texts[key]:
            raise InputError(
                "predicted document text differs from the gold text, so their offsets cannot be compared",
                document=doc.id,
                field="text",
            )
        pred_items.extend(items(doc, key))
    return _score_items(gold_items, pred_items)


def _mapped_type(entity: "Entity", mapping: TypeMap | None, doc_id: str) -> str | None:
    if mapping is None:
        return entity.type
    try:
        return mapping.unify(entity.type)
    except InputError as exc:
        raise InputError(f"entity {entity.id}: {exc.message}", document=doc_id, field="type") from None


def _fragments(entity: "Entity") -> tuple[tuple[int, int], ...]:
    return tuple(sorted((s.start, s.end) for s in entity.spans))


__all__ = ["TypeScore", "Report", "score_spans", "score_tags", "score_documents"]
