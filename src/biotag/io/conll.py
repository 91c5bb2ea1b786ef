"""CoNLL / IOB2: ``token<TAB>tag`` lines, a blank line after each sentence.

This is the layout of the MTL-Bioinformatics-2016 NER benchmarks (``train.tsv`` ...):
a line ``-DOCSTART-<TAB>O`` followed by a blank line opens a document (JNLPBA, s800);
files without it are a plain sequence of sentences.

Reading
    One Document per ``-DOCSTART-`` block; outside such blocks (a file without any)
    one Document per sentence, so memory stays constant either way. Ids are
    ``<file stem>:<n>`` with ``n`` counting the file's documents from 1 (a skipped bad
    document keeps its number, so ids do not shift). ``Document.text`` is the tokens of
    a sentence joined by one space, sentences joined by ``"\\n"``; the ``tokens`` and
    ``sentences`` layers hold their offsets. Entities come from the tags chunked as
    conlleval does (:func:`biotag.labels.spans_from_tags`), typed by the tag's type.
    ``metadata["conll_docstart"]`` records whether the block had a ``-DOCSTART-`` line.

Writing
    Tokens and sentences come from the document's layers when it has them, else from
    :func:`biotag.text.words.word_spans` and :func:`biotag.text.sentences.split_sentences`
    (automatic sentences are joined where an entity would be cut). A ``-DOCSTART-``
    line is written unless ``metadata["conll_docstart"]`` is false (or as ``docstart=``
    says), so ``write(read(f))`` reproduces a canonical IOB2 file byte for byte (an
    ``I-`` tag that starts a chunk is written back as ``B-``). Overlapping entities
    cannot be written: the earliest-starting, longest one is kept and the number
    dropped is logged, as are discontinuous entities; an entity whose boundaries are
    not token boundaries is a FormatError.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from biotag.document import Document, Entity, Span
from biotag.errors import FormatError
from biotag.io import ErrorHandler, handle_bad
from biotag.io.text import iter_lines, open_output
from biotag.labels import spans_from_tags

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"
METADATA_KEY = "conll_docstart"
_TAG = re.compile(r"O|[BIES][-_]\S+")  # what spans_from_tags understands
_BY_POSITION = attrgetter("start", "end")  # much faster sort key than Span's dataclass ordering


@dataclass
class _PendingDocument:
    """A document being read: its sentences as (tokens, tags) lists."""

    id: str
    docstart: bool
    sentences: list[tuple[list[str], list[str]]] = field(default_factory=list)
    failed: bool = False  # a bad line was reported: drop the rest of this document

    def to_document(self, source: str | None) -> Document:
        pieces: list[str] = []
        token_spans: list[Span] = []
        sentence_spans: list[Span] = []
        entities: list[Entity] = []
        offset = 0
        for tokens, tags in self.sentences:
            first_token = len(token_spans)
            position = offset
            for token in tokens:
                token_spans.append(Span(position, position + len(token)))
                position += len(token) + 1
            sentence = " ".join(tokens)
            pieces.append(sentence)
            sentence_spans.append(Span(offset, offset + len(sentence)))
            offset += len(sentence) + 1  # the "\n" between sentences
            for chunk in spans_from_tags(tags):
                start = token_spans[first_token + chunk.start].start
                end = token_spans[first_token + chunk.end - 1].end
                entities.append(Entity(f"T{len(entities) + 1}", chunk.type, [Span(start, end)], "", source=source))
        text = "\n".join(pieces)
        for entity in entities:
            entity.text = text[entity.start : entity.end]
        return Document(
            id=self.id,
            text=text,
            entities=entities,
            sentences=sentence_spans,
            tokens=token_spans,
            metadata={METADATA_KEY: self.docstart},
        )


def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    types: Iterable[str] | None = None,
    source: str | None = "gold",
    delimiter: str = "\t",
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Stream Documents from an IOB2 file; ``types`` makes a tag of any other entity type
    an error, ``source`` is set on every entity."""
    allowed_types = None if types is None else frozenset(types)
    stem = Path(path).stem
    path = str(path)
    count = 0
    doc: _PendingDocument | None = None
    tokens: list[str] = []
    tags: list[str] = []
    valid_tags = {"O"}  # tags already checked, to keep the per-line cost to a set lookup

    def new_document(docstart: bool) -> _PendingDocument:
        nonlocal count
        count += 1
        return _PendingDocument(f"{stem}:{count}", docstart)

    def fail(error: FormatError) -> None:
        nonlocal doc
        if doc is None:
            doc = new_document(False)
        if not doc.failed:
            doc.failed = True
            handle_bad(error.located(document=doc.id), skip_bad, on_error)

    def finish_sentence() -> Document | None:
        """Close the current sentence; returns a finished sentence-level Document."""
        nonlocal doc, tokens, tags
        if tokens and doc is None:
            doc = new_document(False)
        if tokens and not doc.failed:
            doc.sentences.append((tokens, tags))
        tokens, tags = [], []
        if doc is not None and not doc.docstart:
            finished, doc = doc, None
            if not finished.failed:
                return finished.to_document(source)
        return None

    for number, line in iter_lines(path, encoding):
        if isinstance(line, FormatError):
            fail(line)
            continue
        if not line.strip():
            finished = finish_sentence()
            if finished is not None:
                yield finished
            continue
        fields = line.split(delimiter)
        if len(fields) != 2:
            fail(
                FormatError(
                    f"expected 2 fields (token{delimiter!r}tag), found {len(fields)}: {line[:80]!r}",
                    path=path,
                    line=number,
                    field="fields",
                )
            )
            continue
        token, tag = fields
        if token == DOCSTART:
            finished = finish_sentence()
            if finished is not None:
                yield finished
            if doc is not None and not doc.failed:
                yield doc.to_document(source)
            doc = new_document(True)
            continue
        if tag not in valid_tags:
            problem = _check_tag(tag, allowed_types)
            if problem:
                fail(FormatError(problem, path=path, line=number, field="tag"))
                continue
            valid_tags.add(tag)
        if not token:
            fail(FormatError("empty token", path=path, line=number, field="token"))
            continue
        if doc is None:
            doc = new_document(False)
        tokens.append(token)
        tags.append(tag)
    finished = finish_sentence()
    if finished is not None:
        yield finished
    if doc is not None and not doc.failed:
        yield doc.to_document(source)


def _check_tag(tag: str, allowed_types: frozenset[str] | None) -> str | None:
    """Why ``tag`` is not acceptable, or None."""
    if not _TAG.fullmatch(tag):
        return f"unknown tag {tag!r}; expected O, B-<type> or I-<type>"
    if allowed_types is not None and tag != "O" and tag[2:] not in allowed_types:
        return f"unknown entity type {tag[2:]!r} in tag {tag!r}; expected one of {sorted(allowed_types)}"
    return None


# -- writing ------------------------------------------------------------------------
def write(
    docs: Iterable[Document],
    path: str | Path | IO[str],
    *,
    types: Iterable[str] | None = None,
    docstart: bool | None = None,
    delimiter: str = "\t",
) -> int:
    """Write Documents as IOB2; returns how many. ``types`` restricts the entity types
    written (others become ``O``); ``docstart`` forces the ``-DOCSTART-`` line on or off
    for every document (default: as the document's metadata says, on if unknown)."""
    wanted = None if types is None else frozenset(types)
    count = 0
    with open_output(path) as out:
        for doc in docs:
            with_docstart = doc.metadata.get(METADATA_KEY, True) if docstart is None else docstart
            if with_docstart:
                out.write(f"{DOCSTART}{delimiter}O\n\n")
            for sentence in _tagged_sentences(doc, wanted):
                out.write("".join(f"{token}{delimiter}{tag}\n" for token, tag in sentence))
                out.write("\n")
            count += 1
    return count


def _tagged_sentences(doc: Document, wanted: frozenset[str] | None) -> list[list[tuple[str, str]]]:
    """The document's sentences as lists of (token text, IOB2 tag)."""
    entities = [e for e in doc.entities if wanted is None or e.type in wanted]
    discontinuous = [e for e in entities if e.is_discontinuous]
    if discontinuous:
        log.warning("document %s: %d discontinuous entities cannot be written in IOB2 and were left out", doc.id, len(discontinuous))
        entities = [e for e in entities if not e.is_discontinuous]
    sentences, tokens = _segmentation(doc, entities)
    starts = {t.start: i for i, t in enumerate(tokens)}
    ends = {t.end: i for i, t in enumerate(tokens)}
    sentence_starts = [s.start for s in sentences]
    sentence_of_token = [max(0, bisect_right(sentence_starts, t.start) - 1) for t in tokens]
    tags = ["O"] * len(tokens)
    dropped = 0
    for entity in sorted(entities, key=lambda e: (e.start, -e.end, e.type)):
        _check_type(doc, entity)
        first, last = starts.get(entity.start), ends.get(entity.end)
        if first is None or last is None or last < first:
            edge = "start" if first is None else "end"
            raise FormatError(
                f"entity {entity.id} ({entity.type} {entity.text!r} at [{entity.start}, {entity.end})) "
                f"does not {edge} on a token boundary",
                document=doc.id,
                field="entities",
            )
        if sentence_of_token[first] != sentence_of_token[last]:
            raise FormatError(
                f"entity {entity.id} ({entity.type} {entity.text!r}) crosses a sentence boundary",
                document=doc.id,
                field="entities",
            )
        if any(tag != "O" for tag in tags[first : last + 1]):
            dropped += 1
            continue
        tags[first] = f"B-{entity.type}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{entity.type}"
    if dropped:
        log.warning("document %s: %d overlapping entities cannot be written in IOB2 and were left out", doc.id, dropped)
    grouped: list[list[tuple[str, str]]] = [[] for _ in sentences]
    for i, span in enumerate(tokens):
        grouped[sentence_of_token[i]].append((_token_text(doc, span), tags[i]))
    return [sentence for sentence in grouped if sentence]


def _check_type(doc: Document, entity: Entity) -> None:
    if not entity.type or any(ch.isspace() for ch in entity.type):
        raise FormatError(
            f"entity {entity.id}: type {entity.type!r} cannot be written as a tag (empty or has whitespace)",
            document=doc.id,
            field="entities.type",
        )


def _token_text(doc: Document, span: Span) -> str:
    token = doc.text[span.start : span.end]
    if not token or "\n" in token or "\r" in token or "\t" in token:
        raise FormatError(
            f"token [{span.start}, {span.end}) {token!r} is empty or holds a tab or line break",
            document=doc.id,
            field="tokens",
        )
    return token


def _segmentation(doc: Document, entities: Sequence[Entity]) -> tuple[list[Span], list[Span]]:
    """Sentence and token spans, from the document's layers or computed."""
    if doc.sentences is not None:
        sentences = sorted(doc.sentences, key=_BY_POSITION)
    else:
        from biotag.text.sentences import split_sentences

        sentences = _join_cut_entities([Span(s, e) for s, e in split_sentences(doc.text)], entities)
    if doc.tokens is not None:
        return sentences, sorted(doc.tokens, key=_BY_POSITION)
    from biotag.text.words import word_spans

    tokens = [Span(s, e) for sentence in sentences for s, e in word_spans(doc.text, sentence.start, sentence.end)]
    return sentences, tokens


def _join_cut_entities(sentences: list[Span], entities: Sequence[Entity]) -> list[Span]:
    """Merge automatic sentences that an entity runs across (a splitter error, or an
    abbreviation inside a name): a sentence break inside an entity cannot be written."""
    if len(sentences) < 2:
        return sentences
    starts = [s.start for s in sentences]
    glued = [False] * (len(sentences) - 1)  # glued[k]: sentence k continues into k + 1
    for entity in entities:
        first = max(0, bisect_right(starts, entity.start) - 1)
        last = max(0, bisect_right(starts, entity.end - 1) - 1)
        for k in range(first, last):
            glued[k] = True
    merged = [sentences[0]]
    for k, sentence in enumerate(sentences[1:]):
        if glued[k]:
            merged[-1] = Span(merged[-1].start, sentence.end)
        else:
            merged.append(sentence)
    return merged
