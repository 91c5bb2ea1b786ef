"""The BioC data model <-> biotag Documents, shared by the BioC XML and BioC JSON formats.

Both readers first turn one BioC document into plain dicts in the BioC-JSON layout::

    {"id", "infons", "passages": [{"offset", "infons", "text", "sentences",
                                   "annotations", "relations"}], "relations"}
    annotation: {"id", "infons", "text", "locations": [{"offset", "length"}]}
    relation:   {"id", "infons", "nodes": [{"refid", "role"}]}

and call :func:`document_from_bioc`; both writers call :func:`document_to_bioc` and
serialise the result. Items may carry a ``"_line"`` key (XML source lines) that is used
only to locate errors.

Mapping
    * Document text: every passage's text placed at its ``offset`` (BioC offsets are
      document-wide); gaps before or between passages are filled with spaces so that every
      offset stays true (unless the document infon ``biotag_gaps`` gives the text there, see
      below). A passage holding sentences instead of text is rebuilt the same way from its
      sentences, whose spans become ``Document.sentences``.
    * Passage: infon ``type`` -> ``Passage.type`` (``"passage"`` when absent); the other
      infons -> ``Passage.attributes``.
    * Annotation -> Entity: ``id``, infon ``type``, one span per ``location`` (several
      locations = a discontinuous mention). Links come from the infon ``identifier``
      (``MESH:D001;MESH:D002`` or bare ``6528``; ``;``/``,`` join several, ``-``/``-1`` mean
      none) and from the ontology-named infons ``MESH`` (BC5CDR) and ``NCBI Gene``
      (GNormPlus), which also split on ``|``. Infons ``score``/``source`` fill the entity's
      fields; every other infon is kept in ``Entity.attributes``.
    * Relation: infon ``type`` (or BC5CDR's ``relation``); each ``node`` is an entity
      argument (``refid`` must name an annotation of the document). Concept arguments are
      infons whose key is a role: ``entity1``/``entity2`` (BioRED), ``role1``/``role2``
      (PubTator3, whose value may be an object with an ``identifier``) or an entity type of
      the document (BC5CDR ``Chemical``/``Disease``). Other infons -> attributes.
    * Document infons (and, in JSON, unknown document keys such as PubTator3's ``pmid``)
      -> ``Document.metadata``.

Writing is the inverse, one passage element per Document passage (a document without
passages gets one ``"text"`` passage holding its text, marked by the infon
``biotag_implicit`` so that a reader leaves it out of ``Document.passages``). Where the
plain BioC conventions cannot say exactly what the Document holds, a ``biotag_``-prefixed
infon keeps it, so Document -> BioC -> Document is lossless: ``biotag_gaps`` (``[[offset, text]...]``, the document text outside
every passage where it is not just spaces, e.g. ``"\n\n"`` between paragraphs),
``biotag_sentences``/``biotag_tokens`` (the span layers, ``[[start, end]...]``; sentences
are not written as ``<sentence>`` elements, which would drop the passage text between them),
``biotag_links`` (links with names, scores or ids the ``identifier`` syntax would split)
and ``biotag_concept_roles`` (which relation infons are concept arguments, when their keys
are not recognisable). Not kept: ``Document.errors``.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from biotag.document import Argument, Document, Entity, Link, Passage, Relation, Span
from biotag.errors import FormatError, ValidationError

GAP_FILL = " "
DEFAULT_PASSAGE_TYPE = "passage"
NO_PASSAGE_TYPE = "text"
IMPLICIT_PASSAGE_KEY = "biotag_implicit"  # marks the passage written for a passage-less document
IDENTIFIER_KEY = "identifier"
# infons named after one ontology: BC5CDR writes MESH, GNormPlus writes "NCBI Gene"
ONTOLOGY_KEYS = {"MESH": "MESH", "NCBI Gene": "NCBIGene"}
LINKS_KEY = "biotag_links"
GAPS_KEY = "biotag_gaps"
SPAN_LAYER_KEYS = {"sentences": "biotag_sentences", "tokens": "biotag_tokens"}
_DOCUMENT_LAYOUT_KEYS = frozenset({GAPS_KEY, *SPAN_LAYER_KEYS.values()})
CONCEPT_ROLES_KEY = "biotag_concept_roles"
RELATION_TYPE_KEYS = ("type", "relation")
STANDARD_CONCEPT_ROLES = frozenset({"entity1", "entity2", "role1", "role2"})
NO_ID = frozenset({"", "-", "-1"})
# attribute keys a writer must not copy into infons: a reader would take them for fields
_LINK_KEYS = frozenset({IDENTIFIER_KEY, LINKS_KEY, *ONTOLOGY_KEYS})
_DIGITS = re.compile(r"\s*[0-9]+\s*")
# document keys that are not metadata ("bioctype": PMC's type tag on every object)
_DOCUMENT_KEYS = frozenset({"id", "infons", "passages", "relations", "bioctype", "_line"})


@dataclass(slots=True)
class _Where:
    """Where a document came from, to build located FormatErrors."""

    path: str | None
    line: int | None
    document: str | None = None

    def error(self, message: str, field: str, item: Any = None) -> FormatError:
        line = item.get("_line", self.line) if isinstance(item, dict) else self.line
        return FormatError(message, path=self.path, line=line, document=self.document, field=field)


# -- identifiers <-> links ------------------------------------------------------------
def links_from_identifier(value: str, ontology: str | None = None) -> list[Link]:
    """Links named by an identifier infon; ``ontology`` is the one an ontology-named
    infon (``MESH``) implies, None for ``identifier`` whose ids carry their prefix."""
    separators = r"[;,|]" if ontology else r"[;,]"
    links = []
    for piece in re.split(separators, value):
        piece = piece.strip()
        if piece in NO_ID:
            continue
        if ontology:
            links.append(Link(ontology, piece.removeprefix(f"{ontology}:")))
            continue
        prefix, colon, local_id = piece.partition(":")
        links.append(Link(prefix, local_id) if colon and prefix and local_id else Link("", piece))
    return links


def identifier_for(links: list[Link]) -> str:
    return ";".join(f"{link.ontology}:{link.id}" if link.ontology else link.id for link in links)


def _links(infons: dict[str, Any], where: _Where, item: dict) -> list[Link]:
    """Pop the link infons of an annotation and return its links."""
    exact = infons.pop(LINKS_KEY, None)
    links: list[Link] = []
    for key, ontology in ((IDENTIFIER_KEY, None), *ONTOLOGY_KEYS.items()):
        value = infons.pop(key, None)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            if not isinstance(v, str):
                raise where.error(f"infon {key!r} must be text, got {type(v).__name__}", f"annotation.infons.{key}", item)
            links.extend(links_from_identifier(v, ontology))
    if exact is None:
        return links
    try:
        return [Link.from_dict(d) for d in exact]
    except (TypeError, KeyError, AttributeError, ValueError):
        raise where.error(f"infon {LINKS_KEY!r} must be a list of link objects", f"annotation.infons.{LINKS_KEY}", item) from None


# -- reading -------------------------------------------------------------------------------
def _as_list(item: dict, key: str, field: str, where: _Where) -> list:
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(f"{key!r} must be a list, got {type(value).__name__}", field, item)
    return value


def _as_dict(value: Any, field: str, where: _Where, item: Any) -> dict:
    if not isinstance(value, dict):
        raise where.error(f"expected an object, got {type(value).__name__}", field, item)
    return value


def _infons(item: dict, field: str, where: _Where) -> dict[str, Any]:
    value = item.get("infons")
    return {} if value is None else dict(_as_dict(value, field, where, item))


def _offset(value: Any, field: str, where: _Where, item: dict) -> int:
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise where.error(f"offset must be a non-negative integer, got {value!r}", field, item)
    return value


def _text(item: dict, field: str, where: _Where) -> str | None:
    value = item.get("text")
    if value is not None and not isinstance(value, str):
        raise where.error(f"text must be a string, got {type(value).__name__}", field, item)
    return value


def _score(infons: dict[str, Any]) -> float | None:
    value = infons.get("score")
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None  # not a number: kept as an ordinary attribute
    if not math.isfinite(score):
        return None
    del infons["score"]
    return score


def _source(infons: dict[str, Any]) -> str | None:
    return infons.pop("source") if isinstance(infons.get("source"), str) else None


def _fresh_id(prefix: str, used: set[str]) -> str:
    n = len(used) + 1
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


class _Builder:
    """Collects one BioC document's passages, then its annotations and relations."""

    def __init__(self, where: _Where, check_text: bool, gaps: list[tuple[int, str]]) -> None:
        self.where = where
        self.check_text = check_text
        self.gaps = gaps  # text outside the passages, placed in offset order with them
        self.pieces: list[str] = []
        self.length = 0
        self.passages: list[Passage] = []
        self.sentences: list[Span] = []
        self.annotations: list[dict] = []
        self.relations: list[dict] = []

    def place(self, offset: int, text: str, field: str, item: dict | None) -> None:
        while self.gaps and self.gaps[0][0] < offset:
            self._place(*self.gaps.pop(0), f"document.infons.{GAPS_KEY}", None)
        self._place(offset, text, field, item)

    def place_remaining_gaps(self) -> None:
        for gap_offset, gap_text in self.gaps:
            self._place(gap_offset, gap_text, f"document.infons.{GAPS_KEY}", None)

    def _place(self, offset: int, text: str, field: str, item: dict | None) -> None:
        if offset < self.length:
            raise self.where.error(f"offset {offset} overlaps the text before it, which ends at {self.length}", field, item)
        self.pieces.append(GAP_FILL * (offset - self.length))
        self.pieces.append(text)
        self.length = offset + len(text)

    def add_passage(self, raw: Any) -> None:
        raw = _as_dict(raw, "passage", self.where, None)
        infons = _infons(raw, "passage.infons", self.where)
        ptype = infons.pop("type", DEFAULT_PASSAGE_TYPE)
        if not isinstance(ptype, str):
            raise self.where.error(f"passage type must be text, got {ptype!r}", "passage.infons.type", raw)
        if "offset" not in raw:
            raise self.where.error("passage has no offset", "passage.offset", raw)
        offset = _offset(raw["offset"], "passage.offset", self.where, raw)
        text = _text(raw, "passage.text", self.where)
        sentences = _as_list(raw, "sentences", "passage.sentences", self.where)
        if text is not None:
            self.place(offset, text, "passage.offset", raw)
        elif not sentences:
            self.place(offset, "", "passage.offset", raw)
        for sentence in sentences:
            self._add_sentence(sentence, text is None)
        if infons.pop(IMPLICIT_PASSAGE_KEY, None) is None:
            self.passages.append(Passage(ptype, offset, max(offset, self.length), infons))
        self.annotations += _as_list(raw, "annotations", "passage.annotations", self.where)
        self.relations += _as_list(raw, "relations", "passage.relations", self.where)

    def _add_sentence(self, raw: Any, builds_text: bool) -> None:
        raw = _as_dict(raw, "sentence", self.where, None)
        offset = _offset(raw.get("offset"), "sentence.offset", self.where, raw)
        text = _text(raw, "sentence.text", self.where) or ""
        if builds_text:
            self.place(offset, text, "sentence.offset", raw)
        elif self.check_text and "".join(self.pieces)[offset : offset + len(text)] != text:
            raise self.where.error(f"sentence at {offset} does not match its passage's text", "sentence.text", raw)
        self.sentences.append(Span(offset, offset + len(text)))
        self.annotations += _as_list(raw, "annotations", "sentence.annotations", self.where)
        self.relations += _as_list(raw, "relations", "sentence.relations", self.where)

    def entity(self, raw: Any, text: str, used: set[str]) -> Entity:
        where = self.where
        raw = _as_dict(raw, "annotation", where, None)
        entity_id = raw.get("id")
        entity_id = _fresh_id("T", used) if entity_id in (None, "") else str(entity_id)
        infons = _infons(raw, "annotation.infons", where)
        etype = infons.pop("type", None)
        if not isinstance(etype, str) or not etype:
            raise where.error(f"annotation {entity_id} has no type infon", "annotation.infons.type", raw)
        spans = []
        for loc in _as_list(raw, "locations", "annotation.locations", where):
            loc = _as_dict(loc, "annotation.locations", where, raw)
            start = _offset(loc.get("offset"), "location.offset", where, raw)
            length = _offset(loc.get("length"), "location.length", where, raw)
            if length == 0 or start + length > len(text):
                raise where.error(
                    f"annotation {entity_id}: location [{start}, {start + length}) is empty or "
                    f"past the end of the text ({len(text)})",
                    "annotation.locations",
                    raw,
                )
            spans.append(Span(start, start + length))
        if not spans:
            raise where.error(f"annotation {entity_id} has no location", "annotation.locations", raw)
        joined = " ".join(text[s.start : s.end] for s in spans)
        given = _text(raw, "annotation.text", where)
        covering = text[min(s.start for s in spans) : max(s.end for s in spans)]
        if self.check_text and given is not None and given not in (joined, covering):
            raise where.error(
                f"annotation {entity_id}: text {given!r} does not match the document text {joined!r} "
                f"at {[s.to_list() for s in spans]}",
                "annotation.text",
                raw,
            )
        links = _links(infons, where, raw)
        return Entity(entity_id, etype, spans, joined, _score(infons), _source(infons), links, infons)

    def relation(self, raw: Any, used: set[str], entity_ids: set[str], entity_types: set[str]) -> Relation:
        where = self.where
        raw = _as_dict(raw, "relation", where, None)
        relation_id = raw.get("id")
        relation_id = _fresh_id("R", used) if relation_id in (None, "") else str(relation_id)
        infons = _infons(raw, "relation.infons", where)
        rtype = next((infons.pop(k) for k in RELATION_TYPE_KEYS if k in infons), None)
        if not isinstance(rtype, str):
            raise where.error(f"relation {relation_id} has no type infon", "relation.infons.type", raw)
        arguments = []
        for node in _as_list(raw, "nodes", "relation.nodes", where):
            node = _as_dict(node, "relation.nodes", where, raw)
            refid, role = node.get("refid"), node.get("role", "")
            if not isinstance(role, str) or str(refid) not in entity_ids:
                message = f"relation {relation_id}: node refid {refid!r} names no annotation of this document"
                raise where.error(message, "relation.nodes.refid", raw)
            arguments.append(Argument(role, entity_id=str(refid)))
        declared = infons.pop(CONCEPT_ROLES_KEY, None)
        if declared is not None and not (isinstance(declared, list) and all(isinstance(r, str) for r in declared)):
            raise where.error(f"infon {CONCEPT_ROLES_KEY!r} must be a list of roles", f"relation.infons.{CONCEPT_ROLES_KEY}", raw)
        roles = declared if declared is not None else [k for k in infons if k in STANDARD_CONCEPT_ROLES or k in entity_types]
        for role in roles:
            value = infons.get(role)
            if isinstance(value, dict) and isinstance(value.get(IDENTIFIER_KEY), str):
                # PubTator3 role objects: the identifier is the argument, the object stays
                arguments.append(Argument(role, concept=value[IDENTIFIER_KEY]))
            elif isinstance(value, str):
                arguments.append(Argument(role, concept=infons.pop(role)))
            elif declared is not None:
                raise where.error(f"relation {relation_id}: concept role {role!r} has no value", "relation.infons", raw)
        return Relation(relation_id, rtype, arguments, _score(infons), _source(infons), infons)


def _pairs(metadata: dict[str, Any], key: str, second: type, where: _Where) -> list[tuple[int, Any]] | None:
    """Pop one of the biotag layout infons: a list of ``[offset, str or int]`` pairs."""
    value = metadata.pop(key, None)
    if value is None:
        return None
    if not (
        isinstance(value, list)
        and all(isinstance(p, list) and len(p) == 2 and type(p[0]) is int and p[0] >= 0 and type(p[1]) is second for p in value)
    ):
        raise where.error(f"infon {key!r} must be a list of [offset, {second.__name__}] pairs", f"document.infons.{key}")
    return [(a, b) for a, b in value]


def document_from_bioc(raw: Any, *, path: str | None, line: int | None = None, check_text: bool = True) -> Document:
    """A validated Document from one BioC document in the JSON layout (see the module
    docstring); bad input raises a FormatError naming path, line, document and field."""
    where = _Where(path, raw.get("_line", line) if isinstance(raw, dict) else line)
    raw = _as_dict(raw, "document", where, None)
    doc_id = raw.get("id", raw.get("pmid"))
    if doc_id is None or isinstance(doc_id, (dict, list)) or str(doc_id) == "":
        raise where.error("document has no id", "document.id", raw)
    where.document = str(doc_id)
    metadata = _infons(raw, "document.infons", where)
    for key, value in raw.items():
        if key not in _DOCUMENT_KEYS:
            metadata.setdefault(key, value)
    builder = _Builder(where, check_text, sorted(_pairs(metadata, GAPS_KEY, str, where) or []))
    for passage in _as_list(raw, "passages", "document.passages", where):
        builder.add_passage(passage)
    builder.place_remaining_gaps()
    layers = {layer: _pairs(metadata, key, int, where) for layer, key in SPAN_LAYER_KEYS.items()}
    layers = {layer: None if pairs is None else [Span(a, b) for a, b in pairs] for layer, pairs in layers.items()}
    builder.relations += _as_list(raw, "relations", "document.relations", where)
    text = "".join(builder.pieces)
    entities: list[Entity] = []
    entity_ids: set[str] = set()
    for annotation in builder.annotations:
        entities.append(builder.entity(annotation, text, entity_ids))
        entity_ids.add(entities[-1].id)
    entity_types = {e.type for e in entities}
    relations: list[Relation] = []
    relation_ids: set[str] = set()
    for raw_relation in builder.relations:
        relations.append(builder.relation(raw_relation, relation_ids, entity_ids, entity_types))
        relation_ids.add(relations[-1].id)
    doc = Document(
        id=str(doc_id),
        text=text,
        passages=builder.passages,
        entities=entities,
        relations=relations,
        sentences=builder.sentences or layers["sentences"],
        tokens=layers["tokens"],
        metadata=metadata,
    )
    try:
        return doc.validate()
    except ValidationError as err:
        raise FormatError(err.message, path=path, line=where.line, document=doc.id, field=err.field) from None


# -- writing -------------------------------------------------------------------------------
def _passages_for_writing(doc: Document) -> list[Passage]:
    implicit = Passage(NO_PASSAGE_TYPE, 0, len(doc.text), {IMPLICIT_PASSAGE_KEY: "true"})
    passages = sorted(doc.passages, key=lambda p: (p.start, p.end)) or [implicit]
    for before, after in zip(passages, passages[1:]):
        if after.start < before.end:
            raise ValidationError(
                f"passages [{before.start}, {before.end}) and [{after.start}, {after.end}) overlap; BioC passages cannot",
                document=doc.id,
                field="passages",
            )
    return passages


def _gaps_for_writing(doc: Document, passages: list[Passage]) -> list[list]:
    """The text outside the passages that a reader would not give back: gaps that are not
    just spaces, and any text after the last passage (a reader's text ends there)."""
    gaps, end = [], 0
    for p in passages:
        if doc.text[end : p.start].strip(GAP_FILL):
            gaps.append([end, doc.text[end : p.start]])
        end = p.end
    if end < len(doc.text):
        gaps.append([end, doc.text[end:]])
    return gaps


def _set_score_and_source(infons: dict[str, Any], item: Entity | Relation) -> None:
    # an attribute "score" that is not a number reads back as an attribute: keep it
    if item.score is not None:
        infons["score"] = str(item.score)  # infons are text in BioC; str(float) reads back exactly
    if item.source is not None:
        infons["source"] = item.source


def _entity_to_bioc(entity: Entity) -> dict[str, Any]:
    infons: dict[str, Any] = {"type": entity.type}
    infons.update((k, v) for k, v in entity.attributes.items() if k != "type" and k not in _LINK_KEYS)
    if entity.links:
        infons[IDENTIFIER_KEY] = identifier_for(entity.links)
        if links_from_identifier(infons[IDENTIFIER_KEY]) != entity.links:
            infons[LINKS_KEY] = [link.to_dict() for link in entity.links]
    _set_score_and_source(infons, entity)
    return {
        "id": entity.id,
        "infons": infons,
        "text": entity.text,
        "locations": [{"offset": s.start, "length": len(s)} for s in entity.spans],
    }


def _relation_to_bioc(relation: Relation, doc: Document, entity_types: set[str]) -> dict[str, Any]:
    concept_args = [a for a in relation.arguments if a.entity_id is None]
    roles = [a.role for a in concept_args]
    if len(set(roles)) != len(roles):
        raise ValidationError(
            f"relation {relation.id}: two concept arguments share a role, which BioC infons cannot hold",
            document=doc.id,
            field="relations.arguments",
        )
    infons: dict[str, Any] = {"type": relation.type}
    for arg in concept_args:
        held = relation.attributes.get(arg.role)
        keeps_object = isinstance(held, dict) and held.get(IDENTIFIER_KEY) == arg.concept
        infons[arg.role] = held if keeps_object else arg.concept
    recognised = STANDARD_CONCEPT_ROLES | entity_types
    # "type" is written above; a "relation" attribute reads back as one, since "type" wins
    others = {k: v for k, v in relation.attributes.items() if k not in ("type", CONCEPT_ROLES_KEY) and k not in infons}
    if any(r not in recognised for r in roles) or any(k in recognised for k in others):
        infons[CONCEPT_ROLES_KEY] = roles
    infons.update(others)
    _set_score_and_source(infons, relation)
    nodes = [{"refid": a.entity_id, "role": a.role} for a in relation.arguments if a.entity_id is not None]
    return {"id": relation.id, "infons": infons, "nodes": nodes}


def document_to_bioc(doc: Document) -> dict[str, Any]:
    """One BioC document in the JSON layout (infon values may be any JSON value; the XML
    writer encodes the non-string ones)."""
    passages = _passages_for_writing(doc)
    starts = [p.start for p in passages]
    per_passage: list[list[dict]] = [[] for _ in passages]
    for entity in doc.entities:
        per_passage[max(0, bisect_right(starts, entity.start) - 1)].append(_entity_to_bioc(entity))
    entity_types = {e.type for e in doc.entities}
    infons = {k: v for k, v in doc.metadata.items() if k not in _DOCUMENT_LAYOUT_KEYS}
    gaps = _gaps_for_writing(doc, passages)
    if gaps:
        infons[GAPS_KEY] = gaps
    for layer, key in SPAN_LAYER_KEYS.items():
        spans = getattr(doc, layer)
        if spans is not None:
            infons[key] = [s.to_list() for s in spans]
    return {
        "id": doc.id,
        "infons": infons,
        "passages": [
            {
                "offset": p.start,
                "infons": {"type": p.type, **{k: v for k, v in p.attributes.items() if k != "type"}},
                "text": doc.text[p.start : p.end],
                "annotations": annotations,
                "relations": [],
            }
            for p, annotations in zip(passages, per_passage)
        ],
        "relations": [_relation_to_bioc(r, doc, entity_types) for r in doc.relations],
    }
