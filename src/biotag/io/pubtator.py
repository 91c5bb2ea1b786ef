"""PubTator: title/abstract lines plus TAB-separated mention and relation lines.

::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>mention text<TAB>type[<TAB>concept ids[<TAB>extra...]]
    PMID<TAB>relation type<TAB>id1<TAB>id2[<TAB>extra...]

Documents are separated by a blank line (a title line also starts a new document).
``Document.text`` is ``title + " " + abstract`` -- the text PubTator offsets refer to --
with a ``"title"`` and an ``"abstract"`` passage. Every mention's text is checked
against the document text at its offsets; a mismatch is a FormatError naming file,
line, PMID and field ``text``, unless ``check_text=False``, which keeps the mention at
its offsets (``entity.text`` is then the document's text there) and stores the text
the file gives in ``entity.attributes["pubtator_text"]``. Some distributed corpora do
have such mismatches (GNormPlus, NLM-Gene, BioID, one in NCBI-disease train).

Concept IDs (the sixth column) become :class:`~biotag.document.Link` objects such that
``f"{link.ontology}:{link.id}"`` is the CURIE biotag's dictionaries use. The column is
split into several IDs at ``|`` and ``+`` (composite mentions, alternatives), ``,``
and ``;`` -- except for sequence variants, whose column is one ID: tmVar forms hold
all of these (``p|SUB|V|600|E``, ``c|SUB|G|1915|T,A``). ``-1``, ``-`` and empty
parts mean "no ID". Each part is read as:

=============================================  ===============================================
written as                                     Link(ontology, id)
=============================================  ===============================================
``MESH:D001943``, ``MeSH:...``                 ``MESH``, ``D001943``
``D001943``, ``C000657`` (bare MeSH UIDs)      ``MESH``, ``D001943``
``OMIM:114480``                                ``OMIM``, ``114480``
``CVCL_0030``, ``CVCL:0030``                   ``CVCL``, ``0030``
``rs121913529``                                ``dbSNP``, ``rs121913529``
``Gene:``/``GeneID:``/``NCBIGene:`` + number   ``NCBIGene``, number
``Tax:``/``NCBITaxon:`` + number               ``NCBITaxon``, number
``1956(Tax:9606)``                             ``NCBIGene``, ``1956``; the taxon goes to
                                               ``entity.attributes["taxa"]["1956"]``
any other ``PREFIX:local``                     ``PREFIX``, ``local``
a bare number or form, by the entity's type:
  Gene, GeneOrGeneProduct, FamilyName,         ``NCBIGene`` (GNormPlus, NLM-Gene, BioRED)
  DomainMotif, ChromosomeLocation, protein
  Species, OrganismTaxon                       ``NCBITaxon`` (S800, BioRED)
  Chemical, ChemicalEntity, Disease,           ``MESH`` (BC5CDR, NCBI-disease, BioRED)
  DiseaseOrPhenotypicFeature, SpecificDisease,
  DiseaseClass, Modifier, CompositeMention
  CellLine                                     ``CVCL``
  SequenceVariant, DNAMutation,                ``tmVar`` (normalised mutation form)
  ProteinMutation, SNP
  any other type                               ``unknown`` (or as ``ontologies=`` says)
=============================================  ===============================================

``ontologies={"MyType": "CHEBI"}`` adds or overrides entries of the by-type part.

Relation lines become :class:`~biotag.document.Relation` objects with arguments
``Arg1``/``Arg2``: an entity of the document when the column names an entity id,
otherwise a concept (the CURIE of the entity link the ID resolves to in this
document, e.g. ``MESH:D015738`` for BC5CDR's ``CID`` or ``NCBIGene:2950`` for BioRED;
the ID as written when no entity carries it).

Lossless round trip: the raw ID column (``attributes["pubtator_ids"]``; absent for
5-column lines), extra columns (``attributes["pubtator_extra"]``) and raw relation
arguments (``attributes["pubtator_args"]``) are kept; the writer writes them back as
long as they still describe the links / arguments, and formats links and concepts
itself otherwise. The writer ends every document with a blank line and writes ``\\n``
line breaks unless ``newline="\\r\\n"``; a file in that layout is reproduced byte for
byte. Line breaks inside a text (and tabs inside a mention) cannot be written and
become spaces, so offsets do not move; a discontinuous entity is written as its
covering span.
"""

from __future__ import annotations

import logging
import re
from itertools import chain
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping

from biotag.document import Argument, Document, Entity, Link, Relation, Span
from biotag.errors import FormatError
from biotag.io import ErrorHandler, handle_bad
from biotag.io.text import iter_lines, open_output

log = logging.getLogger(__name__)

# entity type (lower case) -> ontology of bare IDs
TYPE_ONTOLOGIES: dict[str, str] = {
    **dict.fromkeys("gene geneorgeneproduct familyname domainmotif chromosomelocation protein".split(), "NCBIGene"),
    **dict.fromkeys("species organismtaxon organism".split(), "NCBITaxon"),
    **dict.fromkeys(
        "chemical chemicalentity disease diseaseorphenotypicfeature specificdisease diseaseclass modifier "
        "compositemention".split(),
        "MESH",
    ),
    "cellline": "CVCL",
    **dict.fromkeys("sequencevariant dnamutation proteinmutation snp variant mutation".split(), "tmVar"),
}
UNKNOWN_ONTOLOGY = "unknown"
# prefixes as corpora write them (lower case) -> the CURIE prefix of biotag's dictionaries
PREFIX_ALIASES = {
    **dict.fromkeys(("gene", "geneid", "ncbigene"), "NCBIGene"),
    **dict.fromkeys(("tax", "taxonomy", "ncbitaxon"), "NCBITaxon"),
    **dict.fromkeys(("cvcl", "cellosaurus"), "CVCL"),
    **{"mesh": "MESH", "omim": "OMIM", "dbsnp": "dbSNP", "tmvar": "tmVar"},
}
NO_ID = frozenset({"", "-", "-1"})

_ID_SEPARATORS = re.compile(r"[|+,;]")
_MESH_UID = re.compile(r"[DC]\d{6,9}")
_DBSNP = re.compile(r"rs\d+")
_CELLOSAURUS = re.compile(r"CVCL_(\w+)")
_CURIE = re.compile(r"([A-Za-z][\w.]*):(\S.*)")
_WITH_TAXON = re.compile(r"(\w+)\([Tt]ax:(\d+)\)")
_NUMBER = re.compile(r"-?\d+")


# -- concept IDs ----------------------------------------------------------------------
def _bare_ontology(entity_type: str, ontologies: Mapping[str, str]) -> str:
    key = entity_type.lower()
    return ontologies.get(key) or TYPE_ONTOLOGIES.get(key, UNKNOWN_ONTOLOGY)


def _is_variant(entity_type: str, ontologies: Mapping[str, str]) -> bool:
    return _bare_ontology(entity_type, ontologies) == "tmVar"


def _id_parts(raw: str, entity_type: str, ontologies: Mapping[str, str]) -> list[str]:
    """The ID column cut into single IDs (a variant's column is one ID)."""
    return [raw] if _is_variant(entity_type, ontologies) else _ID_SEPARATORS.split(raw)


def parse_id(token: str, entity_type: str | None, ontologies: Mapping[str, str] = {}) -> tuple[Link, str | None] | None:
    """One ID as written in a PubTator file -> (Link, taxon or None); None when the
    ontology cannot be told (no prefix and no entity type to go by)."""
    token = token.strip()
    variant = entity_type is not None and _is_variant(entity_type, ontologies)
    if _DBSNP.fullmatch(token):
        return Link("dbSNP", token), None
    if (m := _CELLOSAURUS.fullmatch(token)) is not None:
        return Link("CVCL", m[1]), None
    if not variant:
        if _MESH_UID.fullmatch(token):
            return Link("MESH", token), None
        if (m := _WITH_TAXON.fullmatch(token)) is not None:
            return Link("NCBIGene", m[1]), m[2]
        if (m := _CURIE.fullmatch(token)) is not None:
            return Link(PREFIX_ALIASES.get(m[1].lower(), m[1]), m[2]), None
    if entity_type is None:
        return None
    return Link(_bare_ontology(entity_type, ontologies), token), None


def parse_ids(raw: str, entity_type: str, ontologies: Mapping[str, str] = {}) -> tuple[list[Link], dict[str, str]]:
    """The links (and gene taxa, gene id -> taxon id) of an ID column."""
    links: list[Link] = []
    taxa: dict[str, str] = {}
    for token in _id_parts(raw, entity_type, ontologies):
        if token.strip() in NO_ID:
            continue
        link, taxon = parse_id(token, entity_type, ontologies)  # type: ignore[misc]  # never None with a type
        links.append(link)
        if taxon is not None:
            taxa[link.id] = taxon
    return links, taxa


def format_id(link: Link, entity_type: str, taxon: str | None = None, ontologies: Mapping[str, str] = {}) -> str:
    """The written form of a link that :func:`parse_id` reads back as the same link."""
    if link.ontology == "CVCL":
        candidates = [f"CVCL_{link.id}"]
    elif link.ontology == "NCBIGene" and taxon is not None:
        candidates = [f"{link.id}(Tax:{taxon})"]
    elif link.ontology in ("MESH", "OMIM"):
        candidates = [f"{link.ontology}:{link.id}"]
    else:
        candidates = [link.id, f"{link.ontology}:{link.id}"]
    for written in candidates:
        if _id_parts(written, entity_type, ontologies) != [written]:
            continue
        parsed = parse_id(written, entity_type, ontologies)
        # PubTator has no column for a link's name or score: only the identifier must survive.
        if parsed is not None and (parsed[0].ontology, parsed[0].id, parsed[1]) == (link.ontology, link.id, taxon):
            return written
    raise FormatError(f"concept ID {link.ontology}:{link.id} cannot be written in PubTator's ID column", field="links")


# -- reading --------------------------------------------------------------------------
def _split_header(line: str) -> tuple[str, str, str] | None:
    """``(pmid, "t" or "a", text)`` for a title or abstract line, else None."""
    parts = line.split("|", 2)
    if len(parts) == 3 and parts[1] in ("t", "a") and "\t" not in parts[0]:
        return parts[0], parts[1], parts[2]
    return None


def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    check_text: bool = True,
    source: str | None = "gold",
    ontologies: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream Documents from a PubTator file (see the module docstring for options)."""
    parser = _BlockParser(str(path), check_text, source, {k.lower(): v for k, v in (ontologies or {}).items()})
    block: list[tuple[int, str]] = []
    broken: FormatError | None = None  # a line of the current block could not be decoded
    for number, line in chain(iter_lines(path, encoding), [(0, "")]):  # the sentinel ends the last block
        if isinstance(line, FormatError):
            broken = broken or line
            continue
        blank = not line.strip()
        if blank or _is_title(line):
            if block or broken:
                try:
                    if broken is not None:
                        raise broken.located(document=_block_pmid(block))
                    doc = parser.parse(block)
                except FormatError as err:
                    handle_bad(err, skip_bad, on_error)
                else:
                    yield doc
                block, broken = [], None
        if not blank:
            block.append((number, line))


def _is_title(line: str) -> bool:
    header = _split_header(line)
    return header is not None and header[1] == "t"


def _block_pmid(block: list[tuple[int, str]]) -> str | None:
    if not block:
        return None
    header = _split_header(block[0][1])
    return header[0] if header else block[0][1].split("\t", 1)[0]


def _concept_index(entities: Iterable[Entity], ontologies: Mapping[str, str]) -> dict[str, str]:
    """ID as written in the document's mention lines -> CURIE of the link it stands for,
    so relation lines can be resolved with the entity types' help (BioRED's bare gene
    and taxon numbers)."""
    index: dict[str, str] = {}
    for entity in entities:
        raw = entity.attributes.get("pubtator_ids")
        if not isinstance(raw, str):
            continue
        for token in _id_parts(raw, entity.type, ontologies):
            token = token.strip()
            if token not in NO_ID and token not in index:
                link, _ = parse_id(token, entity.type, ontologies)  # type: ignore[misc]
                index[token] = f"{link.ontology}:{link.id}"
    return index


def _resolve_argument(role: str, raw: str, entity_ids: set[str], index: Mapping[str, str]) -> Argument:
    token = raw.strip()
    if token in entity_ids:
        return Argument(role, entity_id=token)
    if token in index:
        return Argument(role, concept=index[token])
    parsed = parse_id(token, None)
    return Argument(role, concept=token if parsed is None else f"{parsed[0].ontology}:{parsed[0].id}")


ROLES = ("Arg1", "Arg2")


class _BlockParser:
    """Turns the lines of one document block into a Document (or a FormatError)."""

    def __init__(self, path: str, check_text: bool, source: str | None, ontologies: Mapping[str, str]) -> None:
        self.path = path
        self.check_text = check_text
        self.source = source
        self.ontologies = ontologies

    def error(self, message: str, line: int, pmid: str | None, field: str) -> FormatError:
        return FormatError(message, path=self.path, line=line, document=pmid, field=field)

    def parse(self, block: list[tuple[int, str]]) -> Document:
        first_line, first = block[0]
        header = _split_header(first)
        if header is None or header[1] != "t":
            found = "an abstract line without a title line" if header else f"{first[:60]!r}"
            raise self.error(f"expected 'PMID|t|title' to start a document, found {found}", first_line, _block_pmid(block), "title")
        pmid, _, title = header
        if not pmid.strip():
            raise self.error("empty PMID", first_line, None, "pmid")
        if len(block) < 2:
            raise self.error("the document ends after its title line: no 'PMID|a|abstract' line (truncated?)", first_line, pmid, "abstract")
        second_line, second = block[1]
        abstract_header = _split_header(second)
        if abstract_header is None or abstract_header[1] != "a":
            raise self.error(f"expected 'PMID|a|abstract' after the title line, found {second[:60]!r}", second_line, pmid, "abstract")
        if abstract_header[0] != pmid:
            raise self.error(f"abstract line has PMID {abstract_header[0]!r}, title line {pmid!r}", second_line, pmid, "pmid")
        doc = Document.from_passages(pmid, [("title", title), ("abstract", abstract_header[2])])
        relation_lines: list[tuple[int, list[str]]] = []
        for number, line in block[2:]:
            columns = line.split("\t")
            if columns[0] != pmid:
                raise self.error(f"annotation line for PMID {columns[0][:40]!r} inside document {pmid!r}", number, pmid, "pmid")
            if len(columns) >= 2 and _NUMBER.match(columns[1]):
                doc.entities.append(self._mention(columns, number, doc))
            else:
                relation_lines.append((number, columns))
        # relations are resolved against all the mentions, wherever their lines are
        index = _concept_index(doc.entities, self.ontologies) if relation_lines else {}
        for number, columns in relation_lines:
            doc.relations.append(self._relation(columns, number, doc, index))
        return doc

    def _offset(self, value: str, number: int, pmid: str, field: str) -> int:
        if not (value.isascii() and value.isdigit()):
            raise self.error(f"{field} offset {value!r} is not a non-negative integer", number, pmid, field)
        return int(value)

    def _mention(self, columns: list[str], number: int, doc: Document) -> Entity:
        pmid = doc.id
        if len(columns) < 5:
            problem = f"a mention line needs at least 5 TAB-separated fields (PMID, start, end, text, type), found {len(columns)}"
            raise self.error(problem, number, pmid, "fields")
        start = self._offset(columns[1], number, pmid, "start")
        end = self._offset(columns[2], number, pmid, "end")
        if start >= end:
            raise self.error(f"start {start} is not before end {end}", number, pmid, "end")
        if end > len(doc.text):
            raise self.error(f"end {end} is past the end of the text ({len(doc.text)} characters)", number, pmid, "end")
        written, actual = columns[3], doc.text[start:end]
        attributes: dict = {}
        if written != actual:
            if self.check_text:
                raise self.error(f"mention text {written!r} differs from the text at [{start}, {end}): {actual!r}", number, pmid, "text")
            attributes["pubtator_text"] = written
        entity_type = columns[4]
        if not entity_type.strip():
            raise self.error("empty entity type", number, pmid, "type")
        links: list[Link] = []
        if len(columns) >= 6:
            attributes["pubtator_ids"] = columns[5]
            links, taxa = parse_ids(columns[5], entity_type, self.ontologies)
            if taxa:
                attributes["taxa"] = taxa
        if len(columns) >= 7:
            attributes["pubtator_extra"] = columns[6:]
        entity_id = f"T{len(doc.entities) + 1}"
        return Entity(entity_id, entity_type, [Span(start, end)], actual, source=self.source, links=links, attributes=attributes)

    def _relation(self, columns: list[str], number: int, doc: Document, index: Mapping[str, str]) -> Relation:
        pmid = doc.id
        if len(columns) < 4:
            problem = "expected a mention line (PMID, start, end, text, type[, ids]) or a relation line (PMID, type, id1, id2)"
            raise self.error(f"{problem}, found {len(columns)} TAB-separated fields", number, pmid, "fields")
        relation_type, raw_arguments = columns[1], columns[2:4]
        if not relation_type.strip():
            raise self.error("empty relation type", number, pmid, "type")
        if any(not raw.strip() for raw in raw_arguments):
            raise self.error("empty relation argument", number, pmid, "arguments")
        entity_ids = {e.id for e in doc.entities}
        attributes: dict = {"pubtator_args": raw_arguments}
        if len(columns) > 4:
            attributes["pubtator_extra"] = columns[4:]
        arguments = [_resolve_argument(role, raw, entity_ids, index) for role, raw in zip(ROLES, raw_arguments)]
        return Relation(f"R{len(doc.relations) + 1}", relation_type, arguments, source=self.source, attributes=attributes)


# -- writing --------------------------------------------------------------------------
_UNWRITABLE = re.compile(r"[\t\r\n]")
_LINE_BREAK = re.compile(r"[\r\n]")


def write(
    docs: Iterable[Document],
    path: str | Path | IO[str],
    *,
    newline: str = "\n",
    types: Iterable[str] | None = None,
    ontologies: Mapping[str, str] | None = None,
) -> int:
    """Write Documents in PubTator format; returns how many. ``types`` restricts the
    entity types written (relations naming a left-out entity are left out too)."""
    if newline not in ("\n", "\r\n"):
        raise ValueError(f"newline must be '\\n' or '\\r\\n', got {newline!r}")
    wanted = None if types is None else frozenset(types)
    lowered = {k.lower(): v for k, v in (ontologies or {}).items()}
    count = 0
    with open_output(path) as out:
        for doc in docs:
            out.write(newline.join(_document_lines(doc, wanted, lowered)))
            out.write(newline * 2)
            count += 1
    return count


def _check_field(doc: Document, value: str, field: str, what: str) -> str:
    if not value or _UNWRITABLE.search(value):
        raise FormatError(f"{what} {value!r} is empty or holds a tab or line break", document=doc.id, field=field)
    return value


def _document_lines(doc: Document, wanted: frozenset[str] | None, ontologies: Mapping[str, str]) -> list[str]:
    pmid = _check_field(doc, doc.id, "id", "document id")
    if "|" in pmid:
        raise FormatError(f"document id {pmid!r} holds '|', which PubTator uses as separator", document=doc.id, field="id")
    text = _LINE_BREAK.sub(" ", doc.text)
    entities = [e for e in doc.entities if wanted is None or e.type in wanted]
    if any("\t" in text[e.start : e.end] and _raw_mention_text(e) is None for e in entities):  # it would cut a mention line
        text = text.replace("\t", " ")
    if text != doc.text:
        log.debug("document %s: line breaks (and tabs inside mentions) written as spaces", doc.id)
    cut = _title_end(doc, text)
    lines = [f"{pmid}|t|{text[:cut]}", f"{pmid}|a|{text[cut + 1:]}"]
    written_ids: dict[str, str] = {}  # entity id -> the T<n> the reader will give it
    discontinuous = 0
    for entity in entities:
        discontinuous += entity.is_discontinuous
        written_ids[entity.id] = f"T{len(written_ids) + 1}"
        lines.append(_mention_line(doc, pmid, entity, text, ontologies))
    if discontinuous:
        log.warning("document %s: %d discontinuous entities written as their covering span", doc.id, discontinuous)
    index = _concept_index(doc.entities, ontologies) if doc.relations else {}
    skipped = 0
    for relation in doc.relations:
        line = _relation_line(doc, pmid, relation, written_ids, index)
        if line is None:
            skipped += 1
        else:
            lines.append(line)
    if skipped:
        log.warning("document %s: %d relations between entities of types not written were left out", doc.id, skipped)
    return lines


def _title_end(doc: Document, text: str) -> int:
    """Where the title ends: the end of the first passage if a separator follows it,
    else the first line break, else the end of the text (the abstract is then empty)."""
    if doc.passages and doc.passages[0].start == 0:
        end = doc.passages[0].end
        if end == len(text) or (end < len(text) and text[end] == " "):
            return end
    newline = doc.text.find("\n")
    return newline if newline >= 0 else len(text)


def _raw_mention_text(entity: Entity) -> str | None:
    """The mention text as a PubTator file gave it, when it differed from the document."""
    raw = entity.attributes.get("pubtator_text")
    return raw if isinstance(raw, str) and not _UNWRITABLE.search(raw) else None


def _mention_line(doc: Document, pmid: str, entity: Entity, text: str, ontologies: Mapping[str, str]) -> str:
    start, end = entity.start, entity.end
    written = _raw_mention_text(entity)
    if written is None:
        written = text[start:end]
    columns = [pmid, str(start), str(end), written, _check_field(doc, entity.type, "entities.type", f"entity {entity.id}: type")]
    try:
        ids = _ids_column(entity, ontologies)
    except FormatError as err:
        raise err.located(document=doc.id) from None
    extra = _extra_columns(doc, entity.attributes, f"entity {entity.id}")
    if ids is not None or extra:
        columns.append(ids or "")
    return "\t".join(columns + extra)


def _extra_columns(doc: Document, attributes: Mapping, what: str) -> list[str]:
    extra = [str(x) for x in attributes.get("pubtator_extra") or []]
    for value in extra:
        if _UNWRITABLE.search(value):
            raise FormatError(f"{what}: extra column {value!r} holds a tab or line break", document=doc.id, field="attributes")
    return extra


def _ids_column(entity: Entity, ontologies: Mapping[str, str]) -> str | None:
    """The raw ID column if it still describes the entity's links, else one formatted
    from the links (None: no links, no column)."""
    raw = entity.attributes.get("pubtator_ids")
    taxa = entity.attributes.get("taxa") or {}
    if isinstance(raw, str) and not _UNWRITABLE.search(raw) and parse_ids(raw, entity.type, ontologies) == (entity.links, taxa):
        return raw
    if not entity.links:
        return None
    return ",".join(format_id(link, entity.type, taxa.get(link.id), ontologies) for link in entity.links)


def _relation_line(
    doc: Document, pmid: str, relation: Relation, written_ids: Mapping[str, str], index: Mapping[str, str]
) -> str | None:
    if len(relation.arguments) != 2:
        problem = f"relation {relation.id} has {len(relation.arguments)} arguments; PubTator relations have 2"
        raise FormatError(problem, document=doc.id, field="relations.arguments")
    relation_type = _check_field(doc, relation.type, "relations.type", f"relation {relation.id}: type")
    if _NUMBER.match(relation_type):
        problem = f"relation {relation.id}: type {relation_type!r} would read as a mention offset"
        raise FormatError(problem, document=doc.id, field="relations.type")
    if any(a.entity_id is not None and a.entity_id not in written_ids for a in relation.arguments):
        return None
    extra = _extra_columns(doc, relation.attributes, f"relation {relation.id}")
    expected = [(written_ids.get(a.entity_id), a.concept) for a in relation.arguments]  # type: ignore[arg-type]
    raw = relation.attributes.get("pubtator_args")
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) and x.strip() for x in raw):
        resolved = [_resolve_argument("", x, set(written_ids.values()), index) for x in raw]
        if [(a.entity_id, a.concept) for a in resolved] == expected:
            return "\t".join([pmid, relation_type, *raw, *extra])
    arguments = [entity_id if entity_id is not None else str(concept) for entity_id, concept in expected]
    for value in arguments:
        _check_field(doc, value, "relations.arguments", f"relation {relation.id}: argument")
    return "\t".join([pmid, relation_type, *arguments, *extra])
