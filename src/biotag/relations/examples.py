"""Relation examples (a text and two argument spans) and how a model sees them.

A :class:`RelationExample` is the unit every relation model classifies: a piece of
text (a sentence, or a window of sentences of a document), the character spans and
types of its two arguments and, for training data, a label. :func:`render` turns it
into the string the encoder reads, in one of two styles:

``typed`` (typed entity markers, Zhong & Chen 2021)
    ``[E1:CHEMICAL]aspirin[/E1:CHEMICAL] inhibits [E2:GENE]COX-2[/E2:GENE]``; the four
    markers of each type pair are special tokens added to the tokenizer.
``mask`` (BLURB / BLUE)
    ``@CHEMICAL$ inhibits @GENE$``; arguments that overlap are replaced together by
    ``@CHEMICAL-GENE$`` (the corpora's ``@CHEM-GENE$``); nothing is added to the vocabulary.

Markers are inserted at character offsets, so multi-token, nested and overlapping
arguments all render: at one position closing markers come before opening ones, an
outer argument opens before and closes after an inner one, and two arguments with the
same span open E1, E2 and close E2, E1. :func:`render` also returns where each argument
(with its markers) lies in the rendered string, which the encoder uses to keep both
arguments inside a truncated window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

STYLES = ("typed", "mask")


@dataclass(frozen=True, slots=True)
class Mention:
    """One argument: ``[start, end)`` in the example's text and its type (biotag's unified
    entity types: ``chemical``, ``gene``, ``disease``...)."""

    start: int
    end: int
    type: str

    def overlaps(self, other: "Mention") -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(slots=True)
class RelationExample:
    key: str
    text: str
    head: Mention
    tail: Mention
    label: str | None = None


def type_name(entity_type: str, names: Mapping[str, str]) -> str:
    """The marker name of an entity type (``chemical`` -> ``CHEMICAL``, or as ``names`` say:
    DDI calls chemicals ``DRUG``)."""
    return names.get(entity_type, entity_type.upper().replace(" ", "_"))


def marker_tokens(types: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """The special tokens of the ``typed`` style for arguments of ``types``."""
    out: list[str] = []
    for t in dict.fromkeys(types):
        name = type_name(t, names)
        for role in ("E1", "E2"):
            out += [f"[{role}:{name}]", f"[/{role}:{name}]"]
    return out


def render(example: RelationExample, style: str, names: Mapping[str, str] | None = None) -> tuple[str, tuple[int, int]]:
    """The text the encoder reads and the character range ``[start, end)`` of the
    rendered string that covers both arguments (markers included)."""
    names = names or {}
    head, tail = example.head, example.tail
    text = example.text
    if style == "mask":
        if head.overlaps(tail):
            start, end = min(head.start, tail.start), max(head.end, tail.end)
            pieces = [(start, end, f"@{type_name(head.type, names)}-{type_name(tail.type, names)}$")]
        else:
            pieces = sorted(
                [(head.start, head.end, f"@{type_name(head.type, names)}$"), (tail.start, tail.end, f"@{type_name(tail.type, names)}$")]
            )
        out, pos, first, last = [], 0, None, 0
        for start, end, mask in pieces:
            out.append(text[pos:start])
            here = sum(len(p) for p in out)
            first = here if first is None else first
            out.append(mask)
            last = here + len(mask)
            pos = end
        out.append(text[pos:])
        return "".join(out), (first or 0, last)
    if style != "typed":
        raise ValueError(f"unknown marker style {style!r}; expected one of {STYLES}")
    inserts = []  # (position, order key, marker)
    for rank, role, m in ((0, "E1", head), (1, "E2", tail)):
        name = type_name(m.type, names)
        # at one position: closing before opening; the outer (longer) argument opens first
        # and the inner (later-opened) one closes first; equal spans nest E1 around E2
        inserts.append((m.start, (1, -m.end, rank), f"[{role}:{name}]"))
        inserts.append((m.end, (0, -m.start, -rank), f"[/{role}:{name}]"))
    inserts.sort(key=lambda x: (x[0], x[1]))
    out, pos, length = [], 0, 0
    first = last = None
    for position, _, marker in inserts:
        chunk = text[pos:position]
        out.append(chunk)
        length += len(chunk)
        if first is None:
            first = length
        out.append(marker)
        length += len(marker)
        last = length
        pos = position
    out.append(text[pos:])
    return "".join(out), (first or 0, last or 0)
