"""End-to-end evaluation: NER + linking on raw documents, P/R/F1 of what comes out.

The gold documents of a benchmark (:data:`biotag.linking.evaluate.BENCHMARKS`) lose
their annotations, go through ``sentences, ner, linking, abbreviations`` (the default
pipeline's order, with the benchmark's indexes), and the entities of the scored types
are compared with the gold ones at three levels:

* **mention** -- ``(document, start, end, ID)`` pairs: the span must match exactly and
  the ID must be one of the gold mention's IDs. A gold mention with several IDs (a
  composite mention, "breast and ovarian cancer") gives one pair per ID, so both must be
  found; a predicted ID matches a gold ID that is the predicted concept's ID or one of
  its alternate IDs (MEDIC's OMIM numbers). Gold mentions without an ID (``-1``) are
  not scored, and predictions on their spans neither.
* **document** -- ``(document, ID)`` pairs: the set of concepts each document mentions,
  the measure of BioCreative V CDR's disease task (DNER) and of TaggerOne/DNorm.
* **span** -- ``(document, start, end)`` of the scored types, IDs ignored: the NER
  part alone, for reading the other two.

``evaluate_end_to_end`` also reports how fast documents go through (NER and linking
timed apart, from the pipeline's per-step statistics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from biotag.document import Document
from biotag.linking.evaluate import Benchmark, _documents, get_benchmark, with_training_synonyms
from biotag.linking.linker import Linker


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: set, gold: set) -> None:
        hits = len(predicted & gold)
        self.tp += hits
        self.fp += len(predicted) - hits
        self.fn += len(gold) - hits

    def to_dict(self) -> dict:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(100 * p, 2), "recall": round(100 * r, 2), "f1": round(100 * f, 2), "tp": self.tp, "fp": self.fp, "fn": self.fn}


@dataclass
class EndToEndScores:
    mention: Counts = field(default_factory=Counts)
    document: Counts = field(default_factory=Counts)
    span: Counts = field(default_factory=Counts)

    def to_dict(self) -> dict:
        return {"mention (span, ID)": self.mention.to_dict(), "document (ID)": self.document.to_dict(), "span (NER only)": self.span.to_dict()}


def _curies(entity) -> set[str]:
    return {f"{link.ontology}:{link.id}" for link in entity.links}


def score_documents(
    gold: Iterable[Document],
    predicted: dict[str, Document],
    types: Iterable[str],
    *,
    unify=lambda t: t,
    alternates=lambda curie: (),
) -> EndToEndScores:
    """Compare predicted with gold documents (matched by id) on the entities whose
    ``unify``-ed type is in ``types``; ``alternates(curie)`` gives the other IDs a
    predicted concept is known by."""
    wanted = set(types)
    scores = EndToEndScores()
    for doc in gold:
        mine = predicted.get(doc.id)
        gold_entities = [e for e in doc.entities if unify(e.type) in wanted]
        pred_entities = [e for e in (mine.entities if mine else []) if unify(e.type) in wanted]
        unscored = {(e.start, e.end) for e in gold_entities if not e.links}
        gold_ids = {(e.start, e.end): _curies(e) for e in gold_entities if e.links}
        document_gold = set().union(*gold_ids.values()) if gold_ids else set()

        def as_gold(curie: str, allowed: set[str]) -> str:
            # the form the gold annotation uses, when the concept is known by several
            return next((i for i in (curie, *alternates(curie)) if i in allowed), curie)

        mention_pred, document_pred = set(), set()
        for entity in pred_entities:
            span = (entity.start, entity.end)
            for curie in _curies(entity):
                document_pred.add(as_gold(curie, document_gold))
                if span not in unscored:
                    mention_pred.add((*span, as_gold(curie, gold_ids.get(span, set()))))
        mention_gold = {(*span, curie) for span, ids in gold_ids.items() for curie in ids}
        scores.mention.add(mention_pred, mention_gold)
        scores.document.add(document_pred, document_gold)
        scores.span.add({(e.start, e.end) for e in pred_entities}, {(e.start, e.end) for e in gold_entities})
    return scores


def alternate_ids(linker: Linker):
    """``curie -> alternate IDs`` over the linker's indexes (cached)."""
    cache: dict[str, tuple[str, ...]] = {}

    def alternates(curie: str) -> tuple[str, ...]:
        found = cache.get(curie)
        if found is None:
            records = (index.find(curie) for index in linker.indexes)
            found = cache[curie] = next((r.alt_ids for r in records if r is not None), ())
        return found

    return alternates


def blank_copy(doc: Document) -> Document:
    """The document's text and passages only (what a user would give the pipeline)."""
    return Document(doc.id, doc.text, passages=list(doc.passages), metadata={})


@dataclass
class EndToEndReport:
    benchmark: str
    split: str
    ontologies: list[str]
    model: str
    reranker: str | None
    train_synonyms: bool
    documents: int = 0
    scores: EndToEndScores = field(default_factory=EndToEndScores)
    step_seconds: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        seconds = sum(self.step_seconds.values())
        return {
            "benchmark": self.benchmark,
            "split": self.split,
            "ontologies": self.ontologies,
            "model": self.model,
            "reranker": self.reranker,
            "train_synonyms": self.train_synonyms,
            "documents": self.documents,
            **self.scores.to_dict(),
            "seconds per step": {k: round(v, 2) for k, v in self.step_seconds.items()},
            "documents/s": round(self.documents / seconds, 1) if seconds else None,
            "reference": self.reference,
        }

    def format_table(self) -> str:
        data = self.to_dict()
        lines = [f"{self.benchmark} ({self.split}) end to end: NER {self.model}, indexes {', '.join(self.ontologies)}"
                 + (f", re-ranker {self.reranker}" if self.reranker else "") + (" + training synonyms" if self.train_synonyms else "")]
        for level in ("mention (span, ID)", "document (ID)", "span (NER only)"):
            d = data[level]
            lines.append(f"  {level:20s} P {d['precision']:6.2f}  R {d['recall']:6.2f}  F1 {d['f1']:6.2f}")
        lines.append(f"  {'seconds per step':20s} {data['seconds per step']}  ({data['documents/s']} documents/s)")
        lines += [f"  reference            {v} ({k})" for k, v in self.reference.items()]
        return "\n".join(lines)


# Published end-to-end figures on the same test sets, to compare with (document level).
CDR_DNER = "BioCreative V CDR disease task, document-level (Wei et al. 2016, Database baw032)"
REFERENCE = {
    "bc5cdr-disease": {f"best team F1 ({CDR_DNER})": 86.46, f"human agreement ({CDR_DNER})": 88.75},
}


def evaluate_end_to_end(
    benchmark: str | Benchmark,
    split: str = "test",
    *,
    index_dir: str | Path | None = None,
    ontologies: Iterable[str] | None = None,
    model: str | Path | None = None,
    train_synonyms: bool = False,
    batch_size: int = 16,
    **linker_options,
) -> EndToEndReport:
    """NER (``model``, default the bundled one) + linking P/R/F1 on a benchmark split."""
    from biotag.pipeline.registry import build_step

    bench = benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)
    names = list(ontologies) if ontologies else list(bench.ontologies)
    linker = Linker(index_dir, names, **linker_options)
    gold = _documents(bench.corpus, split)
    reranker = linker_options.get("reranker")
    report = EndToEndReport(
        bench.name, split, names, str(model or "bundled default"), None if reranker is None else str(getattr(reranker, "path", None) or reranker),
        train_synonyms, documents=len(gold), reference=dict(REFERENCE.get(bench.name, {})),
    )
    with with_training_synonyms(linker, bench, split, enabled=train_synonyms):
        ner = build_step("ner", {"model": str(model)} if model else None)
        report.scores, report.step_seconds = end_to_end(gold.values(), linker, bench.types, ner, batch_size=batch_size)
    return report


def end_to_end(gold: Iterable[Document], linker: Linker, types: Iterable[str], ner, *, batch_size: int = 16) -> tuple[EndToEndScores, dict]:
    """Blank copies of the ``gold`` documents through ``sentences, ner, linking,
    abbreviations`` (``ner`` any pipeline step), scored against them; also the seconds
    each step took."""
    from biotag.pipeline import Pipeline
    from biotag.pipeline.registry import build_step

    gold = list(gold)
    pipeline = Pipeline([build_step("sentences"), ner, _LinkingStep(linker), build_step("abbreviations")], batch_size=batch_size)
    predicted = {doc.id: doc for doc in pipeline([blank_copy(d) for d in gold])}
    seconds = {name: float(s["seconds"]) for name, s in pipeline.stats().items()}
    return score_documents(gold, predicted, types, unify=linker.unify, alternates=alternate_ids(linker)), seconds


class _LinkingStep:
    """The linker as a named pipeline step (the registry's ``linking`` step would build
    another linker, without the training-synonym index)."""

    __name__ = "linking"

    def __init__(self, linker: Linker) -> None:
        self.linker = linker

    def __call__(self, docs: list[Document]) -> list[Document]:
        return self.linker.link_documents(docs)
