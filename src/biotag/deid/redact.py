"""Writing de-identified text: each PHI span replaced by its type tag (``[DATE]``) or a
surrogate, with an offset map between the original and the output.

Two guarantees hold for every output, and are checked here rather than assumed:

1. no detected PHI string survives: every whole-word occurrence of a detected string
   (ignoring case) is replaced, not only the occurrence a recogniser found
   (:func:`propagate`), and the output is searched for them once written;
2. nothing PHI-like is added: a surrogate never equals or contains a detected string
   (:class:`~biotag.deid.surrogates.Forbidden`).

A replacement next to kept text can still spell a detected string across the seam
(kept "Ann " + surrogate "Smith" where "Ann Smith" is PHI elsewhere). Such a hit makes
that replacement fall back to a safer one (surrogate -> tag -> ``[REDACTED]`` -> nothing)
or, when the hit reaches into kept text, grows the span over it; this repeats until the
output is clean, and :class:`DeidError` is raised rather than return a text that is not.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

from biotag.deid.spans import PhiSpan, merge_spans
from biotag.deid.surrogates import Forbidden, Surrogates
from biotag.errors import BiotagError

MODES = ("tag", "surrogate")
MAX_ROUNDS = 20


class DeidError(BiotagError):
    """A document could not be de-identified with the guarantees kept."""


@dataclass(frozen=True)
class Replacement:
    """One entry of the offset map: ``[start, end)`` of the original became
    ``[out_start, out_end)`` of the output. The original text is not kept (it is PHI)."""

    start: int
    end: int
    out_start: int
    out_end: int
    type: str
    source: str
    score: float

    def to_dict(self) -> dict:
        return {
            "start": self.start, "end": self.end, "output_start": self.out_start, "output_end": self.out_end,
            "type": self.type, "source": self.source, "score": round(self.score, 4),
        }


@dataclass
class DeidResult:
    text: str
    replacements: list[Replacement]

    def to_output(self, offset: int) -> int:
        """Where original ``offset`` lands in the output (a replaced offset: the start
        of its replacement)."""
        return _map(offset, self.replacements, "start", "end", "out_start", "out_end")

    def to_original(self, offset: int) -> int:
        """Where output ``offset`` came from (inside a replacement: the start of the
        replaced original)."""
        return _map(offset, self.replacements, "out_start", "out_end", "start", "end")


def _map(offset: int, reps: Sequence[Replacement], a: str, b: str, x: str, y: str) -> int:
    i = bisect_right([getattr(r, a) for r in reps], offset) - 1
    if i < 0:
        return offset
    r = reps[i]
    if offset < getattr(r, b):
        return getattr(r, x)
    return getattr(r, y) + offset - getattr(r, b)


def propagate(text: str, spans: Sequence[PhiSpan]) -> list[PhiSpan]:
    """``spans`` plus every other whole-word occurrence of their strings (ignoring case
    and spacing), merged."""
    spans = merge_spans(spans)
    forbidden = Forbidden(text[s.start : s.end] for s in spans)
    found = [PhiSpan(a, b, "PHI", "propagated", 0.0) for a, b in forbidden.find(text)]
    # occurrences a span already covers add nothing (and would blur its source)
    return merge_spans(spans + [f for f in found if not any(s.start <= f.start and f.end <= s.end for s in spans)])


def deidentify_text(
    text: str,
    spans: Sequence[PhiSpan],
    mode: str = "tag",
    surrogates: Surrogates | None = None,
) -> DeidResult:
    """``text`` with ``spans`` (and the other occurrences of their strings) replaced."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "surrogate" and surrogates is None:
        raise ValueError("surrogate mode needs a Surrogates object")
    spans = propagate(text, spans)
    levels = [0 if mode == "surrogate" else 1] * len(spans)
    for _ in range(MAX_ROUNDS):
        forbidden = Forbidden(text[s.start : s.end] for s in spans)
        result = _render(text, spans, levels, forbidden, surrogates)
        hits = forbidden.find(result.text)
        if not hits:
            return result
        spans, levels = _repair(text, result, spans, levels, hits)
    raise DeidError(f"could not write an output free of the detected PHI in {MAX_ROUNDS} rounds")


def _replacement(original: str, span: PhiSpan, level: int, forbidden: Forbidden, surrogates: Surrogates | None) -> str:
    while level < 4:
        if level == 0:
            candidate = surrogates.get(original, span.type, forbidden) if surrogates is not None else None
        else:
            candidate = (f"[{span.type}]", "[REDACTED]", "")[level - 1]
        if candidate is not None and (candidate == "" or forbidden.allows(candidate, original)):
            return candidate
        level += 1
    return ""


def _render(text: str, spans: Sequence[PhiSpan], levels: Sequence[int], forbidden: Forbidden, surrogates: Surrogates | None) -> DeidResult:
    pieces: list[str] = []
    reps: list[Replacement] = []
    pos = out = 0
    for span, level in zip(spans, levels):
        kept = text[pos : span.start]
        pieces.append(kept)
        out += len(kept)
        new = _replacement(text[span.start : span.end], span, level, forbidden, surrogates)
        pieces.append(new)
        reps.append(Replacement(span.start, span.end, out, out + len(new), span.type, span.source, span.score))
        out += len(new)
        pos = span.end
    pieces.append(text[pos:])
    return DeidResult("".join(pieces), reps)


def _repair(
    text: str, result: DeidResult, spans: list[PhiSpan], levels: list[int], hits: list[tuple[int, int]]
) -> tuple[list[PhiSpan], list[int]]:
    """Fall back on the replacements a hit touches; grow spans over the kept text it
    covers. Raises when a hit touches no replacement (the propagation missed it)."""
    grown: list[PhiSpan] = []
    levels = list(levels)
    for a, b in hits:
        touched = [i for i, r in enumerate(result.replacements) if r.out_start <= b and a <= r.out_end]
        if not touched:
            raise DeidError(f"detected PHI left in the output at [{a}, {b})")
        for i in touched:
            r = result.replacements[i]
            if a < r.out_start or b > r.out_end:  # reaches into kept text: take it in
                start, end = result.to_original(a), result.to_original(b - 1) + 1
                span = spans[i]
                grown.append(PhiSpan(min(start, span.start), max(end, span.end), span.type, span.source, span.score))
            else:
                levels[i] += 1
    if not grown:
        return spans, levels
    old = {(s.start, s.end): lv for s, lv in zip(spans, levels)}
    merged = merge_spans(spans + grown)
    # a grown span keeps the highest fallback level among the spans it swallowed
    new_levels = [max([lv for (s0, e0), lv in old.items() if s.start <= s0 and e0 <= s.end] or [0]) for s in merged]
    return merged, new_levels
