"""Concepts and the two generic ontology formats every user can write: TSV and OBO.

A :class:`Concept` is what linking needs of an ontology entry: its identifier as a CURIE
in the form the corpora write it (``MESH:D001943``, ``OMIM:114480``,
``NCBIGene:672``, ``NCBITaxon:9606``, ``CVCL:0030``, ``CL:0000236``...), a preferred
name, synonyms and the biotag entity types it can be the identity of. Parsers of the
dictionaries biotag knows by name live in :mod:`biotag.linking.sources`.

Generic TSV (``biotag add-ontology my.tsv``)::

    id<TAB>name<TAB>synonym|synonym|...

one concept per line; the synonyms column may be missing or empty; a first line
starting with ``id<TAB>`` is a header; ``#`` lines and blank lines are skipped. IDs
without a prefix get ``prefix:`` when one is given.

OBO 1.2/1.4 (``.obo``, also gzipped): ``[Term]`` stanzas with ``id``, ``name``,
``synonym: "text" SCOPE [...]`` (EXACT and RELATED by default), ``alt_id`` and
``xref``; obsolete terms are skipped.

Both readers raise a :class:`~biotag.errors.FormatError` naming the file, line and field
of the first malformed line.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TextIO

from biotag.errors import FormatError, InputError

CURIE = re.compile(r"[A-Za-z][\w.\-]*:\S+")
DEFAULT_SYNONYM_SCOPES = ("EXACT", "RELATED")


@dataclass(slots=True)
class Concept:
    """One ontology entry. ``prior`` orders concepts that share a name (lower wins: a
    MeSH descriptor before a supplementary record, a human gene before a mouse one);
    ``taxon`` is the NCBI Taxonomy number of a gene's organism."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    alt_ids: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = ()
    taxon: int | None = None
    prior: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The preferred name then the synonyms, without repeats or empty strings."""
        seen: dict[str, None] = {}
        for name in (self.name, *self.synonyms):
            name = name.strip()
            if name:
                seen.setdefault(name, None)
        return list(seen)

    @property
    def prefix(self) -> str:
        return self.id.split(":", 1)[0]


def split_curie(curie: str) -> tuple[str, str]:
    """``("MESH", "D001943")`` from ``MESH:D001943`` (a :class:`~biotag.document.Link`'s
    ontology and id)."""
    prefix, _, local = curie.partition(":")
    return prefix, local


def open_text(path: str | Path) -> TextIO:
    """A text stream over a plain or gzip-compressed UTF-8 file, with a clear error when
    it cannot be opened."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot open the ontology file: {exc.strerror or exc}", path=str(path)) from None


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its line break)`` for every line of a file; decoding
    errors become a FormatError naming the line."""
    number = 0
    with open_text(path) as stream:
        try:
            for number, line in enumerate(stream, 1):
                yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text ({exc.reason})", path=str(path), line=number + 1) from None
        except (OSError, EOFError) as exc:  # truncated gzip
            raise FormatError(f"cannot read on: {exc}", path=str(path), line=number + 1) from None


def with_prefix(identifier: str, prefix: str | None, path: str | Path, line: int) -> str:
    """``identifier`` as a CURIE: kept when it has a prefix, else ``prefix:identifier``."""
    identifier = identifier.strip()
    if CURIE.fullmatch(identifier):
        return identifier
    if prefix and identifier and not any(c.isspace() for c in identifier):
        return f"{prefix}:{identifier}"
    hint = " (give a prefix for bare IDs)" if not prefix else ""
    raise FormatError(f"{identifier!r} is not an identifier of the form PREFIX:ID{hint}", path=str(path), line=line, field="id")


def split_list(value: str, separator: str = "|") -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(separator) if part.strip())


# -- generic TSV ------------------------------------------------------------------------
def read_tsv(
    path: str | Path,
    *,
    types: Iterable[str] = (),
    prefix: str | None = None,
    synonym_separator: str = "|",
    xref_column: int | None = None,
) -> Iterator[Concept]:
    """Concepts of a ``id<TAB>name<TAB>synonyms`` file (see the module docstring);
    ``xref_column`` is the 0-based column holding ``|``-joined cross-references."""
    types = tuple(types)
    for number, line in numbered_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        if number == 1 and columns[0].strip().lower() == "id":
            continue
        if len(columns) < 2 or not columns[1].strip():
            raise FormatError("expected id<TAB>name[<TAB>synonym|synonym...]: the name is missing", path=str(path), line=number, field="name")
        synonyms = split_list(columns[2], synonym_separator) if len(columns) > 2 else ()
        xrefs = split_list(columns[xref_column]) if xref_column is not None and len(columns) > xref_column else ()
        yield Concept(with_prefix(columns[0], prefix, path, number), columns[1].strip(), synonyms, types, xrefs=xrefs)


# -- OBO --------------------------------------------------------------------------------
_OBO_TAG = re.compile(r"([A-Za-z_\-]+):\s?(.*)")
_OBO_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(\S+)?')
_OBO_TRAILING_MODIFIERS = re.compile(r"\s*(\{[^}]*\})?\s*(!.*)?$")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": " ", "t": " "}.get(m[1], m[1]), text)


class _OboStanza:
    def __init__(self, kind: str, line: int) -> None:
        self.kind, self.line = kind, line
        self.tags: dict[str, list[tuple[str, int]]] = {}

    def add(self, tag: str, value: str, line: int) -> None:
        self.tags.setdefault(tag, []).append((value, line))

    def first(self, tag: str) -> str | None:
        values = self.tags.get(tag)
        return values[0][0] if values else None


def _obo_stanzas(path: str | Path) -> Iterator[_OboStanza]:
    stanza: _OboStanza | None = None
    for number, line in numbered_lines(path):
        stripped = line.strip()
        if not stripped or stripped.startswith("!"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            if stanza is not None:
                yield stanza
            stanza = _OboStanza(stripped[1:-1], number)
            continue
        if stanza is None:
            continue  # header tags (format-version, ontology...) say nothing about terms
        match = _OBO_TAG.match(stripped)
        if match is None:
            raise FormatError(f"not a 'tag: value' line: {stripped[:60]!r}", path=str(path), line=number, field="obo")
        stanza.add(match[1], match[2], number)
    if stanza is not None:
        yield stanza


def _obo_value(value: str) -> str:
    """A plain tag value without its trailing ``{qualifiers}`` and ``! comment``."""
    return _OBO_TRAILING_MODIFIERS.sub("", value).strip()


def read_obo(
    path: str | Path,
    *,
    types: Iterable[str] = (),
    id_prefixes: Iterable[str] | None = None,
    synonym_scopes: Iterable[str] = DEFAULT_SYNONYM_SCOPES,
) -> Iterator[Concept]:
    """Concepts of the ``[Term]`` stanzas of an OBO file; ``id_prefixes`` keeps only
    terms of those ID spaces (``("HP",)``: HPO without imported terms)."""
    types = tuple(types)
    scopes = {s.upper() for s in synonym_scopes}
    prefixes = None if id_prefixes is None else {p.upper() for p in id_prefixes}
    for stanza in _obo_stanzas(path):
        if stanza.kind != "Term" or (stanza.first("is_obsolete") or "").strip() == "true":
            continue
        identifier = _obo_value(stanza.first("id") or "")
        if not CURIE.fullmatch(identifier):
            raise FormatError(f"term without a valid id ({identifier!r})", path=str(path), line=stanza.line, field="id")
        if prefixes is not None and identifier.split(":", 1)[0].upper() not in prefixes:
            continue
        name = _obo_value(stanza.first("name") or "")
        if not name:
            raise FormatError(f"term {identifier} has no name", path=str(path), line=stanza.line, field="name")
        synonyms = []
        for value, line in stanza.tags.get("synonym", ()):
            match = _OBO_QUOTED.match(value.strip())
            if match is None:
                raise FormatError(f'synonym of {identifier} is not "text" SCOPE', path=str(path), line=line, field="synonym")
            if (match[2] or "RELATED").upper() in scopes:
                synonyms.append(_unescape(match[1]))
        alt_ids = tuple(_obo_value(v) for v, _ in stanza.tags.get("alt_id", ()))
        xrefs = tuple(_obo_value(v).split(" ", 1)[0] for v, _ in stanza.tags.get("xref", ()))
        yield Concept(identifier, name, tuple(synonyms), types, alt_ids=alt_ids, xrefs=xrefs)


def read_ontology_file(path: str | Path, *, types: Iterable[str] = (), prefix: str | None = None, format: str | None = None) -> Iterator[Concept]:
    """Concepts of a user's ontology file: OBO when ``format`` says so or the name ends
    in ``.obo`` / ``.obo.gz``, otherwise the generic TSV."""
    name = Path(path).name.lower()
    fmt = (format or ("obo" if name.endswith((".obo", ".obo.gz")) else "tsv")).lower()
    if fmt == "obo":
        return read_obo(path, types=types)
    if fmt == "tsv":
        return read_tsv(path, types=types, prefix=prefix)
    raise InputError(f"unknown ontology format {format!r}; expected tsv or obo", path=str(path), field="format")
