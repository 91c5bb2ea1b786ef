"""PHI spans and how spans from several recognisers are combined.

A :class:`PhiSpan` is a character interval ``[start, end)`` of a note with a type
(``DATE``, ``PHONE``... from the rules, ``PHI`` from an untyped model) and its source.
Recognisers may disagree on boundaries, so :func:`merge_spans` replaces every group of
overlapping spans by their union: for de-identification a span that is too long only
costs readability, one that is too short leaks the rest of the identifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

UNTYPED = "PHI"  # the type of spans whose kind is not known (the physionet gold, the model)


@dataclass(frozen=True, order=True)
class PhiSpan:
    start: int
    end: int
    type: str = UNTYPED
    source: str = "rules"
    score: float = 1.0

    def overlaps(self, other: "PhiSpan") -> bool:
        return self.start < other.end and other.start < self.end


def merge_spans(spans: Iterable[PhiSpan]) -> list[PhiSpan]:
    """Overlapping spans replaced by their union, sorted by start.

    The union keeps the most specific type: a typed span (from a rule) over ``PHI``, the
    longest typed span where typed spans disagree. Its sources are joined with ``+`` and
    its score is the highest of the group. Spans that only touch stay apart.
    """
    out: list[PhiSpan] = []
    group: list[PhiSpan] = []
    end = -1
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if group and span.start >= end:
            out.append(_union(group))
            group = []
        group.append(span)
        end = span.end if len(group) == 1 else max(end, span.end)
    if group:
        out.append(_union(group))
    return out


def _union(group: list[PhiSpan]) -> PhiSpan:
    if len(group) == 1:
        return group[0]
    typed = [s for s in group if s.type != UNTYPED]
    kind = max(typed, key=lambda s: (s.end - s.start, -s.start)).type if typed else UNTYPED
    sources = "+".join(sorted({part for s in group for part in s.source.split("+")}))
    return PhiSpan(min(s.start for s in group), max(s.end for s in group), kind, sources, max(s.score for s in group))
