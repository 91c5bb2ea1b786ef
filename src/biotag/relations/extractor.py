"""Relations in documents: candidate pairs -> one batched model call -> Relation objects.

:class:`RelationExtractor` adds to each document one :class:`~biotag.document.Relation`
per candidate pair (see :mod:`biotag.relations.candidates`) whose most probable label is
a positive one with probability at least ``min_score``: ``type`` = the label,
arguments ``Arg1`` (the head, E1) and ``Arg2`` naming the two entities, ``score`` = its
probability, ``source`` = the extractor's name. Relations an earlier run of the same
extractor added are replaced, so running it twice changes nothing; relations from other
sources (a corpus's gold relations) are kept.

:func:`concept_relations` lifts mention-level relations to concept pairs (BioRED's
document-level relations): every pair of the arguments' linked concepts, unordered for a
symmetric task, keeping the type of the highest-scoring mention pair.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from biotag.document import Argument, Document, Relation
from biotag.relations.candidates import candidate_pairs, to_example

SOURCE = "relations"


class RelationExtractor:
    def __init__(self, model, *, window: int = 1, batch_size: int = 64, min_score: float = 0.0, name: str = SOURCE) -> None:
        self.model = model
        self.window = window
        self.batch_size = batch_size
        self.min_score = min_score
        self.name = name

    @property
    def task(self):
        return self.model.task

    def __call__(self, docs: Sequence[Document]) -> list[Document]:
        return self.extract(docs)

    def extract(self, docs: Sequence[Document]) -> list[Document]:
        """Add the relations the model finds to ``docs`` (in place); returns them."""
        docs = list(docs)
        units = [(doc, c) for doc in docs for c in candidate_pairs(doc, self.task, window=self.window)]
        probabilities = (
            self.model.predict_proba([to_example(doc, c) for doc, c in units], batch_size=self.batch_size)
            if units
            else np.zeros((0, len(self.task.all_labels)))
        )
        labels = self.task.all_labels
        for doc in docs:
            doc.relations = [r for r in doc.relations if r.source != self.name]
        used = {id(doc): {r.id for r in doc.relations} for doc in docs}
        for (doc, candidate), probs in zip(units, probabilities):
            best = int(probs.argmax())
            if best == 0 or probs[best] < self.min_score:  # index 0 is the negative label
                continue
            taken = used[id(doc)]
            number = len(doc.relations) + 1
            while f"R{number}" in taken:
                number += 1
            taken.add(f"R{number}")
            doc.relations.append(
                Relation(
                    f"R{number}",
                    labels[best],
                    [Argument("Arg1", entity_id=candidate.head.id), Argument("Arg2", entity_id=candidate.tail.id)],
                    score=round(float(probs[best]), 4),
                    source=self.name,
                )
            )
        return docs


def concept_relations(doc: Document, *, symmetric: bool = True, source: str | None = SOURCE) -> dict[tuple, tuple[str, float]]:
    """``(concept1, concept2) -> (type, score)`` from the entity-argument relations of
    ``doc`` (those of ``source``; any source when None)."""
    by_id = {e.id: e for e in doc.entities}
    out: dict[tuple, tuple[str, float]] = {}
    for r in doc.relations:
        if source is not None and r.source != source:
            continue
        args = [by_id.get(a.entity_id) for a in r.arguments if a.entity_id is not None]
        if len(args) != 2 or None in args:
            continue
        score = 1.0 if r.score is None else r.score
        for x in args[0].links:
            for y in args[1].links:
                a, b = f"{x.ontology}:{x.id}", f"{y.ontology}:{y.id}"
                if a == b:
                    continue
                key = tuple(sorted((a, b))) if symmetric else (a, b)
                if key not in out or out[key][1] < score:
                    out[key] = (r.type, score)
    return out
