"""Candidate argument pairs from a Document's entities.

Two entities are a candidate pair when

* their types are a pair the task allows (``chemical``-``gene`` for ChemProt; either
  order too for a symmetric task such as DDI's ``chemical``-``chemical``); an entity
  type the task does not name is read as its unified type (:mod:`biotag.entity_types`),
  so entities of an NER model with corpus labels (``Chemical``, ``GENE``, ``protein``)
  pair up too,
* they lie within ``window`` sentences of each other (1: the same sentence, the
  default; 2: the same or adjacent sentences...), a sentence being the one holding the
  entity's first character (documents without a sentence layer are segmented first),
* they are different mentions: not the same entity, not two mentions of one concept
  (an entity pair sharing a link), and not two entities with identical spans and types.

For a symmetric task the argument that comes first in the text is the head (E1); for
an asymmetric one the head has the pair's first type. The text a model reads is the
covering sentences (from the first sentence of the pair to the last).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterator

from biotag.document import Document, Entity
from biotag.entity_types import default_type_map
from biotag.errors import InputError
from biotag.relations.datasets import RelationTask
from biotag.relations.examples import Mention, RelationExample


@dataclass(slots=True)
class Candidate:
    head: Entity
    tail: Entity
    start: int  # the region of text the model reads
    end: int
    head_type: str = ""  # the arguments' types as the task names them
    tail_type: str = ""


def _links(entity: Entity) -> set[tuple[str, str]]:
    return {(link.ontology, link.id) for link in entity.links}


def candidate_pairs(doc: Document, task: RelationTask, *, window: int = 1) -> Iterator[Candidate]:
    """Every candidate pair of ``doc`` for ``task``, in text order of the head."""
    if not isinstance(window, int) or window < 1:
        raise InputError(f"window must be a positive number of sentences, got {window!r}", field="window")
    if not doc.entities:
        return
    if doc.sentences is None:
        from biotag.text.segment import segment

        segment(doc)
    starts = [s.start for s in doc.sentences or ()]
    sentences = doc.sentences or []

    def sentence_of(entity: Entity) -> int:
        return max(0, bisect_right(starts, entity.start) - 1)

    named = {t for pair in task.pairs for t in pair}
    unify = default_type_map(unknown="keep")
    entities, types = _one_mention_per_span(doc.sorted_entities(), lambda e: e.type if e.type in named else unify(e.type))
    where = [sentence_of(e) for e in entities]
    for i, a in enumerate(entities):
        for j in range(i + 1, len(entities)):
            b = entities[j]
            if where[j] - where[i] >= window:
                break  # sorted by start, so later entities are further away
            if _links(a) & _links(b):
                continue
            ta, tb = types[i], types[j]
            if task.symmetric:
                if not task.allows(ta, tb):
                    continue
                head, tail = (a, ta), (b, tb)
            elif (ta, tb) in task.pairs:
                head, tail = (a, ta), (b, tb)
            elif (tb, ta) in task.pairs:
                head, tail = (b, tb), (a, ta)
            else:
                continue
            first, last = sentences[where[i]] if sentences else None, sentences[where[j]] if sentences else None
            start = min(first.start if first else 0, a.start, b.start)
            end = max(last.end if last else len(doc.text), a.end, b.end)
            yield Candidate(head[0], tail[0], start, end, head[1], tail[1])


def _one_mention_per_span(entities: list[Entity], argument_type) -> tuple[list[Entity], list[str]]:
    """The entities and their argument types, one per span and argument type: the bundled
    model tags a protein name as both ``gene`` (BC2GM's guideline) and ``protein`` (JNLPBA's),
    one argument type for a relation model, so the entity whose own type it is stays."""
    chosen: dict[tuple, int] = {}
    types = [argument_type(e) for e in entities]
    for i, (entity, t) in enumerate(zip(entities, types)):
        key = (tuple((s.start, s.end) for s in entity.spans), t)
        if key not in chosen or (entity.type == t and entities[chosen[key]].type != t):
            chosen[key] = i
    kept = sorted(chosen.values())
    return [entities[i] for i in kept], [types[i] for i in kept]


def to_example(doc: Document, candidate: Candidate, label: str | None = None) -> RelationExample:
    """The example a model classifies for a candidate (covering spans of discontinuous
    entities)."""
    offset = candidate.start
    head, tail = candidate.head, candidate.tail
    return RelationExample(
        f"{doc.id}:{head.id}:{tail.id}",
        doc.text[candidate.start : candidate.end],
        Mention(head.start - offset, head.end - offset, candidate.head_type or head.type),
        Mention(tail.start - offset, tail.end - offset, candidate.tail_type or tail.type),
        label,
    )
