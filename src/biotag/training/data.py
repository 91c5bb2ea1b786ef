"""Training data: corpora -> sentence examples -> tokenized items -> epoch batch plans.

An :class:`Example` is one sentence: its words, its gold entities as word spans and
the mask of entity types its corpus annotates (a corpus that does not annotate genes
says nothing about genes, so no loss is taken on them). Entity character spans are
mapped to word spans by bisection over word offsets; an entity whose boundaries fall
inside words is extended to the covering words, a discontinuous one to its covering
span, one crossing a sentence end is cut there. :class:`AlignmentStats` counts each
case so the training log can report them.

:func:`epoch_batches` plans one epoch from ``(seed, epoch)`` alone: which items each
corpus contributes (temperature sampling), their shuffled order and the length-bucketed
batches. The plan is a pure function of that seed, which is what lets a resumed run
replay exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from biotag.document import Document
from biotag.labels import LabelSchema, TokenSpan
from biotag.text.segment import sentence_words
from biotag.text.subwords import SubwordBatch, SubwordEncoder, Window

log = logging.getLogger(__name__)

BATCHES_PER_BUCKET = 32  # batches whose items are sorted by length together


@dataclass
class AlignmentStats:
    """How entity character spans were fitted onto words."""

    entities: int = 0  # entities of the schema's types, as found in the documents
    extended: int = 0  # a boundary fell inside a word: extended to the covering words
    discontinuous: int = 0  # several fragments: trained as their covering span
    cross_sentence: int = 0  # crossed a sentence end: cut at the end of its first sentence
    no_words: int = 0  # covered no word at all: dropped
    other_types: int = 0  # types the model does not predict: ignored
    unknown_words: int = 0  # words with no sub-word, encoded as [UNK]

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class Example:
    key: tuple[str, str, int]  # (corpus, document id, sentence index): unique unit key
    corpus: int  # index into the config's corpora
    words: list[str]
    spans: list[TokenSpan]  # gold word spans of the schema's types
    type_mask: np.ndarray  # bool [n_types]: types the example's corpus annotates
    # bool [n_words, n_types] or None: words where a type the corpus does not annotate is
    # known to be absent anyway (inside a gold span of a type that excludes it)
    known_absent: np.ndarray | None = None
    # bool [n_words, n_types] or None: words where a type the corpus annotates is unknown
    # after all (inside a gold span of a type that may hide it, see uncertain_inside)
    unsure: np.ndarray | None = None


@dataclass(slots=True)
class Corpus:
    name: str
    types: tuple[str, ...]  # types it annotates, in schema terms
    train: list[Document] = field(default_factory=list)
    devel: list[Document] = field(default_factory=list)


# -- reading corpora ---------------------------------------------------------------
def load_corpus(name: str, train_split: str, devel_split: str, unify_types: bool, model_types: Sequence[str] | None = None) -> Corpus:
    """A registered corpus by name, a folder of ``<split>.*`` files, or one file.

    With ``unify_types``, a label naming one of ``model_types`` that is a finer type keeps it
    (:meth:`~biotag.corpora.CorpusSpec.type_map_for`: JNLPBA's ``protein`` for a model
    with a ``protein`` type), the others map onto biotag's unified types.

    A corpus without a devel split (one file, or a registered corpus with train and test
    only) gives a fixed tenth of its training documents to devel, chosen by a hash of
    the document ids so every run picks the same ones.
    """
    from biotag.corpora import read_corpus, resolve, unify_document_types
    from biotag.entity_types import unified_types

    spec = resolve(name)
    train = list(read_corpus(name, train_split))
    has_devel = spec.file is None and devel_split in spec.splits
    devel = list(read_corpus(name, devel_split)) if has_devel else None
    if devel is None:
        train, devel = _hold_out(train)
        log.info("%s has no %s split: %d of its %s documents are held out for it", name, devel_split, len(devel), train_split)
    if unify_types:
        type_map = spec.type_map_for(model_types)
        train, devel = ([unify_document_types(doc, type_map) for doc in docs] for docs in (train, devel))
    if spec.types:
        types = tuple(spec.types_for(model_types)) if unify_types else tuple(spec.label_map)
    else:  # a user's corpus declares nothing: it annotates the types its training data has
        found = {e.type for doc in train for e in doc.entities}
        types = unified_types(found) if unify_types else tuple(sorted(found))
    return Corpus(name, types, train, devel)


def _hold_out(docs: list[Document], tenths: int = 1) -> tuple[list[Document], list[Document]]:
    """Split documents into (kept, held out) by :func:`biotag.corpora.held_out`."""
    from biotag.corpora import held_out

    held = [held_out(doc.id, tenths) for doc in docs]
    return [d for d, h in zip(docs, held) if not h], [d for d, h in zip(docs, held) if h]


# -- documents -> sentence examples --------------------------------------------------
def document_examples(
    doc: Document,
    corpus_index: int,
    corpus_name: str,
    schema: LabelSchema,
    annotated: Sequence[str],
    stats: AlignmentStats,
    negative_evidence: Mapping[str, Sequence[str]] = {},
    uncertain_inside: Mapping[str, Sequence[str]] = {},
) -> list[Example]:
    """One example per non-empty sentence of ``doc``.

    ``negative_evidence`` maps a type to the types whose gold spans exclude it (e.g.
    ``{"chemical": ["gene"]}``: a gold gene is not a chemical); on a corpus that does not
    annotate the first type, the words of such spans teach "not that type" instead of
    nothing. ``uncertain_inside`` maps a type to the types whose gold spans may hide it
    (``{"gene": ["dna", "rna"]}``: JNLPBA labels "BRCA1 gene" DNA, never also gene); on a
    corpus annotating both, the first type's "O" inside such spans teaches nothing."""
    sentences = sentence_words(doc)  # the document's own layers where it has them
    flat = [(si, wi, a, b) for si, ws in enumerate(sentences) for wi, (a, b) in enumerate(ws)]
    starts = [a for _, _, a, _ in flat]
    ends = [b for _, _, _, b in flat]
    spans: list[list[TokenSpan]] = [[] for _ in sentences]
    for entity in doc.entities:
        if entity.type not in schema.types:
            stats.other_types += 1
            continue
        stats.entities += 1
        stats.discontinuous += entity.is_discontinuous
        first, stop = bisect_right(ends, entity.start), bisect_left(starts, entity.end)
        if first >= stop:
            stats.no_words += 1
            continue
        stats.extended += starts[first] != entity.start or ends[stop - 1] != entity.end
        sentence, start_word = flat[first][0], flat[first][1]
        if flat[stop - 1][0] != sentence:
            stats.cross_sentence += 1
            end_word = len(sentences[sentence])
        else:
            end_word = flat[stop - 1][1] + 1
        spans[sentence].append(TokenSpan(start_word, end_word, entity.type))
    mask = np.array([t in annotated for t in schema.types], dtype=bool)
    excluded = _exclusions(schema, annotated, negative_evidence)
    hidden = _hiding(schema, annotated, uncertain_inside)
    return [
        Example(
            (corpus_name, doc.id, si), corpus_index, [doc.text[a:b] for a, b in ws], sorted(set(spans[si])), mask,
            _mark_spans(len(ws), spans[si], excluded, len(schema.types)),
            _unsure(len(ws), spans[si], hidden, schema.types),
        )
        for si, ws in enumerate(sentences)
        if ws
    ]


def _exclusions(schema: LabelSchema, annotated: Sequence[str], negative_evidence: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """gold type -> indices of the un-annotated types its spans exclude."""
    out: dict[str, list[int]] = {}
    for target, sources in negative_evidence.items():
        if target in schema.types and target not in annotated:
            for source in sources:
                if source in annotated:
                    out.setdefault(source, []).append(schema.types.index(target))
    return out


def _mark_spans(n_words: int, spans: Sequence[TokenSpan], columns_by_type: Mapping[str, list[int]], n_types: int) -> np.ndarray | None:
    """True at the words of each gold span, in the columns its type names; None if none."""
    marks = [(s, columns_by_type[s.type]) for s in spans if s.type in columns_by_type]
    if not marks:
        return None
    marked = np.zeros((n_words, n_types), dtype=bool)
    for span, columns in marks:
        marked[span.start : span.end, columns] = True
    return marked


def _hiding(schema: LabelSchema, annotated: Sequence[str], uncertain_inside: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """gold type -> indices of the annotated types its spans may hide."""
    out: dict[str, list[int]] = {}
    for target, sources in uncertain_inside.items():
        if target in schema.types and target in annotated:
            for source in sources:
                if source in annotated and source != target:
                    out.setdefault(source, []).append(schema.types.index(target))
    return out


def _unsure(n_words: int, spans: Sequence[TokenSpan], hidden: Mapping[str, list[int]], types: Sequence[str]) -> np.ndarray | None:
    unsure = _mark_spans(n_words, spans, hidden, len(types))
    if unsure is None:
        return None
    for span in spans:  # a gold span of the hidden type itself is evidence, not doubt
        unsure[span.start : span.end, types.index(span.type)] = False
    return unsure


def corpus_examples(
    docs: Iterable[Document],
    corpus_index: int,
    corpus: Corpus,
    schema: LabelSchema,
    stats: AlignmentStats,
    negative_evidence: Mapping[str, Sequence[str]] = {},
    uncertain_inside: Mapping[str, Sequence[str]] = {},
) -> list[Example]:
    out: list[Example] = []
    for doc in docs:
        out.extend(document_examples(doc, corpus_index, corpus.name, schema, corpus.types, stats, negative_evidence, uncertain_inside))
    return out


# -- examples -> tokenized training items ---------------------------------------------
@dataclass(slots=True)
class TrainItem:
    window: Window
    labels: np.ndarray  # gold label ids of the words the window owns
    type_mask: np.ndarray  # bool [n_types], or [n_words, n_types] where some words say more
    corpus: int
    features: np.ndarray | None = None  # uint8 [n_words, width] of models with word features


@dataclass(slots=True)
class TrainBatch:
    subwords: SubwordBatch
    labels: np.ndarray  # [n_words] (bio) or [n_words, n_types] (multilabel)
    type_mask: np.ndarray  # bool [n_words, n_types]


def training_items(
    examples: Sequence[Example], encoder: SubwordEncoder, schema: LabelSchema, stats: AlignmentStats, features=None
) -> list[TrainItem]:
    """Tokenized windows with their labels; ``features`` (a word list -> per-word rows,
    see :mod:`biotag.features`) adds each owned word's features, computed on the whole
    sentence as at inference."""
    encoding = encoder.encode([e.words for e in examples])
    stats.unknown_words += encoding.unknown_words
    per_example: dict[int, np.ndarray] = {}
    items = []
    for window in encoding.windows:
        example = examples[window.sequence]
        labels = schema.encode(len(example.words), example.spans)[window.words]
        mask = example.type_mask if example.known_absent is None else (example.type_mask | example.known_absent)[window.words]
        if example.unsure is not None:
            mask = np.broadcast_to(mask, example.unsure[window.words].shape) & ~example.unsure[window.words]
        rows = None
        if features is not None:
            if window.sequence not in per_example:
                per_example = {window.sequence: features(example.words)}  # windows of a sentence are consecutive
            rows = per_example[window.sequence][window.words]
        items.append(TrainItem(window, labels, mask, example.corpus, rows))
    return items


def collate_items(items: Sequence[TrainItem], encoder: SubwordEncoder) -> TrainBatch:
    subwords = encoder.collate([it.window for it in items])
    if items[0].features is not None:
        subwords = replace(subwords, word_features=np.concatenate([it.features for it in items]))
    labels = np.concatenate([it.labels for it in items])
    n_types = items[0].type_mask.shape[-1]
    mask = np.concatenate([np.broadcast_to(it.type_mask, (len(it.labels), n_types)) for it in items])
    return TrainBatch(subwords, labels, mask)


# -- epoch plans -----------------------------------------------------------------------
def corpus_shares(sizes: Sequence[int], temperature: float) -> np.ndarray:
    """Items each corpus gives an epoch of ``sum(sizes)`` items, ``∝ size ** temperature``
    (largest-remainder rounding, so the shares add up exactly)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    total = int(sizes.sum())
    weights = np.where(sizes > 0, sizes**temperature, 0.0)
    exact = weights / weights.sum() * total
    shares = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - shares), kind="stable")[: total - int(shares.sum())]:
        shares[i] += 1
    return shares


def epoch_batches(
    corpus_of_item: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    temperature: float,
    seed: int,
    epoch: int,
) -> list[np.ndarray]:
    """The batches (arrays of item indices) of one epoch, a pure function of its
    arguments: sample each corpus' share, shuffle, sort buckets of
    ``BATCHES_PER_BUCKET`` batches by length (less padding), cut, shuffle the batches."""
    rng = np.random.default_rng([seed, epoch])
    n_corpora = int(corpus_of_item.max()) + 1 if len(corpus_of_item) else 0
    members = [np.flatnonzero(corpus_of_item == c) for c in range(n_corpora)]
    shares = corpus_shares([len(m) for m in members], temperature)
    chosen = []
    for m, share in zip(members, shares):
        full, rest = divmod(int(share), len(m)) if len(m) else (0, 0)
        chosen.extend(m[rng.permutation(len(m))] for _ in range(full))  # oversampled: whole passes
        chosen.append(m[rng.choice(len(m), size=rest, replace=False)] if rest else m[:0])
    order = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    order = order[rng.permutation(len(order))]
    bucket = batch_size * BATCHES_PER_BUCKET
    batches = []
    for i in range(0, len(order), bucket):
        part = order[i : i + bucket]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    return [batches[k] for k in rng.permutation(len(batches))]
