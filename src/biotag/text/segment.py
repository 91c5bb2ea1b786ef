"""Fill a document's sentence and token layers, and read words sentence by sentence.

This is what a tagger calls on raw text: :func:`segment` adds ``doc.sentences`` (split
within each passage, so a sentence never crosses a passage boundary) and ``doc.tokens``
(split within each sentence, so a word never crosses a sentence boundary) where they are
missing; :func:`sentence_words` gives the word offsets of each sentence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from biotag.document import Document, Span
from biotag.errors import ValidationError
from biotag.text.sentences import split_sentences
from biotag.text.words import word_spans


def segment(doc: Document, *, max_chars: int | None = None) -> Document:
    """Fill ``doc.sentences`` and ``doc.tokens`` where they are ``None``; returns ``doc``.

    Text between or outside passages is split on its own too, so every non-space
    character ends up in one sentence and one token. ``max_chars`` bounds sentence length
    (see :func:`~biotag.text.sentences.split_sentences`). When the document already has
    tokens, two sentences are merged where their boundary would cut a token.
    """
    if doc.sentences is None:
        sentences = [
            span for start, end in _regions(doc) for span in split_sentences(doc.text, start, end, max_chars=max_chars)
        ]
        if doc.tokens is not None:
            sentences = _merge_cut_sentences(sentences, _checked_layer(doc, "tokens"))
        doc.sentences = [Span(s, e) for s, e in sentences]
    if doc.tokens is None:
        doc.tokens = [Span(s, e) for start, end in _pieces(doc) for s, e in word_spans(doc.text, start, end)]
    return doc


def sentence_words(doc: Document) -> list[list[tuple[int, int]]]:
    """Word offsets of each sentence of ``doc`` (segmenting it first where needed).

    Raises :class:`~biotag.errors.ValidationError` when given layers disagree: a token
    that crosses a sentence boundary.
    """
    segment(doc)
    tokens = _checked_layer(doc, "tokens")
    starts = [s for s, _ in tokens]
    out = []
    for s, e in _checked_layer(doc, "sentences"):
        i, j = bisect_left(starts, s), bisect_left(starts, e)
        if j > i and tokens[j - 1][1] > e:
            a, b = tokens[j - 1]
            raise ValidationError(f"token [{a}, {b}) crosses the end of sentence [{s}, {e})", document=doc.id, field="tokens")
        out.append(tokens[i:j])
    return out


def _regions(doc: Document) -> list[tuple[int, int]]:
    """Passages, and the stretches between and around them, as consecutive regions
    covering the text (overlapping passages are clipped to follow one another)."""
    n = len(doc.text)
    cuts = {0, n}
    for i, p in enumerate(doc.passages):
        if not (0 <= p.start <= p.end <= n):
            raise ValidationError(
                f"passage {i} ({p.type}) [{p.start}, {p.end}) is outside the text (0..{n})", document=doc.id, field="passages"
            )
        cuts.update((p.start, p.end))
    ordered = sorted(cuts)
    return list(zip(ordered[:-1], ordered[1:], strict=True))


def _pieces(doc: Document) -> list[tuple[int, int]]:
    """The sentences and the stretches between them, covering the text: tokens are split
    within each, so no token crosses a sentence boundary."""
    n = len(doc.text)
    cuts = {0, n}
    for s, e in _checked_layer(doc, "sentences"):
        cuts.update((s, e))
    ordered = sorted(cuts)
    return list(zip(ordered[:-1], ordered[1:], strict=True))


def _checked_layer(doc: Document, layer: str) -> list[tuple[int, int]]:
    """A span layer as sorted ``(start, end)`` pairs, checked to be inside the text and
    non-overlapping."""
    spans = sorted((s.start, s.end) for s in getattr(doc, layer))
    n = len(doc.text)
    previous_end = 0
    for s, e in spans:
        if not (0 <= s <= e <= n):
            raise ValidationError(f"[{s}, {e}) is outside the text (0..{n})", document=doc.id, field=layer)
        if s < previous_end:
            raise ValidationError(f"[{s}, {e}) overlaps the span before it", document=doc.id, field=layer)
        previous_end = e
    return spans


def _merge_cut_sentences(sentences: list[tuple[int, int]], tokens: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentences with each one merged into the next where a token crosses their boundary."""
    ends = [e for _, e in tokens]
    merged: list[tuple[int, int]] = []
    for s, e in sentences:
        if merged:
            previous_start, previous_end = merged[-1]
            k = bisect_right(ends, previous_end)  # first token ending after the previous sentence
            if k < len(tokens) and tokens[k][0] < previous_end:
                merged[-1] = (previous_start, e)
                continue
        merged.append((s, e))
    return merged
