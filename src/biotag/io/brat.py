"""brat standoff: ``X.txt`` (the text) + ``X.ann`` (the annotations), one pair per document.

Reading takes a folder (every ``*.ann`` in name order, each with the ``.txt`` of the same
stem) or a single ``.ann`` path. The document id is the file stem and the text is the
``.txt`` exactly (brat offsets count its characters; no passages: brat has none).
``.ann`` lines:

* ``T1<TAB>Type 0 5;10 15<TAB>text``: an entity, several ``start end`` fragments for a
  discontinuous mention; the text (fragments joined by a space, line breaks and tabs
  written as spaces) is checked against the ``.txt``.
* ``N1<TAB>Reference T1 MeSH:D000001<TAB>name``: a Link of T1 (``MeSH``, ``D000001``, name).
* ``R1<TAB>Type Arg1:T1 Arg2:T2``: a Relation between entities.
* ``A1<TAB>Negated T1`` / ``A2<TAB>Level T1 High`` (and legacy ``M``): attributes of an
  entity or relation (``True`` for binary ones).
* ``#1<TAB>AnnotatorNotes T1<TAB>text``: a note, kept as attribute ``AnnotatorNotes`` (a list
  when one target has several notes of a type).
* ``E`` events, ``*`` equivalences and relations with an event argument have no place in
  biotag's model: they are kept, losslessly, in ``Document.metadata["brat"]``
  (``{"events": [{"id", "type", "trigger", "arguments": [[role, id]...], "attributes"}],
  "relations": [...same shape, no trigger], "equivs": [[type, id, id...]]}``) and written
  back by :func:`write`; their triggers are ordinary entities.

A malformed line, a bad id, a reference to an unknown id, offsets outside the text or a text
that does not match raises a FormatError naming the ``.ann`` file, the line, the document
and the field; with ``skip_bad`` only that document is skipped.

Writing creates the folder (or, for a path ending in ``.ann``, that one pair from a single
document) with ``<id>.txt`` and ``<id>.ann`` per document. Entity ids that are not brat
``T<n>`` ids are renumbered. Attributes: ``True`` -> a binary ``A`` line, one word -> a
valued ``A`` line, other text -> a note, several texts -> several notes; any other value
(numbers, objects, text with line breaks) -> a note of type ``json:<name>`` holding its JSON,
which the reader decodes, so attributes round-trip exactly. brat cannot hold relations with
concept arguments (skipped, with one warning per call), passages, metadata other than the
``brat`` part, link scores or entity scores/sources.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

from biotag.document import Argument, Document, Entity, Link, Relation, Span
from biotag.errors import FormatError, InputError, ValidationError
from biotag.io import ErrorHandler, handle_bad
from biotag.io.text import file_name_for, iter_lines, read_whole

log = logging.getLogger(__name__)

# a note whose type is "json:<name>" holds attribute <name> as JSON (values brat cannot say)
JSON_NOTE_PREFIX = "json:"
METADATA_KEY = "brat"
_BRAT_ID = {"T": re.compile(r"T\d+"), "R": re.compile(r"R\d+")}
_ANNOTATION_ID = re.compile(r"[TNRAME#]\d+|\*")
_UNSAFE_TEXT = re.compile(r"[\t\r\n]")


def ann_text(text: str) -> str:
    """How a text appears in an ``.ann`` line (which cannot hold tabs or line breaks)."""
    return _UNSAFE_TEXT.sub(" ", text)


# -- reading -------------------------------------------------------------------------------
def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream Documents from a folder of ``.txt``/``.ann`` pairs or from one ``.ann``."""
    for ann_path in _ann_files(Path(path)):
        try:
            doc = read_pair(ann_path, encoding=encoding)
        except InputError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        yield doc


def _ann_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.ann") if p.is_file())
    if path.suffix in (".ann", ".txt"):
        return [path.with_suffix(".ann")]
    raise InputError("expected a folder of .txt/.ann pairs or an .ann file", path=str(path), field="format")


def read_pair(ann_path: Path, *, encoding: str = "utf-8") -> Document:
    """One Document from ``ann_path`` and the ``.txt`` beside it."""
    txt_path = ann_path.with_suffix(".txt")
    for required in (txt_path, ann_path):
        if not required.is_file():
            raise FormatError(f"missing {required.suffix} file of the pair", path=str(required), document=ann_path.stem)
    try:
        text = read_whole(txt_path, encoding)
    except FormatError as err:
        raise err.located(document=ann_path.stem) from None
    with open(txt_path, "rb") as fh:
        if fh.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            text = "\ufeff" + text  # brat counts a byte-order mark as a character of the text
    parser = _AnnParser(str(ann_path), ann_path.stem, text)
    for number, line in iter_lines(ann_path, encoding):
        if isinstance(line, FormatError):
            raise line.located(document=ann_path.stem)
        if line.strip():
            parser.parse_line(number, line)
    return parser.document()


class _AnnParser:
    """Parses ``.ann`` lines, then resolves the references between annotations."""

    def __init__(self, path: str, doc_id: str, text: str) -> None:
        self.path, self.doc_id, self.text = path, doc_id, text
        self.entities: dict[str, Entity] = {}
        self.relations: dict[str, Relation] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.event_relations: dict[str, dict[str, Any]] = {}
        self.equivs: list[list[str]] = []
        self.lines: dict[str, int] = {}  # annotation id -> its line, for errors
        self.pending: list[tuple[int, str, list[str]]] = []  # lines that refer to others

    def error(self, message: str, line: int, field: str) -> FormatError:
        return FormatError(message, path=self.path, line=line, document=self.doc_id, field=field)

    def parse_line(self, number: int, line: str) -> None:
        ann_id, tab, rest = line.partition("\t")
        if not tab:
            raise self.error(f"expected <id><TAB>..., got {line[:40]!r}", number, "line")
        kind = ann_id[:1]
        if not _ANNOTATION_ID.fullmatch(ann_id):
            expected = "T, N, R, A, M, E or # and a number, or *"
            raise self.error(f"bad annotation id {ann_id!r} (brat ids are {expected})", number, "id")
        if kind != "*":
            if ann_id in self.lines:
                raise self.error(f"annotation id {ann_id} is used twice (first at line {self.lines[ann_id]})", number, "id")
            self.lines[ann_id] = number
        fields = rest.split("\t")
        if kind == "T":
            self._textbound(number, ann_id, fields)
        else:
            self.pending.append((number, ann_id, fields))

    def _textbound(self, number: int, ann_id: str, fields: list[str]) -> None:
        if len(fields) < 2:
            raise self.error("a text-bound line needs <id><TAB><type> <start> <end><TAB><text>", number, "line")
        etype, _, offsets = fields[0].partition(" ")
        spans = []
        for fragment in offsets.split(";"):
            bounds = fragment.split()
            if len(bounds) != 2 or not all(b.isdigit() for b in bounds):
                raise self.error(f"{ann_id}: bad offsets {offsets!r}, expected 'start end[;start end...]'", number, "offsets")
            start, end = int(bounds[0]), int(bounds[1])
            if not start < end <= len(self.text):
                message = f"{ann_id}: span [{start}, {end}) is empty or past the end of the text ({len(self.text)})"
                raise self.error(message, number, "offsets")
            spans.append(Span(start, end))
        if not etype:
            raise self.error(f"{ann_id} has no type", number, "type")
        joined = " ".join(self.text[s.start : s.end] for s in spans)
        given = "\t".join(fields[1:])
        if given != ann_text(joined):
            message = f"{ann_id}: text {given!r} does not match the .txt {ann_text(joined)!r} at {offsets}"
            raise self.error(message, number, "text")
        self.entities[ann_id] = Entity(ann_id, etype, spans, joined)

    # second pass: lines that refer to other annotations
    def document(self) -> Document:
        for number, ann_id, fields in self.pending:
            if ann_id[0] in "RE":
                self._relation_or_event(number, ann_id, fields)
        self._check_references()
        handlers = {"N": self._normalisation, "A": self._attribute, "M": self._attribute, "#": self._note, "*": self._equiv}
        for number, ann_id, fields in self.pending:
            if ann_id[0] in handlers:
                handlers[ann_id[0]](number, ann_id, fields)
        brat = {"events": list(self.events.values()), "relations": list(self.event_relations.values()), "equivs": self.equivs}
        metadata = {METADATA_KEY: {k: v for k, v in brat.items() if v}} if any(brat.values()) else {}
        entities, relations = list(self.entities.values()), list(self.relations.values())
        doc = Document(self.doc_id, self.text, entities=entities, relations=relations, metadata=metadata)
        try:
            return doc.validate()
        except ValidationError as err:
            raise FormatError(err.message, path=self.path, document=self.doc_id, field=err.field) from None

    def _known(self, ref: str, number: int, field: str, kinds: str = "TRE") -> str:
        """``ref`` if it names an annotation of one of ``kinds``, else a FormatError."""
        tables = {"T": (self.entities,), "R": (self.relations, self.event_relations), "E": (self.events,)}
        if not (ref and ref[0] in kinds and any(ref in table for table in tables.get(ref[0], ()))):
            raise self.error(f"{ref!r} names no annotation this line can refer to", number, field)
        return ref

    def _arguments(self, number: int, tokens: list[str]) -> list[list[str]]:
        arguments = []
        for token in tokens:
            role, colon, ref = token.partition(":")
            if not (colon and role and ref):
                raise self.error(f"bad argument {token!r}, expected Role:ID", number, "arguments")
            arguments.append([role, ref])
        return arguments

    def _relation_or_event(self, number: int, ann_id: str, fields: list[str]) -> None:
        tokens = fields[0].split()
        if not tokens:
            raise self.error(f"{ann_id} has no type", number, "type")
        if ann_id[0] == "E":
            etype, colon, trigger = tokens[0].partition(":")
            if not (colon and etype):
                raise self.error(f"{ann_id}: expected Type:Trigger, got {tokens[0]!r}", number, "type")
            arguments = self._arguments(number, tokens[1:])
            self.events[ann_id] = {"id": ann_id, "type": etype, "trigger": trigger, "arguments": arguments}
            return
        arguments = self._arguments(number, tokens[1:])
        if all(ref.startswith("T") for _, ref in arguments):
            self.relations[ann_id] = Relation(ann_id, tokens[0], [Argument(role, entity_id=ref) for role, ref in arguments])
        else:
            self.event_relations[ann_id] = {"id": ann_id, "type": tokens[0], "arguments": arguments}

    def _check_references(self) -> None:
        for event in self.events.values():
            number = self.lines[event["id"]]
            self._known(event["trigger"], number, "trigger", "T")
            for _, ref in event["arguments"]:
                self._known(ref, number, "arguments", "TE")
        for relation in self.relations.values():
            for arg in relation.arguments:
                self._known(arg.entity_id or "", self.lines[relation.id], "arguments", "T")
        for relation in self.event_relations.values():
            for _, ref in relation["arguments"]:
                self._known(ref, self.lines[relation["id"]], "arguments", "TE")

    def _attributes_of(self, ref: str, number: int, field: str) -> dict[str, Any]:
        self._known(ref, number, field)
        if ref in self.entities:
            return self.entities[ref].attributes
        if ref in self.relations:
            return self.relations[ref].attributes
        holder = self.events.get(ref) or self.event_relations[ref]
        return holder.setdefault("attributes", {})

    def _normalisation(self, number: int, ann_id: str, fields: list[str]) -> None:
        tokens = fields[0].split()
        if len(tokens) != 3 or tokens[0] != "Reference":
            raise self.error(f"{ann_id}: expected 'Reference <T id> <DB:ID>'", number, "reference")
        target = self._known(tokens[1], number, "target", "T")
        ontology, colon, concept = tokens[2].partition(":")
        link = Link(ontology, concept) if colon and ontology and concept else Link("", tokens[2])
        link.name = "\t".join(fields[1:]) or None
        self.entities[target].links.append(link)

    def _attribute(self, number: int, ann_id: str, fields: list[str]) -> None:
        tokens = fields[0].split()
        if len(tokens) not in (2, 3):
            raise self.error(f"{ann_id}: expected '<name> <target id> [<value>]'", number, "attribute")
        attributes = self._attributes_of(tokens[1], number, "target")
        if tokens[0] in attributes:
            raise self.error(f"{ann_id}: {tokens[1]} already has attribute {tokens[0]!r}", number, "attribute")
        attributes[tokens[0]] = tokens[2] if len(tokens) == 3 else True

    def _note(self, number: int, ann_id: str, fields: list[str]) -> None:
        tokens = fields[0].split()
        if len(tokens) != 2:
            raise self.error(f"{ann_id}: expected '<note type> <target id><TAB><text>'", number, "note")
        attributes = self._attributes_of(tokens[1], number, "target")
        name, note = tokens[0], "\t".join(fields[1:])
        if name.startswith(JSON_NOTE_PREFIX):
            try:
                attributes[name[len(JSON_NOTE_PREFIX) :]] = json.loads(note)
                return
            except (ValueError, RecursionError):
                pass  # not written by biotag: an ordinary note
        held = attributes.get(name)
        attributes[name] = note if held is None else [*(held if isinstance(held, list) else [held]), note]

    def _equiv(self, number: int, ann_id: str, fields: list[str]) -> None:
        tokens = fields[0].split()
        if len(tokens) < 3:
            raise self.error("expected '*<TAB>Equiv <id> <id>...'", number, "equiv")
        for ref in tokens[1:]:
            self._known(ref, number, "equiv", "T")
        self.equivs.append(tokens)


# -- writing -------------------------------------------------------------------------------
def write(docs: Iterable[Document], path: str | Path, *, encoding: str = "utf-8") -> int:
    """Write ``<id>.txt`` + ``<id>.ann`` per document into the folder ``path`` (created);
    a path ending in ``.ann`` receives exactly one document. Returns how many."""
    if not isinstance(path, (str, Path)):
        raise TypeError("brat writes .txt/.ann pairs: pass a folder path (or one .ann path)")
    target = Path(path)
    single = target.suffix == ".ann"
    folder = target.parent if single else target
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    skipped = Counter()
    for doc in docs:
        stem = target.stem if single else file_name_for(doc.id)
        if stem in written:
            where = f"ids {written[stem]!r} and {doc.id!r} share the file name {stem}.ann"
            if single:
                where = f"{target.name} holds one document"
            raise ValidationError(f"cannot write this document: {where}", document=doc.id, field="id")
        writer = _AnnWriter(doc)
        lines = writer.lines()
        if writer.skipped_relations:
            skipped.update(relations=writer.skipped_relations, documents=1)
        (folder / f"{stem}.txt").write_text(doc.text, encoding=encoding, newline="")
        (folder / f"{stem}.ann").write_text("".join(f"{line}\n" for line in lines), encoding=encoding, newline="")
        written[stem] = doc.id
    if skipped:
        log.warning(
            "%d relation(s) with concept arguments in %d document(s) were not written: brat relations link annotations only",
            skipped["relations"],
            skipped["documents"],
        )
    return len(written)


def _brat_ids(ids: list[str], prefix: str, taken: set[str] = frozenset()) -> dict[str, str]:
    """Keep ``ids`` when they are brat ids (``T12``), else number them afresh."""
    if all(_BRAT_ID[prefix].fullmatch(i) for i in ids) and len(set(ids)) == len(ids) and not taken & set(ids):
        return {i: i for i in ids}
    fresh = (f"{prefix}{n}" for n in range(1, len(ids) + len(taken) + 2) if f"{prefix}{n}" not in taken)
    return {i: next(fresh) for i in ids}


class _AnnWriter:
    """The ``.ann`` lines of one Document."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.counters = {"N": 0, "A": 0, "#": 0}
        self.extra_lines: list[str] = []  # N, A and # lines, written after the annotations
        self.skipped_relations = 0  # relations with concept arguments: brat has no place for them

    def token(self, value: Any, field: str, separator: bool = False) -> str:
        """A type, role or attribute name: brat needs one non-empty word, without ':' where
        ':' separates it from an id (roles, event types)."""
        if not isinstance(value, str) or not value or re.search(r"[\s:]" if separator else r"\s", value):
            rule = "one word, no ':'" if separator else "one word"
            raise ValidationError(f"{value!r} cannot be written in brat ({rule})", document=self.doc.id, field=field)
        return value

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}{self.counters[prefix]}"

    def lines(self) -> list[str]:
        doc = self.doc
        entity_ids = _brat_ids([e.id for e in doc.entities], "T")
        try:
            brat = doc.metadata.get(METADATA_KEY, {})
            kept = self.kept_annotations(brat, entity_ids)
            event_relation_ids = {r["id"] for r in brat.get("relations", ())}
        except (AttributeError, TypeError, KeyError, ValueError):
            field = f"metadata.{METADATA_KEY}"
            raise ValidationError("not in the layout the brat reader writes", document=doc.id, field=field) from None
        grounded = [r for r in doc.relations if all(a.entity_id is not None for a in r.arguments)]
        self.skipped_relations = len(doc.relations) - len(grounded)
        relation_ids = _brat_ids([r.id for r in grounded], "R", event_relation_ids)
        out = []
        for e in doc.entities:
            tid = entity_ids[e.id]
            offsets = ";".join(f"{s.start} {s.end}" for s in e.spans)
            out.append(f"{tid}\t{self.token(e.type, 'entities.type')} {offsets}\t{ann_text(e.text)}")
            for link in e.links:
                self.normalisation(tid, link)
            self.attributes(tid, e.attributes)
        for r in grounded:
            args = "".join(f" {self.token(a.role, 'relations.arguments', True)}:{entity_ids[a.entity_id]}" for a in r.arguments)
            out.append(f"{relation_ids[r.id]}\t{self.token(r.type, 'relations.type')}{args}")
            self.attributes(relation_ids[r.id], r.attributes)
        return out + kept + self.extra_lines

    def kept_annotations(self, brat: dict[str, Any], entity_ids: dict[str, str]) -> list[str]:
        """Events, event relations and equivalences kept in the metadata by the reader."""
        out = []

        def arguments(args: list[list[str]]) -> str:
            return "".join(f" {self.token(role, 'arguments', True)}:{entity_ids.get(ref, ref)}" for role, ref in args)

        for event in brat.get("events", ()):
            trigger = entity_ids.get(event["trigger"], event["trigger"])
            event_type = self.token(event["type"], "events.type", True)
            out.append(f"{event['id']}\t{event_type}:{trigger}{arguments(event['arguments'])}")
            self.attributes(event["id"], event.get("attributes", {}))
        for relation in brat.get("relations", ()):
            out.append(f"{relation['id']}\t{self.token(relation['type'], 'relations.type')}{arguments(relation['arguments'])}")
            self.attributes(relation["id"], relation.get("attributes", {}))
        for equiv in brat.get("equivs", ()):
            out.append("*\t" + " ".join([equiv[0], *(entity_ids.get(ref, ref) for ref in equiv[1:])]))
        return out

    def normalisation(self, target: str, link: Link) -> None:
        reference = f"{link.ontology}:{link.id}" if link.ontology else link.id
        if not reference or re.search(r"\s", reference):
            message = f"link {reference!r} cannot be written in brat (one word)"
            raise ValidationError(message, document=self.doc.id, field="entities.links")
        self.extra_lines.append(f"{self.next_id('N')}\tReference {target} {reference}\t{ann_text(link.name or '')}")

    def attributes(self, target: str, attributes: dict[str, Any]) -> None:
        for name, value in attributes.items():
            name = self.token(name, "attributes")
            if value is True:
                self.extra_lines.append(f"{self.next_id('A')}\t{name} {target}")
            elif _is_word(value):
                self.extra_lines.append(f"{self.next_id('A')}\t{name} {target} {value}")
            elif name.startswith(JSON_NOTE_PREFIX):
                # a plain note of this name would read as JSON: write JSON under one more prefix
                self.extra_lines.append(self.json_note(name, target, value))
            elif isinstance(value, str) and not _UNSAFE_TEXT.search(value):
                self.extra_lines.append(f"{self.next_id('#')}\t{name} {target}\t{value}")
            elif _is_note_list(value):  # what several notes of one type read as
                for note in value:
                    self.extra_lines.append(f"{self.next_id('#')}\t{name} {target}\t{note}")
            else:  # JSON keeps the value exact on one line
                self.extra_lines.append(self.json_note(name, target, value))

    def json_note(self, name: str, target: str, value: Any) -> str:
        return f"{self.next_id('#')}\t{JSON_NOTE_PREFIX}{name} {target}\t{json.dumps(value, ensure_ascii=False)}"


def _is_word(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not re.search(r"\s", value)


def _is_note_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) and not _UNSAFE_TEXT.search(v) for v in value)
