"""Approximate candidates: character 3-gram TF-IDF cosine over an inverted index.

This is scispaCy's candidate generator idea (char-3-gram TF-IDF vectors of every
dictionary name, nearest neighbours of the mention's vector) without its 11 GB of RAM:

* Names are already normalised (:mod:`biotag.linking.normalize`) to ``[a-z0-9 ]``, so a
  3-gram of ``" " + name + " "`` over that 38-letter alphabet (plus one letter for
  anything else) *is* its feature number: no vocabulary to store, and vectorising
  millions of names is a few numpy passes.
* Weights are sublinear TF x smoothed IDF, L2-normalised per name (sklearn's
  ``TfidfVectorizer(sublinear_tf=True)`` formula).
* The matrix is stored by feature (CSC: a posting list of names per 3-gram, rows
  sorted), as plain ``.npy`` files opened memory-mapped: loading is instant, and only
  the posting lists a query touches are read from disk.
* A query adds up the posting lists of its rarest 3-grams, until a budget of postings
  is spent (the frequent 3-grams -- ``ase``, `` ca`` -- carry little IDF weight and cost
  the most); the best ``pool`` names found are then rescored *exactly*, the skipped
  3-grams' contributions found by binary search in their sorted posting lists. Scores
  are exact cosines; only a name sharing none of the query's rare 3-grams can be missed.

:class:`Reranker` is the plug-in point for a learned re-ranker (a SapBERT-style
bi-encoder): it gets a mention and its candidates and returns them re-scored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

NGRAM = 3
_SEPARATOR, _SPACE, _OTHER = 0, 1, 38
ALPHABET_SIZE = 39
N_FEATURES = ALPHABET_SIZE**NGRAM

_CODES = np.full(256, _OTHER, dtype=np.int32)
_CODES[0] = _SEPARATOR
_CODES[ord(" ")] = _SPACE
_CODES[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.arange(2, 28)
_CODES[np.frombuffer(b"0123456789", np.uint8)] = np.arange(28, 38)

DEFAULT_BUDGET = 10_000  # postings summed per query before the rest are only rescored
DEFAULT_POOL = 48  # names rescored exactly per query


def ngram_features(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, feature)``: for every 3-gram occurrence of every (normalised) string,
    the string's position in ``strings`` and the 3-gram's feature number."""
    if not strings:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    joined = "\0".join(f" {s} " for s in strings).encode("ascii", "replace")
    raw = np.frombuffer(joined, np.uint8)
    codes = _CODES[raw]
    first, second, third = codes[:-2], codes[1:-1], codes[2:]
    valid = (first != _SEPARATOR) & (second != _SEPARATOR) & (third != _SEPARATOR)
    features = (first * ALPHABET_SIZE + second) * ALPHABET_SIZE + third
    owner = np.cumsum(raw == 0)[:-2]
    return owner[valid].astype(np.int64), features[valid].astype(np.int32)


@dataclass
class NgramMatrix:
    """The TF-IDF matrix in posting-list form: names having feature ``f`` are
    ``rows[ptr[f]:ptr[f+1]]`` (ascending) with weights ``weights[...]``."""

    ptr: np.ndarray  # int64, N_FEATURES + 1
    rows: np.ndarray  # int32
    weights: np.ndarray  # float16
    idf: np.ndarray  # float32, N_FEATURES
    n_rows: int

    ARRAYS = ("ptr", "rows", "weights", "idf")

    @classmethod
    def build(cls, strings: Sequence[str]) -> "NgramMatrix":
        n = len(strings)
        owner, features = ngram_features(strings)
        pairs, counts = np.unique(owner * N_FEATURES + features, return_counts=True)
        rows, features = pairs // N_FEATURES, (pairs % N_FEATURES).astype(np.int32)
        df = np.bincount(features, minlength=N_FEATURES)
        idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        weights = (1.0 + np.log(counts)) * idf[features]
        norms = np.sqrt(np.bincount(rows, weights * weights, minlength=n))
        weights /= norms[rows]
        order = np.argsort(features, kind="stable")  # by feature, rows stay ascending
        ptr = np.zeros(N_FEATURES + 1, np.int64)
        np.cumsum(df, out=ptr[1:])
        return cls(ptr, rows[order].astype(np.int32), weights[order].astype(np.float16), idf, n)

    def query(self, normalized: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's features and L2-normalised weights (3-grams no name has count
        towards the norm: a mention full of unknown 3-grams matches nothing well)."""
        _, features = ngram_features([normalized])
        features, counts = np.unique(features, return_counts=True)
        weights = (1.0 + np.log(counts)) * self.idf[features]
        norm = np.sqrt(np.dot(weights, weights))
        return features, (weights / norm if norm else weights).astype(np.float32)


_scratch = threading.local()


def _accumulator(key: int, size: int) -> np.ndarray:
    """A zeroed float32 array of ``size`` reused per thread and matrix (callers zero
    what they touched), so a query does not allocate the whole score vector."""
    pool = getattr(_scratch, "pool", None)
    if pool is None:
        pool = _scratch.pool = {}
    acc = pool.get(key)
    if acc is None or acc.size != size:
        acc = pool[key] = np.zeros(size, np.float32)
    return acc


def search(
    matrix: NgramMatrix,
    normalized: str,
    k: int = 10,
    *,
    allowed: np.ndarray | None = None,
    budget: int = DEFAULT_BUDGET,
    pool: int = DEFAULT_POOL,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most similar to ``normalized`` by cosine, as ``(rows, scores)``
    best first; ``allowed`` (a boolean array over rows) restricts the answer."""
    features, qweights = matrix.query(normalized)
    if features.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    starts, ends = matrix.ptr[features], matrix.ptr[features + 1]
    present = ends > starts  # a 3-gram no name has adds nothing to any score
    features, qweights, starts, ends = features[present], qweights[present], starts[present], ends[present]
    lengths = ends - starts
    order = np.argsort(lengths, kind="stable")
    spent = np.cumsum(lengths[order])
    n_summed = max(1, int(np.searchsorted(spent, budget, side="right")))
    summed, skipped = order[:n_summed], order[n_summed:]
    acc = _accumulator(id(matrix), matrix.n_rows)
    touched = []
    for i in summed:
        rows = matrix.rows[starts[i] : ends[i]]
        acc[rows] += qweights[i] * matrix.weights[starts[i] : ends[i]].astype(np.float32)
        touched.append(rows)
    if not touched:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = np.concatenate(touched)  # with repeats: a row is in several posting lists
    partial = acc[rows]
    acc[rows] = 0.0
    if allowed is not None:
        keep = allowed[rows]
        rows, partial = rows[keep], partial[keep]
    # the best rows without sorting them all; repeats share one score, so take enough
    # for ``pool`` distinct rows in the common case, then drop the repeats
    if rows.size > pool * NGRAM:
        best = np.argpartition(-partial, pool * NGRAM - 1)[: pool * NGRAM]
        rows, partial = rows[best], partial[best]
    rows, first = np.unique(rows, return_index=True)
    partial = partial[first]
    scores = partial.copy()
    for i in skipped:
        posting = matrix.rows[starts[i] : ends[i]]
        at = np.searchsorted(posting, rows)
        at_clipped = np.minimum(at, len(posting) - 1)
        hit = (at < len(posting)) & (np.asarray(posting[at_clipped]) == rows)
        if hit.any():
            scores[hit] += qweights[i] * matrix.weights[starts[i] + at_clipped[hit]].astype(np.float32)
    best = np.argsort(-scores, kind="stable")[:k]
    return rows[best].astype(np.int64), np.minimum(scores[best], 1.0)


@dataclass(slots=True)
class Candidate:
    """A concept proposed for a mention. ``stage`` says how it was found: ``exact``
    (normalised name equal), ``variant`` (loose key equal), ``ngram`` (3-gram cosine)
    or ``rerank``; ``ontology`` is the index it comes from, ``priority`` that index's
    rank for the mention's type and ``order`` its rank among concepts of one name."""

    id: str
    name: str
    score: float
    stage: str
    ontology: str
    matched: str = ""
    priority: int = 0
    order: int = 0
    alt_ids: tuple[str, ...] = field(default_factory=tuple)
    homonyms: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ids(self) -> tuple[str, ...]:
        """The concept's identifier and its alternates (an OMIM number of a MEDIC concept)."""
        return (self.id, *self.alt_ids)

    @property
    def name_ids(self) -> tuple[str, ...]:
        """:attr:`ids` plus the other concepts the matched name also names: what
        BioSyn's evaluation counts as one prediction (its dictionary entries are names
        whose concept IDs are joined with ``|``)."""
        return (*self.ids, *self.homonyms)


class Reranker(Protocol):
    """A learned re-ranker: re-scores the candidates of one mention (scores in [0, 1]),
    returned best first. The linker asks it only when string matching found no exact
    or variant name."""

    def rerank(self, mention: str, entity_type: str, candidates: list[Candidate]) -> list[Candidate]: ...
