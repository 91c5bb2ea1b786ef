"""The document model: the one currency every reader, writer and step exchanges.

A :class:`Document` holds the original text and, as stand-off layers with character
offsets into that text, its passages (title, abstract, paragraphs), optional sentence
and token segmentations, entities (one or more spans each, so discontinuous,
nested and overlapping mentions are all first-class) and relations between entities or
concepts. Offsets are 0-based, ``end`` exclusive, and always refer to ``Document.text``.

Serialisation (:meth:`Document.to_dict` / :meth:`Document.from_dict`) is lossless:
``Document.from_dict(d.to_dict()) == d`` for every valid document. Default-valued
fields are left out of the dict to keep JSONL small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from biotag.errors import ValidationError

JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A half-open character interval ``[start, end)`` of the document text."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: "Span") -> bool:
        return self.start <= other.start and other.end <= self.end

    def to_list(self) -> list[int]:
        return [self.start, self.end]


@dataclass(slots=True)
class Link:
    """A normalisation of an entity to a concept of an ontology (``MESH:D001943``...)."""

    ontology: str
    id: str
    name: str | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ontology": self.ontology, "id": self.id}
        if self.name is not None:
            out["name"] = self.name
        if self.score is not None:
            out["score"] = self.score
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Link":
        return cls(data["ontology"], str(data["id"]), data.get("name"), data.get("score"))


@dataclass(slots=True)
class Entity:
    """A mention: one or more spans (several for discontinuous mentions), a type and links.

    ``text`` is the covered text, fragments of a discontinuous mention joined by one
    space (the brat convention); :meth:`Document.validate` checks it against the document.
    """

    id: str
    type: str
    spans: list[Span]
    text: str
    score: float | None = None
    source: str | None = None
    links: list[Link] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return min(s.start for s in self.spans)

    @property
    def end(self) -> int:
        return max(s.end for s in self.spans)

    @property
    def span(self) -> Span:
        """The covering span (from the first start to the last end)."""
        return Span(self.start, self.end)

    @property
    def is_discontinuous(self) -> bool:
        return len(self.spans) > 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "spans": [s.to_list() for s in self.spans],
            "text": self.text,
        }
        if self.score is not None:
            out["score"] = self.score
        if self.source is not None:
            out["source"] = self.source
        if self.links:
            out["links"] = [link.to_dict() for link in self.links]
        if self.attributes:
            out["attributes"] = self.attributes
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Entity":
        return cls(
            id=str(data["id"]),
            type=data["type"],
            spans=[Span(int(a), int(b)) for a, b in data["spans"]],
            text=data["text"],
            score=data.get("score"),
            source=data.get("source"),
            links=[Link.from_dict(x) for x in data.get("links", ())],
            attributes=dict(data.get("attributes", {})),
        )


@dataclass(slots=True)
class Argument:
    """One argument of a relation: an entity of this document, or a concept ID
    (document-level relations such as BioRED's and BC5CDR's CID link concepts)."""

    role: str
    entity_id: str | None = None
    concept: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}
        if self.entity_id is not None:
            out["entity"] = self.entity_id
        if self.concept is not None:
            out["concept"] = self.concept
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Argument":
        return cls(data["role"], data.get("entity"), data.get("concept"))


@dataclass(slots=True)
class Relation:
    id: str
    type: str
    arguments: list[Argument]
    score: float | None = None
    source: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "arguments": [a.to_dict() for a in self.arguments],
        }
        if self.score is not None:
            out["score"] = self.score
        if self.source is not None:
            out["source"] = self.source
        if self.attributes:
            out["attributes"] = self.attributes
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Relation":
        return cls(
            id=str(data["id"]),
            type=data["type"],
            arguments=[Argument.from_dict(a) for a in data["arguments"]],
            score=data.get("score"),
            source=data.get("source"),
            attributes=dict(data.get("attributes", {})),
        )


@dataclass(slots=True)
class Passage:
    """A section of the document (title, abstract, paragraph, caption...)."""

    type: str
    start: int
    end: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "start": self.start, "end": self.end}
        if self.attributes:
            out["attributes"] = self.attributes
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Passage":
        return cls(data["type"], int(data["start"]), int(data["end"]), dict(data.get("attributes", {})))


@dataclass(slots=True)
class Document:
    id: str
    text: str
    passages: list[Passage] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    sentences: list[Span] | None = None
    tokens: list[Span] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    # -- construction helpers -------------------------------------------------
    @classmethod
    def from_passages(cls, id: str, parts: Iterable[tuple[str, str]], sep: str = " ") -> "Document":
        """Build a document from ``(passage type, passage text)`` pairs joined by ``sep``
        (PubTator joins title and abstract with one space)."""
        pieces: list[str] = []
        passages: list[Passage] = []
        offset = 0
        for i, (ptype, ptext) in enumerate(parts):
            if i:
                pieces.append(sep)
                offset += len(sep)
            passages.append(Passage(ptype, offset, offset + len(ptext)))
            pieces.append(ptext)
            offset += len(ptext)
        return cls(id=id, text="".join(pieces), passages=passages)

    def next_entity_id(self) -> str:
        return f"T{len(self.entities) + 1}"

    def add_entity(
        self,
        start: int | list[Span] | list[tuple[int, int]],
        end: int | None = None,
        type: str = "",
        *,
        id: str | None = None,
        **kwargs: Any,
    ) -> Entity:
        """Add an entity by offsets (``start, end``) or by a list of spans; its text is
        read from the document so it is consistent by construction."""
        if isinstance(start, int):
            if end is None:
                raise TypeError("add_entity(start, end, type): end is required with an int start")
            spans = [Span(start, end)]
        else:
            spans = [s if isinstance(s, Span) else Span(*s) for s in start]
        self._check_spans(spans, "spans", id)
        entity = Entity(
            id=id or self.next_entity_id(),
            type=type,
            spans=spans,
            text=self.span_text(spans),
            **kwargs,
        )
        self.entities.append(entity)
        return entity

    def span_text(self, spans: Iterable[Span]) -> str:
        return " ".join(self.text[s.start : s.end] for s in spans)

    def entity(self, entity_id: str) -> Entity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)

    def passage_at(self, offset: int) -> Passage | None:
        for p in self.passages:
            if p.start <= offset < p.end:
                return p
        return None

    def sorted_entities(self) -> list[Entity]:
        return sorted(self.entities, key=lambda e: (e.start, -e.end, e.type))

    # -- validation ---------------------------------------------------------
    def _check_spans(self, spans: list[Span], where: str, entity_id: str | None = None) -> None:
        if not spans:
            raise ValidationError("an entity needs at least one span", document=self.id, field=where)
        n = len(self.text)
        for s in spans:
            if not (isinstance(s.start, int) and isinstance(s.end, int)):
                raise ValidationError(f"offsets must be integers, got {s!r}", document=self.id, field=where)
            if s.start < 0 or s.end > n or s.start >= s.end:
                ent = f"entity {entity_id}: " if entity_id else ""
                raise ValidationError(
                    f"{ent}span [{s.start}, {s.end}) is not inside the text (0..{n}) or is empty",
                    document=self.id,
                    field=where,
                )

    def validate(self) -> "Document":
        """Check every offset and every entity text against the document text.

        Raises :class:`~biotag.errors.ValidationError` naming the document, the entity or
        relation and the field at fault. Returns ``self`` so it chains.
        """
        n = len(self.text)
        for i, p in enumerate(self.passages):
            if not (0 <= p.start <= p.end <= n):
                raise ValidationError(
                    f"passage {i} ({p.type}) [{p.start}, {p.end}) is outside the text (0..{n})",
                    document=self.id,
                    field="passages",
                )
        for layer in ("sentences", "tokens"):
            for s in getattr(self, layer) or ():
                if not (0 <= s.start <= s.end <= n):
                    raise ValidationError(f"[{s.start}, {s.end}) is outside the text (0..{n})", document=self.id, field=layer)
        ids: set[str] = set()
        for e in self.entities:
            if e.id in ids:
                raise ValidationError(f"entity id {e.id!r} is used twice", document=self.id, field="entities.id")
            ids.add(e.id)
            self._check_spans(e.spans, "entities.spans", e.id)
            actual = self.span_text(e.spans)
            if actual != e.text:
                raise ValidationError(
                    f"entity {e.id}: text {e.text!r} does not match the document text {actual!r} "
                    f"at {[s.to_list() for s in e.spans]}",
                    document=self.id,
                    field="entities.text",
                )
        rel_ids: set[str] = set()
        for r in self.relations:
            if r.id in rel_ids:
                raise ValidationError(f"relation id {r.id!r} is used twice", document=self.id, field="relations.id")
            rel_ids.add(r.id)
            for a in r.arguments:
                if (a.entity_id is None) == (a.concept is None):
                    raise ValidationError(
                        f"relation {r.id}: argument {a.role!r} needs exactly one of entity or concept",
                        document=self.id,
                        field="relations.arguments",
                    )
                if a.entity_id is not None and a.entity_id not in ids:
                    raise ValidationError(
                        f"relation {r.id}: argument {a.role!r} names unknown entity {a.entity_id!r}",
                        document=self.id,
                        field="relations.arguments",
                    )
        return self

    # -- serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.passages:
            out["passages"] = [p.to_dict() for p in self.passages]
        if self.entities:
            out["entities"] = [e.to_dict() for e in self.entities]
        if self.relations:
            out["relations"] = [r.to_dict() for r in self.relations]
        if self.sentences is not None:
            out["sentences"] = [s.to_list() for s in self.sentences]
        if self.tokens is not None:
            out["tokens"] = [s.to_list() for s in self.tokens]
        if self.metadata:
            out["metadata"] = self.metadata
        if self.errors:
            out["errors"] = self.errors
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, validate: bool = True) -> "Document":
        """Inverse of :meth:`to_dict`. Malformed input raises a ValidationError naming the
        document and field."""
        if not isinstance(data, dict):
            raise ValidationError(f"expected a JSON object, got {type(data).__name__}")
        doc_id = data.get("id")
        if doc_id is None or "text" not in data:
            missing = "id" if doc_id is None else "text"
            raise ValidationError("required field is missing", document=None if doc_id is None else str(doc_id), field=missing)
        if not isinstance(data["text"], str):
            raise ValidationError("must be a string", document=str(doc_id), field="text")
        current = "passages"
        try:
            passages = [Passage.from_dict(p) for p in data.get("passages", ())]
            current = "entities"
            entities = [Entity.from_dict(e) for e in data.get("entities", ())]
            current = "relations"
            relations = [Relation.from_dict(r) for r in data.get("relations", ())]
            current = "sentences"
            sentences = None if data.get("sentences") is None else [Span(int(a), int(b)) for a, b in data["sentences"]]
            current = "tokens"
            tokens = None if data.get("tokens") is None else [Span(int(a), int(b)) for a, b in data["tokens"]]
            current = "metadata"
            metadata = dict(data.get("metadata", {}))
            current = "errors"
            errors = list(data.get("errors", []))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"malformed value ({type(exc).__name__}: {exc})", document=str(doc_id), field=current) from None
        doc = cls(
            id=str(doc_id),
            text=data["text"],
            passages=passages,
            entities=entities,
            relations=relations,
            sentences=sentences,
            tokens=tokens,
            metadata=metadata,
            errors=errors,
        )
        return doc.validate() if validate else doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Document":
        return cls.from_dict(json.loads(text))


def iter_entities(docs: Iterable[Document]) -> Iterator[tuple[Document, Entity]]:
    for doc in docs:
        for ent in doc.entities:
            yield doc, ent
