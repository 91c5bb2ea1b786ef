"""Abbreviation definitions (Schwartz & Hearst 2003) and what they teach about entities.

Detection follows "A simple algorithm for identifying abbreviation definitions in
biomedical text" (PSB 2003) and its reference Java implementation:

* candidates are parenthesised text after a space: ``long form (SF)``, or, when the
  parentheses hold more than two words, the reversed ``SF (long form)``;
* the parentheses are matched with nesting, and their content is cut at ``, `` or ``; ``
  (``(TNF; ref. 3)``); a nested parenthetical is a candidate of its own, its long form
  searched within the enclosing one;
* a short form has 2 to 10 characters, at least one letter and an alphanumeric first
  character (the reversed form also needs a capital);
* the long form is searched back from the parenthesis, not past the end of a previous
  candidate nor past ``, ``, ``; `` or ``. ``: each short-form character, from the last,
  is matched right to left in it, the first one at the start of a word, and the long
  form starts at the word holding that match; it has at most ``min(|SF| + 5, 2 |SF|)``
  words (split at spaces and hyphens, ``|SF|`` counting alphanumeric characters), is
  longer than the short form and does not end with it.

Pairs are stored as ``doc.metadata["abbreviations"] = [{"short": [s, e], "long": [s,
e]}]``. :func:`propagate` then lets every occurrence of a short form (whole word,
case-sensitive) share what the document knows about its long form: when the long form
coincides or overlaps (``min_overlap``, as intersection over union) with an entity, an
occurrence with no entity gets one (``source="abbreviations"``), an entity of the same
type with no links gets the long form's links, and one of another type takes the long
form's type only when the long form's entity scored higher. Nothing is ever removed: an
abbreviation without a confident long form leaves the entities on its short form as they
are (Kazu's abbreviation step drops them, losing real gene mentions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from biotag.document import Document, Entity, Link, Span

MIN_SHORT_FORM, MAX_SHORT_FORM = 2, 10
# Intersection over union a long form needs with an entity to pass it on (0.3 keeps
# "levodopa-induced dyskinesias (LID)" -> dyskinesias; chosen on BC5CDR devel).
DEFAULT_MIN_OVERLAP = 0.3
# Where a long form cannot reach back past (Schwartz-Hearst cut at ". " and ", ").
_CLAUSE_BREAK = re.compile(r"[.,;]\s")
_WORD_SEPARATORS = re.compile(r"[\s\-]+")
_EDGE_PUNCTUATION = "\"'“”‘’,;:"


@dataclass(frozen=True, slots=True)
class Abbreviation:
    short: Span
    long: Span

    def to_dict(self) -> dict[str, list[int]]:
        return {"short": self.short.to_list(), "long": self.long.to_list()}

    @classmethod
    def from_dict(cls, data: dict) -> "Abbreviation":
        return cls(Span(*data["short"]), Span(*data["long"]))


# -- detection ------------------------------------------------------------------
def find_abbreviations(text: str, regions: Iterable[tuple[int, int]] | None = None) -> list[Abbreviation]:
    """Abbreviation definitions in ``text``, searched within each region (sentences:
    a long form never crosses one), in text order."""
    found = []
    for start, end in regions if regions is not None else [(0, len(text))]:
        found.extend(_in_region(text, start, end))
    return found


def detect(doc: Document) -> list[Abbreviation]:
    """Definitions in a document, within its sentences (split here, without changing
    the document, when it has no sentence layer)."""
    if doc.sentences is not None:
        regions = [(s.start, s.end) for s in doc.sentences]
    else:
        from biotag.text.sentences import split_sentences

        parts = [(p.start, p.end) for p in doc.passages] or [(0, len(doc.text))]
        regions = [span for a, b in parts for span in split_sentences(doc.text, a, b)]
    return find_abbreviations(doc.text, regions)


def _in_region(text: str, start: int, end: int) -> list[Abbreviation]:
    pairs = _balanced_parentheses(text, start, end)
    found = []
    for open_at, close_at in pairs:
        if open_at == start or not text[open_at - 1].isspace():
            continue  # "IL-1(beta)", "Ca(2+)": part of a word, not a definition
        floor = _long_form_floor(text, start, open_at, pairs)
        definition = _definition(text, floor, open_at, close_at)
        if definition is not None:
            found.append(definition)
    return found


def _balanced_parentheses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(open, close) offsets of each matched pair of round brackets, by opening offset."""
    stack: list[int] = []
    pairs = []
    for i in range(start, end):
        char = text[i]
        if char == "(":
            stack.append(i)
        elif char == ")" and stack:
            pairs.append((stack.pop(), i))
    return sorted(pairs)


def _long_form_floor(text: str, start: int, open_at: int, pairs: list[tuple[int, int]]) -> int:
    """The leftmost offset the long form of the parenthesis at ``open_at`` may use: not
    before the parenthesis enclosing it, the end of an earlier candidate at the same
    level, or a clause break."""
    floor = start
    for a, b in pairs:
        if a < open_at < b:
            floor = max(floor, a + 1)  # enclosing
        elif b < open_at and a > floor and text[a - 1].isspace():
            floor = max(floor, b + 1)  # an earlier sibling candidate
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(text, floor, open_at)]
    return breaks[-1] if breaks else floor


def _definition(text: str, floor: int, open_at: int, close_at: int) -> Abbreviation | None:
    inner = _cut_inner(text, open_at + 1, close_at)
    if inner is None:
        return None
    window = _strip(text, floor, open_at)
    if window is not None and len(text[inner[0] : inner[1]].split()) <= 2:
        long_form = _long_form(text, inner, window)
        if long_form is not None:
            return Abbreviation(Span(*inner), long_form)
    # reversed: "TNF (tumor necrosis factor)" -- the short form is the word before
    word = _word_before(text, floor, open_at)
    if word is not None and any(c.isupper() for c in text[word[0] : word[1]]):
        long_form = _long_form(text, word, inner)
        if long_form is not None:
            return Abbreviation(Span(*word), long_form)
    return None


def _cut_inner(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The parenthesised text up to its first ``, `` or ``; ``, stripped."""
    for separator in (", ", "; "):
        cut = text.find(separator, start, end)
        if cut >= 0:
            end = cut
    return _strip(text, start, end)


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``[start, end)`` without surrounding whitespace and quotes; ``None`` if empty."""
    while start < end and (text[start].isspace() or text[start] in _EDGE_PUNCTUATION):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _EDGE_PUNCTUATION):
        end -= 1
    return (start, end) if start < end else None


def _word_before(text: str, floor: int, open_at: int) -> tuple[int, int] | None:
    end = open_at
    while end > floor and text[end - 1].isspace():
        end -= 1
    start = end
    while start > floor and not text[start - 1].isspace():
        start -= 1
    return _strip(text, start, end)


def is_short_form(candidate: str) -> bool:
    return (
        MIN_SHORT_FORM <= len(candidate) <= MAX_SHORT_FORM
        and candidate[0].isalnum()
        and any(c.isalpha() for c in candidate)
    )


def _long_form(text: str, short: tuple[int, int], window: tuple[int, int]) -> Span | None:
    """The long form of ``text[short]`` at the end of ``text[window]``, or ``None``."""
    short_form = text[short[0] : short[1]]
    if not is_short_form(short_form):
        return None
    # Offsets index ``text`` itself: lower-casing a whole string may change its length.
    s, l = len(short_form) - 1, window[1] - 1
    while s >= 0:
        char = short_form[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        # the first short-form character must start a word of the long form
        while l >= window[0] and (text[l].lower() != char or (s == 0 and l > window[0] and text[l - 1].isalnum())):
            l -= 1
        if l < window[0]:
            return None
        l -= 1
        s -= 1
    begin = l + 1
    while begin > window[0] and not text[begin - 1].isspace():
        begin -= 1  # the long form starts with the word holding the match
    stripped = _strip(text, begin, window[1])
    if stripped is None:
        return None
    start, end = stripped
    long_form = text[start:end]
    size = sum(c.isalnum() for c in short_form)
    n_words = len([w for w in _WORD_SEPARATORS.split(long_form) if w])
    if (
        len(long_form) < len(short_form)
        or f"{short_form} " in long_form
        or long_form.endswith(short_form)
        or n_words > min(size + 5, 2 * size)
    ):
        return None
    return Span(start, end)


# -- propagation ----------------------------------------------------------------------
def _overlap_ratio(a: Span, b: Span) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    return inter / (max(a.end, b.end) - min(a.start, b.start)) if inter > 0 else 0.0


def long_form_entity(doc: Document, pair: Abbreviation, min_overlap: float = DEFAULT_MIN_OVERLAP) -> Entity | None:
    """The entity the long form names, or ``None``.

    The abbreviation names the head of the long form, and the head of an English noun
    phrase is its last word: a candidate covers the long form's last character and
    overlaps it by at least ``min_overlap`` (intersection over union). So
    ``levodopa-induced dyskinesias (LID)`` names ``dyskinesias``, not ``levodopa``, and
    ``poly(ADP-ribose) polymerase (PARP)`` is not the chemical ``poly(ADP-ribose)``.
    The larger overlap wins, then the higher score. Entities reaching over the short
    form are ignored (``ACE inhibitors`` in ``angiotensin converting enzyme (ACE)
    inhibitors`` does not type ``ACE``).
    """
    best, best_key = None, None
    last = pair.long.end - 1
    for entity in doc.entities:
        span = entity.span
        if span.overlaps(pair.short) or not span.start <= last < span.end:
            continue
        ratio = _overlap_ratio(span, pair.long)
        if ratio >= min_overlap:
            key = (ratio, entity.score if entity.score is not None else float("inf"))
            if best_key is None or key > best_key:
                best, best_key = entity, key
    return best


def _copy_links(links: list[Link]) -> list[Link]:
    return [Link(x.ontology, x.id, x.name, x.score) for x in links]


def _fresh_ids(doc: Document):
    taken = {e.id for e in doc.entities}
    n = len(doc.entities)
    while True:
        n += 1
        if f"T{n}" not in taken:
            yield f"T{n}"


def propagate(doc: Document, pairs: Iterable[Abbreviation], *, min_overlap: float = DEFAULT_MIN_OVERLAP, source: str = "abbreviations") -> list[Entity]:
    """Share each long form's entity type and links with every occurrence of its short
    form (see the module doc); returns the entities added. Never removes an entity.

    A short form defined several times in a document takes its first definition whose
    long form is an entity."""
    definitions: dict[str, Entity] = {}
    for pair in pairs:
        short_form = doc.text[pair.short.start : pair.short.end]
        if short_form not in definitions:
            entity = long_form_entity(doc, pair, min_overlap)
            if entity is not None:
                definitions[short_form] = entity
    by_span: dict[Span, list[Entity]] = {}
    for entity in doc.entities:
        if not entity.is_discontinuous:
            by_span.setdefault(entity.spans[0], []).append(entity)
    covered = sorted((e.start, e.end) for e in doc.entities)
    added: list[Entity] = []
    ids = _fresh_ids(doc)
    for short_form, long_entity in definitions.items():
        for match in re.finditer(rf"(?<!\w){re.escape(short_form)}(?!\w)", doc.text):
            span = Span(match.start(), match.end())
            if span in by_span:
                _inherit(by_span[span], long_entity)
            elif not any(a < span.end and span.start < b for a, b in covered):
                added.append(
                    doc.add_entity(
                        [span], type=long_entity.type, id=next(ids), score=long_entity.score, source=source,
                        links=_copy_links(long_entity.links), attributes={"abbreviation_of": long_entity.id},
                    )
                )
    return added


def _inherit(entities: list[Entity], long_entity: Entity) -> None:
    """Update the entities exactly on a short-form occurrence from the long form's."""
    same_type = [e for e in entities if e.type == long_entity.type]
    for entity in same_type:
        if not entity.links and long_entity.links:
            entity.links = _copy_links(long_entity.links)
    if same_type or long_entity.score is None:
        return
    scored = [e for e in entities if e.score is not None]
    if not scored:
        return  # unscored entities (gold, dictionary matches) are never overruled
    strongest = max(scored, key=lambda e: e.score)
    if long_entity.score > strongest.score:
        strongest.attributes["abbreviation_retyped_from"] = strongest.type
        strongest.type = long_entity.type
        strongest.links = _copy_links(long_entity.links)


def annotate(doc: Document, *, min_overlap: float = DEFAULT_MIN_OVERLAP, propagate_entities: bool = True) -> Document:
    """Detect definitions in ``doc``, store them in ``doc.metadata["abbreviations"]``
    and (by default) propagate long-form entities to short forms."""
    pairs = detect(doc)
    doc.metadata["abbreviations"] = [p.to_dict() for p in pairs]
    if propagate_entities and pairs:
        propagate(doc, pairs, min_overlap=min_overlap)
    return doc
