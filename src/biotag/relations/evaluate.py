"""Evaluate relation models: pair level (BLURB) and document level (BioRED).

* :func:`evaluate_pairs` scores a model on a dataset split's examples with BLURB's
  micro-F1 over the positive classes (and per class), timing the model's pairs/s.
* :func:`evaluate_documents` runs :class:`~biotag.relations.extractor.RelationExtractor`
  on the split's documents with their gold entities and compares the relations found
  with the gold ones per document: between concepts when the corpus relates concepts
  (BioRED; mention relations are lifted to concept pairs), between entities otherwise.
  It reports pair detection (``pair``: the two arguments are related, any type) and
  typed relations (``typed``), plus the recall ceiling -- the share of gold relations
  with at least one candidate mention pair inside the sentence window. Given an
  ``annotate`` step (NER, linking) it runs end to end from the documents' text.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from biotag.document import Document
from biotag.errors import InputError
from biotag.relations.candidates import candidate_pairs
from biotag.relations.datasets import get_task, gold_relation_index, read_examples
from biotag.relations.extractor import RelationExtractor, concept_relations
from biotag.relations.metrics import score_pairs
from biotag.relations.training import _subset, evaluate_model


def evaluate_pairs(model, dataset: str, split: str = "test", *, window: int = 1, limit: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    task, examples = read_examples(dataset, split, window=window, task=model.task)
    examples = _subset(examples, limit, 0)
    if set(task.all_labels) != set(model.task.all_labels):
        raise InputError(
            f"the model predicts {list(model.task.all_labels)} but {dataset} has {list(task.all_labels)}", field="dataset"
        )
    started = time.perf_counter()
    report, _ = evaluate_model(model, examples, batch_size)
    seconds = time.perf_counter() - started
    return {
        "dataset": dataset,
        "split": split,
        "pairs": len(examples),
        "seconds": round(seconds, 2),
        "pairs_per_second": round(len(examples) / seconds, 1) if seconds > 0 else None,
        "report": report,
    }


def _entity_key(doc, entity_id: str):
    entity = doc.entity(entity_id)
    return (entity.start, entity.end, entity.type)


def _gold_items(doc, concept_level: bool, symmetric: bool) -> tuple[set, set]:
    """Gold relations as ``(doc, key)`` and ``(doc, key, type)`` items; an argument is a
    concept CURIE at concept level, else its entity's ``(start, end, type)`` -- spans, not
    ids, so that relations between predicted entities can match them end to end."""
    pairs, typed = set(), set()
    for (a, b), rtype in gold_relation_index(doc).items():
        if concept_level != (a[0] == "C" and b[0] == "C"):
            continue
        x, y = (a[1], b[1]) if concept_level else (_entity_key(doc, a[1]), _entity_key(doc, b[1]))
        key = tuple(sorted((x, y))) if symmetric else (x, y)
        pairs.add((doc.id, key))
        typed.add((doc.id, key, rtype))
    return pairs, typed


def _reachable(docs, task, window: int, concept_level: bool, symmetric: bool) -> set:
    """``(doc, key)`` of every candidate pair of the documents' entities."""
    return {(doc.id, key) for doc in docs for c in candidate_pairs(doc, task, window=window) for key in _candidate_keys(c, concept_level, symmetric)}


def _predicted_items(doc, concept_level: bool, symmetric: bool):
    if concept_level:
        yield from ((key, rtype) for key, (rtype, _) in concept_relations(doc, symmetric=symmetric).items())
        return
    for r in doc.relations:
        x, y = (_entity_key(doc, a.entity_id) for a in r.arguments)
        yield (tuple(sorted((x, y))) if symmetric else (x, y)), r.type


def evaluate_documents(
    model,
    dataset: str,
    split: str = "devel",
    *,
    window: int = 1,
    batch_size: int = 64,
    min_score: float = 0.0,
    annotate: Callable[[list[Document]], Iterable[Document]] | None = None,
) -> dict[str, Any]:
    """Relations found in a split's documents vs the gold ones. With ``annotate`` (e.g. a
    pipeline of ``ner,linking``) the evaluation is end to end: the documents' text alone
    goes through it, and relations are extracted between the entities (and concepts) it
    finds; otherwise between the gold entities."""
    from biotag.corpora import read_corpus
    from biotag.linking.end_to_end import blank_copy

    named = get_task(dataset)
    docs = list(read_corpus(dataset, split, unify_types=named is not None))
    task = model.task
    concept_level = any(a.concept is not None for d in docs for r in d.relations for a in r.arguments)
    symmetric = task.symmetric
    gold_pairs, gold_typed = set(), set()
    for doc in docs:
        p, t = _gold_items(doc, concept_level, symmetric)
        gold_pairs |= p
        gold_typed |= t
    reachable = _reachable(docs, task, window, concept_level, symmetric)
    result: dict[str, Any] = {"entities": "predicted" if annotate else "gold"}
    started = time.perf_counter()
    if annotate is not None:
        docs = list(annotate([blank_copy(doc) for doc in docs]))
        result["annotate_seconds"] = round(time.perf_counter() - started, 2)
        found = _reachable(docs, task, window, concept_level, symmetric)
        result["recall_ceiling_predicted_entities"] = round(len(gold_pairs & found) / len(gold_pairs), 4) if gold_pairs else None
    for doc in docs:
        doc.relations = []  # gold relations out, so only predictions are scored
    extractor = RelationExtractor(model, window=window, batch_size=batch_size, min_score=min_score)
    started = time.perf_counter()
    extractor.extract(docs)
    seconds = time.perf_counter() - started
    pred_pairs, pred_typed = set(), set()
    for doc in docs:
        for key, rtype in _predicted_items(doc, concept_level, symmetric):
            pred_pairs.add((doc.id, key))
            pred_typed.add((doc.id, key, rtype))
    return {
        "dataset": dataset,
        "split": split,
        "documents": len(docs),
        "level": "concept" if concept_level else "entity",
        "window": window,
        "gold_relations": len(gold_pairs),
        "recall_ceiling": round(len(gold_pairs & reachable) / len(gold_pairs), 4) if gold_pairs else None,
        **result,
        "pair": score_pairs(gold_pairs, pred_pairs).to_dict(),
        "typed": score_pairs(gold_typed, pred_typed).to_dict(),
        "seconds": round(seconds, 2),
    }


def _candidate_keys(candidate, concept_level: bool, symmetric: bool):
    if concept_level:
        heads = [f"{l.ontology}:{l.id}" for l in candidate.head.links]
        tails = [f"{l.ontology}:{l.id}" for l in candidate.tail.links]
    else:
        heads = [(candidate.head.start, candidate.head.end, candidate.head.type)]
        tails = [(candidate.tail.start, candidate.tail.end, candidate.tail.type)]
    for a in heads:
        for b in tails:
            yield tuple(sorted((a, b))) if symmetric else (a, b)
