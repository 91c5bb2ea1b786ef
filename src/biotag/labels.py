"""Tag schemes, span <-> tag conversion and BIO-constrained decoding.

Two schemes, both over *words* (a model predicts on the first sub-word of each word):

``bio``        classic IOB2 with one tag per word: ``O``, ``B-<type>``, ``I-<type>``.
               Entities cannot overlap.
``multilabel`` one independent O/B/I decision per entity type and word (Kazu's
               TinyBERN2 layout), so a word can start a gene and continue a disease at
               once: nested and overlapping entities of *different* types are kept.

A span here is a :class:`TokenSpan` over word indices, ``end`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from biotag.errors import InputError

O, B, I = 0, 1, 2  # per-type classes of the multilabel scheme
SCHEMES = ("bio", "multilabel")
IGNORE = -100  # label id ignored by the loss (sub-words after the first, unlabelled types)


class TokenSpan(NamedTuple):
    start: int
    end: int
    type: str


@dataclass(frozen=True)
class LabelSchema:
    """The entity types a model predicts and how they are laid out as output units."""

    types: tuple[str, ...]
    scheme: str = "multilabel"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise InputError(f"unknown tag scheme {self.scheme!r}; expected one of {SCHEMES}", field="scheme")
        if len(set(self.types)) != len(self.types) or not self.types:
            raise InputError(f"entity types must be unique and non-empty: {self.types}", field="types")
        object.__setattr__(self, "types", tuple(self.types))

    @property
    def num_outputs(self) -> int:
        """Width of the classifier's output layer."""
        return 1 + 2 * len(self.types) if self.scheme == "bio" else 3 * len(self.types)

    @property
    def output_names(self) -> list[str]:
        if self.scheme == "bio":
            return ["O"] + [f"{p}-{t}" for t in self.types for p in ("B", "I")]
        return [f"{t}:{c}" for t in self.types for c in ("O", "B", "I")]

    def type_index(self, entity_type: str) -> int:
        try:
            return self.types.index(entity_type)
        except ValueError:
            raise InputError(f"unknown entity type {entity_type!r}; this schema has {list(self.types)}", field="type") from None

    def to_dict(self) -> dict:
        return {"types": list(self.types), "scheme": self.scheme}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSchema":
        return cls(tuple(data["types"]), data.get("scheme", "multilabel"))

    # -- encoding -------------------------------------------------------------
    def encode(self, n_words: int, spans: Iterable[TokenSpan]) -> np.ndarray:
        """Gold label ids per word: shape ``[n]`` (bio) or ``[n, n_types]`` (multilabel).

        Spans of types outside the schema raise; in ``bio`` overlapping spans cannot be
        represented, so the earliest-starting, longest one wins (the rest are dropped).
        """
        spans = sorted(set(spans), key=lambda s: (s.start, -(s.end - s.start), s.type))
        if self.scheme == "bio":
            out = np.zeros(n_words, dtype=np.int64)
            taken = np.zeros(n_words, dtype=bool)
            for s in spans:
                t = self.type_index(s.type)
                if taken[s.start : s.end].any():
                    continue
                out[s.start] = 1 + 2 * t
                out[s.start + 1 : s.end] = 2 + 2 * t
                taken[s.start : s.end] = True
            return out
        out = np.zeros((n_words, len(self.types)), dtype=np.int64)
        for s in spans:
            t = self.type_index(s.type)
            # one type has one O/B/I track: a same-type span overlapping an earlier,
            # longer one cannot be represented and is dropped (different types can nest)
            if (out[s.start : s.end, t] != O).any():
                continue
            out[s.start, t] = B
            out[s.start + 1 : s.end, t] = I
        return out

    def tags(self, n_words: int, spans: Iterable[TokenSpan]) -> list[str]:
        """IOB2 tag strings (bio scheme view; overlaps resolved as in :meth:`encode`)."""
        ids = LabelSchema(self.types, "bio").encode(n_words, spans)
        names = LabelSchema(self.types, "bio").output_names
        return [names[i] for i in ids]

    # -- decoding -------------------------------------------------------------
    def decode(self, scores: np.ndarray, *, constrained: bool = True) -> list[tuple[TokenSpan, float]]:
        """Spans with a confidence from per-word scores (log-probabilities or logits).

        ``scores`` has shape ``[n, num_outputs]``. With ``constrained`` the best label
        sequence that obeys BIO (no ``I`` unless it continues a ``B``/``I`` of the same
        type) is found by Viterbi; otherwise each word takes its argmax and a stray
        ``I`` starts a new entity. The confidence is the mean probability of the chosen
        labels over the span's words.
        """
        scores = np.asarray(scores, dtype=np.float64)
        n = scores.shape[0]
        if n == 0:
            return []
        if self.scheme == "bio":
            logp = _log_softmax(scores)
            path = viterbi(logp, _bio_transitions(len(self.types))) if constrained else logp.argmax(-1)
            names = self.output_names
            spans = spans_from_tags([names[i] for i in path])
            probs = np.exp(logp[np.arange(n), path])
            return [(s, float(probs[s.start : s.end].mean())) for s in spans]
        logp = _log_softmax(scores.reshape(n, len(self.types), 3))
        out: list[tuple[TokenSpan, float]] = []
        trans = _bio_transitions(1)  # states O, B, I of one type
        best = logp.argmax(-1)  # [n, types]; ties go to O, as in Viterbi
        # the unconstrained best path is the constrained one whenever it already obeys BIO
        # (every I continues a B or I): Viterbi is only run for the types where it does not
        stray_i = (best == I) & (np.vstack([np.full((1, best.shape[1]), O), best[:-1]]) == O)
        for t in np.flatnonzero(best.any(0)):
            name = self.types[t]
            lp = logp[:, t, :]
            path = viterbi(lp, trans) if constrained and stray_i[:, t].any() else best[:, t]
            probs = np.exp(lp[np.arange(n), path])
            for s in _spans_from_ids(path, name):
                out.append((s, float(probs[s.start : s.end].mean())))
        out.sort(key=lambda x: (x[0].start, -x[0].end, x[0].type))
        return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _bio_transitions(n_types: int) -> np.ndarray:
    """Allowed-transition matrix (0 or -inf) for states O, B-t0, I-t0, B-t1, I-t1...; row
    ``-1`` in the returned ``[k+1, k]`` array holds the start transitions."""
    k = 1 + 2 * n_types
    allowed = np.zeros((k + 1, k))
    for t in range(n_types):
        i_state = 2 + 2 * t
        for prev in range(k):
            if prev not in (1 + 2 * t, i_state):
                allowed[prev, i_state] = -np.inf
        allowed[k, i_state] = -np.inf  # cannot start with I
    return allowed


def viterbi(logp: np.ndarray, transitions: np.ndarray, end: np.ndarray | None = None) -> np.ndarray:
    """Best state sequence for emission log-probs ``[n, k]`` under ``transitions``
    (``[k+1, k]``, last row = start) and, when given, end scores ``[k]``."""
    n, k = logp.shape
    score = logp[0] + transitions[k]
    back = np.zeros((n, k), dtype=np.int64)
    trans = transitions[:k]
    for i in range(1, n):
        cand = score[:, None] + trans  # [prev, cur]
        back[i] = cand.argmax(0)
        score = cand.max(0) + logp[i]
    if end is not None:
        score = score + end
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _spans_from_ids(path: Sequence[int], type_name: str) -> list[TokenSpan]:
    """Spans of one type from per-word O/B/I ids; a stray I starts an entity."""
    spans: list[TokenSpan] = []
    start = None
    for i, c in enumerate(path):
        if c == B or (c == I and start is None):
            if start is not None:
                spans.append(TokenSpan(start, i, type_name))
            start = i
        elif c == O and start is not None:
            spans.append(TokenSpan(start, i, type_name))
            start = None
    if start is not None:
        spans.append(TokenSpan(start, len(path), type_name))
    return spans


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or tag == "":
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESU":
        return tag[0], tag[2:]
    raise InputError(f"unknown tag {tag!r}; expected O, B-<type> or I-<type>", field="tag")


def spans_from_tags(tags: Sequence[str]) -> list[TokenSpan]:
    """Entities from IOB tag strings, chunked exactly as conlleval / seqeval's default
    mode do: a chunk ends at ``O``, at ``B``, or where the type changes; an ``I`` that
    follows ``O`` or another type starts a new chunk."""
    spans: list[TokenSpan] = []
    prev_prefix, prev_type = "O", ""
    start = None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, typ = _split_tag(tag)
        # conlleval's end-of-chunk / start-of-chunk rules (E/S accepted as seqeval does)
        ends = (
            prev_prefix in ("E", "S")
            or (prev_prefix != "O" and prefix in ("B", "S", "O"))
            or (prev_prefix != "O" and prefix != "O" and prev_type != typ)
        )
        if ends and start is not None:
            spans.append(TokenSpan(start, i, prev_type))
            start = None
        begins = (
            prefix in ("B", "S")
            or (prefix in ("I", "E") and prev_prefix in ("O", "E", "S"))
            or (prefix != "O" and prev_type != typ)
        )
        if begins and prefix != "O":
            start = i
        prev_prefix, prev_type = prefix, typ
    return spans


def tags_from_spans(n_words: int, spans: Iterable[TokenSpan]) -> list[str]:
    """IOB2 tags for non-overlapping spans (overlaps: earliest, longest wins)."""
    spans = list(spans)
    types = tuple(sorted({s.type for s in spans})) or ("_",)
    return LabelSchema(types, "bio").tags(n_words, spans)
