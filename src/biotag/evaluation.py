"""Evaluate a model on a corpus: predict on the gold documents' own segmentation and
score strict character-offset matches, restricted to the types the corpus annotates."""

from __future__ import annotations

import copy
from typing import Iterable

from biotag.document import Document
from biotag.ner import NerTagger


def strip_entities(doc: Document) -> Document:
    """A copy of ``doc`` without entities or relations (segmentation layers kept, so
    predictions on CoNLL corpora use the gold tokenisation, as the benchmarks require)."""
    bare = copy.copy(doc)
    bare.entities = []
    bare.relations = []
    bare.metadata = dict(doc.metadata)
    return bare


def corpus_scoring(corpus: str, model_types: Iterable[str] = ()) -> tuple[set[str] | None, dict[str, str | None]]:
    """``(types, type_map)`` to score a model predicting ``model_types`` on ``corpus``:
    biotag's unified inventory, except that a corpus label naming one of the model's own
    finer types keeps it (:meth:`~biotag.entity_types.TypeMap.keeping`). A model with a
    ``protein`` type is scored on JNLPBA's ``protein`` by it, and its ``gene`` predictions
    are left out there; for a model of unified types this is the unified inventory."""
    from biotag.corpora import resolve
    from biotag.entity_types import default_type_map

    types = set(resolve(corpus).types_for(model_types)) or None  # already unified (a user's file: none known)
    return types, default_type_map().keeping(model_types).as_dict()


def evaluate_tagger(
    tagger: NerTagger,
    gold_docs: Iterable[Document],
    *,
    types: Iterable[str] | None = None,
    type_map: dict[str, str] | None = None,
):
    """Strict entity P/R/F1 of ``tagger`` on ``gold_docs``.

    ``type_map`` maps corpus labels and model types onto one inventory (e.g. the unified
    biotag types, so a model predicting ``disease`` is scored on ``Disease`` gold);
    ``types`` limits scoring to the types the corpus annotates.
    """
    from biotag.metrics import score_documents

    gold = list(gold_docs)
    predicted = list(tagger(strip_entities(d) for d in gold))
    return score_documents(gold, predicted, types=set(types) if types else None, type_map=type_map)
