"""The on-disk index of one ontology: SQLite for concepts and names, memory-mapped numpy
arrays for the vectorised parts. Never a pickle.

Layout of ``<index dir>/<name>/`` (format :data:`FORMAT_VERSION`)::

    index.json              name, format, types, priority, counts, sources, build time
    concepts.sqlite         concepts(row, id, name, alt_ids, xrefs, taxon, extra)
                            synonyms(concept, name)       every name of every concept
                            equivalents(word, equivalent, concepts)  (wordforms.py)
                            strings(row, text UNIQUE)     distinct normalised names
                            variants(key, string)         loose key -> normalised names
    string_concepts_ptr.npy concepts of string s: string_concepts[ptr[s]:ptr[s+1]],
    string_concepts.npy     best first (its preferred name, then the concept's prior)
    string_types.npy        type bits of a string (union over its concepts)
    concept_types.npy       type bits of a concept (bit i = types[i] of index.json)
    concept_taxon.npy       NCBI Taxonomy number of a gene's organism (0: none)
    ngram_{ptr,rows,weights,idf}.npy   3-gram TF-IDF posting lists (candidates.py)

An index is built into a temporary folder and renamed into place, so a reader never
sees half of one. :class:`OntologyIndex` reads ``index.json`` when opened and
everything else on first use; SQLite is opened read-only and the arrays memory-mapped,
so opening all indexes takes milliseconds and memory grows only with what is used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from biotag.errors import FormatError, InputError
from biotag.linking.candidates import NgramMatrix, search
from biotag.linking.normalize import loose_key, normalize
from biotag.linking.ontology import Concept
from biotag.linking.wordforms import learn_equivalents

log = logging.getLogger("biotag.linking")

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
DATABASE_FILE = "concepts.sqlite"
MAX_TYPES = 32


def default_index_dir() -> Path:
    """``$BIOTAG_INDEXES`` or ``~/.cache/biotag/indexes``."""
    env = os.environ.get("BIOTAG_INDEXES")
    return Path(env) if env else Path.home() / ".cache" / "biotag" / "indexes"


@dataclass(frozen=True)
class IndexInfo:
    """What ``index.json`` says about an index."""

    name: str
    types: tuple[str, ...]
    priority: int
    concepts: int
    strings: int
    description: str = ""
    prefixes: tuple[str, ...] = ()
    sources: tuple[dict, ...] = ()
    built: str = ""
    build_seconds: float = 0.0
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


# -- building ---------------------------------------------------------------------------
def _merged(concepts: Iterable[Concept]) -> list[Concept]:
    """Concepts by ID in first-seen order; a repeated ID adds its names, types and
    alternates to the first (a TSV may list one synonym per line)."""
    by_id: dict[str, Concept] = {}
    for concept in concepts:
        first = by_id.get(concept.id)
        if first is None:
            by_id[concept.id] = concept
            continue
        first.synonyms = (*first.synonyms, *(n for n in concept.names if n != first.name))
        first.types = tuple(dict.fromkeys((*first.types, *concept.types)))
        first.alt_ids = tuple(dict.fromkeys((*first.alt_ids, *concept.alt_ids)))
        first.xrefs = tuple(dict.fromkeys((*first.xrefs, *concept.xrefs)))
    return list(by_id.values())


def _type_bits(concepts: list[Concept], types: tuple[str, ...]) -> np.ndarray:
    bit = {t: 1 << i for i, t in enumerate(types)}
    return np.array([sum(bit[t] for t in set(c.types)) for c in concepts], dtype=np.uint32)


def _string_table(concepts: list[Concept]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct normalised names, and for each the concepts having it, ordered by
    (not the concept's preferred name, concept prior, concept row)."""
    row_of: dict[str, int] = {}
    strings: list[str] = []
    pairs: list[tuple[int, int, int, int]] = []  # string, not preferred, prior, concept
    for c_row, concept in enumerate(concepts):
        seen: set[int] = set()
        for i, name in enumerate(concept.names):
            key = normalize(name)
            if not key:
                continue
            s_row = row_of.get(key)
            if s_row is None:
                s_row = row_of[key] = len(strings)
                strings.append(key)
            if s_row not in seen:
                seen.add(s_row)
                pairs.append((s_row, int(i > 0), concept.prior, c_row))
    table = np.array(pairs, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((table[:, 3], table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    ptr = np.zeros(len(strings) + 1, np.int64)
    np.cumsum(np.bincount(table[:, 0], minlength=len(strings)), out=ptr[1:])
    return strings, ptr, table[:, 3].astype(np.int32)


_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE concepts(row INTEGER PRIMARY KEY, id TEXT NOT NULL, name TEXT NOT NULL, alt_ids TEXT, xrefs TEXT, taxon INTEGER, extra TEXT);
CREATE TABLE synonyms(concept INTEGER NOT NULL, name TEXT NOT NULL);
CREATE TABLE strings(row INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE variants(key TEXT NOT NULL, string INTEGER NOT NULL, PRIMARY KEY (key, string)) WITHOUT ROWID;
CREATE TABLE equivalents(word TEXT NOT NULL, equivalent TEXT NOT NULL, concepts INTEGER NOT NULL);
"""
_INDEXES = """
CREATE UNIQUE INDEX strings_text ON strings(text);
CREATE INDEX concepts_id ON concepts(id);
CREATE INDEX synonyms_concept ON synonyms(concept);
"""


def _write_database(path: Path, concepts: list[Concept], strings: list[str], info: IndexInfo) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.to_dict().items()])
        db.executemany(
            "INSERT INTO concepts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (row, c.id, c.name, " ".join(c.alt_ids) or None, " ".join(c.xrefs) or None, c.taxon, json.dumps(c.extra) if c.extra else None)
                for row, c in enumerate(concepts)
            ),
        )
        db.executemany("INSERT INTO synonyms VALUES (?, ?)", ((row, name) for row, c in enumerate(concepts) for name in c.names))
        db.executemany("INSERT INTO strings VALUES (?, ?)", enumerate(strings))
        db.executemany("INSERT OR IGNORE INTO variants VALUES (?, ?)", ((loose_key(s), row) for row, s in enumerate(strings)))
        db.executemany("INSERT INTO equivalents VALUES (?, ?, ?)", learn_equivalents(c.names for c in concepts))
        db.executescript(_INDEXES)
        db.commit()
    finally:
        db.close()


def build_index(
    name: str,
    concepts: Iterable[Concept],
    out_dir: str | Path | None = None,
    *,
    types: Iterable[str] | None = None,
    priority: int = 10,
    description: str = "",
    sources: Iterable[str | Path] = (),
) -> Path:
    """Build the index ``<out_dir>/<name>`` (replacing an older one) and return its path.

    ``types`` overrides the concepts' own types (a user's ontology: ``--types disease``).
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise InputError(f"{name!r} cannot name an index (a plain folder name is needed)", field="name")
    started = time.perf_counter()
    override = tuple(types) if types is not None else None
    merged = _merged(concepts)
    if not merged:
        raise InputError(f"ontology {name!r} has no concepts", field="ontology")
    if override is not None:
        for concept in merged:
            concept.types = override
    all_types = tuple(dict.fromkeys(t for c in merged for t in c.types))
    if not all_types:
        raise InputError(f"ontology {name!r}: its concepts serve no entity type (give types)", field="types")
    if len(all_types) > MAX_TYPES:
        raise InputError(f"ontology {name!r} has {len(all_types)} types; at most {MAX_TYPES}", field="types")
    strings, string_ptr, string_concepts = _string_table(merged)
    concept_types = _type_bits(merged, all_types)
    string_types = np.bitwise_or.reduceat(concept_types[string_concepts], string_ptr[:-1]) if strings else np.zeros(0, np.uint32)
    matrix = NgramMatrix.build(strings)
    sources_info = tuple({"path": str(p), "bytes": Path(p).stat().st_size, "modified": int(Path(p).stat().st_mtime)} for p in sources)

    out = Path(out_dir) if out_dir is not None else default_index_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = {
            "string_concepts_ptr": string_ptr,
            "string_concepts": string_concepts,
            "string_types": string_types.astype(np.uint32),
            "concept_types": concept_types,
            **{f"ngram_{a}": getattr(matrix, a) for a in NgramMatrix.ARRAYS},
        }
        if any(c.taxon for c in merged):
            arrays["concept_taxon"] = np.array([c.taxon or 0 for c in merged], dtype=np.int32)
        for key, array in arrays.items():
            np.save(tmp / f"{key}.npy", array, allow_pickle=False)
        info = IndexInfo(
            name=name,
            types=all_types,
            priority=priority,
            concepts=len(merged),
            strings=len(strings),
            description=description,
            prefixes=tuple(sorted({c.prefix for c in merged})),
            sources=sources_info,
            built=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        _write_database(tmp / DATABASE_FILE, merged, strings, info)
        info = IndexInfo(**{**info.__dict__, "build_seconds": round(time.perf_counter() - started, 2)})
        (tmp / INDEX_FILE).write_text(json.dumps(info.to_dict(), indent=1) + "\n")
        final = out / name
        if final.exists():
            old = out / f".{name}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("index %s: %d concepts, %d names, built in %.1fs", name, len(merged), len(strings), time.perf_counter() - started)
    return out / name


# -- reading ----------------------------------------------------------------------------
def read_info(path: str | Path) -> IndexInfo:
    """The ``index.json`` of an index folder; a clear error for a missing, foreign or
    outdated index."""
    path = Path(path)
    manifest = path / INDEX_FILE
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a biotag index (no index.json)", path=str(path)) from None
    except (OSError, ValueError) as exc:
        raise FormatError(f"unreadable index manifest: {exc}", path=str(manifest)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        found = data.get("format") if isinstance(data, dict) else None
        raise FormatError(
            f"index format {found!r}, this biotag reads format {FORMAT_VERSION}: rebuild it with biotag build-index",
            path=str(manifest),
            field="format",
        )
    types, priority = data.get("types"), data.get("priority")
    if not (isinstance(types, list) and types and all(isinstance(t, str) for t in types) and isinstance(priority, int)):
        raise FormatError("index manifest needs a list of type names and an integer priority", path=str(manifest), field="types")
    fields = IndexInfo.__dataclass_fields__
    return IndexInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


def list_indexes(index_dir: str | Path | None = None) -> list[Path]:
    """Index folders under ``index_dir`` (default :func:`default_index_dir`), by name."""
    root = Path(index_dir) if index_dir is not None else default_index_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / INDEX_FILE).is_file())


@dataclass(frozen=True, slots=True)
class ConceptRecord:
    id: str
    name: str
    alt_ids: tuple[str, ...]


class OntologyIndex:
    """One ontology's index, opened lazily (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.info = read_info(self.path)
        self.name = self.info.name
        self._type_bit = {t: 1 << i for i, t in enumerate(self.info.types)}
        self._local = threading.local()
        self._allowed: dict[int, np.ndarray | None] = {}
        self.concept_record = lru_cache(maxsize=100_000)(self._concept_record)

    def __repr__(self) -> str:
        return f"OntologyIndex({self.name!r}, {self.info.concepts} concepts, types={list(self.info.types)})"

    # lazily opened parts
    @property
    def db(self) -> sqlite3.Connection:
        """A read-only SQLite connection per thread (sqlite3 objects are not shared)."""
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"{(self.path / DATABASE_FILE).resolve().as_uri()}?mode=ro"
            try:
                db = self._local.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise FormatError(f"cannot open the index database: {exc}", path=str(self.path / DATABASE_FILE)) from None
        return db

    def _array(self, key: str) -> np.ndarray:
        path = self.path / f"{key}.npy"
        try:
            # a plain ndarray over the mapping: slicing a np.memmap costs a Python
            # subclass round trip per slice, too slow for posting-list loops
            return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise FormatError(f"cannot read index array: {exc}", path=str(path)) from None

    @cached_property
    def string_concepts_ptr(self) -> np.ndarray:
        return self._array("string_concepts_ptr")

    @cached_property
    def string_concepts(self) -> np.ndarray:
        return self._array("string_concepts")

    @cached_property
    def concept_types(self) -> np.ndarray:
        return self._array("concept_types")

    @cached_property
    def concept_taxon(self) -> np.ndarray | None:
        return self._array("concept_taxon") if (self.path / "concept_taxon.npy").is_file() else None

    @cached_property
    def matrix(self) -> NgramMatrix:
        arrays = {a: self._array(f"ngram_{a}") for a in NgramMatrix.ARRAYS}
        return NgramMatrix(**arrays, n_rows=self.info.strings)

    # queries
    def type_mask(self, entity_type: str | None) -> int:
        """The bit of ``entity_type`` (0 when the index does not serve it); ``None``
        means any type."""
        if entity_type is None:
            return (1 << len(self.info.types)) - 1
        return self._type_bit.get(entity_type, 0)

    def serves(self, entity_type: str) -> bool:
        return entity_type in self._type_bit

    def _allowed_strings(self, mask: int) -> np.ndarray | None:
        """Boolean mask of strings with a concept of the type (None: all are)."""
        if mask not in self._allowed:
            all_bits = (1 << len(self.info.types)) - 1
            self._allowed[mask] = None if len(self.info.types) == 1 or mask == all_bits else (self._array("string_types") & mask) != 0
        return self._allowed[mask]

    def exact(self, normalized: str) -> int | None:
        """The string row of a normalised name, if the ontology has it."""
        row = self.db.execute("SELECT row FROM strings WHERE text = ?", (normalized,)).fetchone()
        return None if row is None else row[0]

    def variants(self, keys: Sequence[str]) -> list[tuple[str, int, str]]:
        """``(key, string row, string)`` for every string whose loose key is one of
        ``keys``, in the order of ``keys`` (one query for all of them)."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        query = f"SELECT v.key, v.string, s.text FROM variants v JOIN strings s ON s.row = v.string WHERE v.key IN ({marks})"
        position = {key: i for i, key in enumerate(keys)}
        return sorted(self.db.execute(query, tuple(keys)).fetchall(), key=lambda found: (position[found[0]], found[1]))

    def texts(self, rows: Sequence[int]) -> dict[int, str]:
        """The normalised names of string rows (one query)."""
        marks = ",".join("?" * len(rows))
        return dict(self.db.execute(f"SELECT row, text FROM strings WHERE row IN ({marks})", tuple(int(r) for r in rows)))

    @cached_property
    def equivalents(self) -> dict[str, list[str]]:
        """Interchangeable words learned from the ontology, most frequent first."""
        out: dict[str, list[str]] = {}
        for word, other in self.db.execute("SELECT word, equivalent FROM equivalents ORDER BY concepts DESC"):
            out.setdefault(word, []).append(other)
        return out

    def concepts_of(self, string_row: int, mask: int) -> list[int]:
        """Concept rows named by a string, best first, of the types in ``mask``."""
        start, end = self.string_concepts_ptr[string_row], self.string_concepts_ptr[string_row + 1]
        rows = np.asarray(self.string_concepts[start:end])
        return rows[(self.concept_types[rows] & mask) != 0].tolist()

    def search(self, normalized: str, mask: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """String rows by 3-gram cosine to ``normalized`` (with a concept of ``mask``)."""
        return search(self.matrix, normalized, k, allowed=self._allowed_strings(mask))

    def _concept_record(self, row: int) -> ConceptRecord:
        found = self.db.execute("SELECT id, name, alt_ids FROM concepts WHERE row = ?", (int(row),)).fetchone()
        if found is None:
            raise FormatError(f"index has no concept row {row}", path=str(self.path / DATABASE_FILE))
        return ConceptRecord(found[0], found[1], tuple((found[2] or "").split()))

    def find(self, concept_id: str) -> ConceptRecord | None:
        """A concept by its identifier."""
        found = self.db.execute("SELECT row FROM concepts WHERE id = ?", (concept_id,)).fetchone()
        return None if found is None else self.concept_record(found[0])

    def synonyms(self, concept_id: str) -> list[str]:
        query = "SELECT s.name FROM synonyms s JOIN concepts c ON c.row = s.concept WHERE c.id = ? ORDER BY s.rowid"
        return [r[0] for r in self.db.execute(query, (concept_id,))]

    def taxon(self, concept_row: int) -> int:
        return 0 if self.concept_taxon is None else int(self.concept_taxon[concept_row])


def open_indexes(index_dir: str | Path | None = None, names: Iterable[str] | None = None) -> list[OntologyIndex]:
    """The indexes under ``index_dir`` (all, or those ``names``), by priority then name;
    an InputError says how to build them when there are none or a name is missing."""
    root = Path(index_dir) if index_dir is not None else default_index_dir()
    found = {p.name: p for p in list_indexes(root)}
    wanted = list(found) if names is None else [n.strip() for n in names]
    missing = [n for n in wanted if n not in found]
    if missing or not wanted:
        what = f"no index {', '.join(map(repr, missing))}" if missing else "no linking indexes"
        raise InputError(
            f"{what} in {root}; build them with `biotag build-index --ontology all` "
            "(`--source DIR` for dictionaries outside $BIOTAG_DATA/dictionaries; see docs/linking.md) "
            "or set BIOTAG_INDEXES to the folder holding them",
            path=str(root),
            field="indexes",
        )
    indexes = [OntologyIndex(found[n]) for n in wanted]
    return sorted(indexes, key=lambda index: (index.info.priority, index.name))
