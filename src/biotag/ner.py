"""Named-entity recognition over Documents with any word-level predictor.

A *predictor* is anything with a ``schema`` (:class:`~biotag.labels.LabelSchema`) and
``predict_words(word_lists, batch_size=...) -> list[np.ndarray]`` returning per-word
scores: the PyTorch :class:`~biotag.models.token_classifier.TokenClassifier` and the ONNX
Runtime engine both qualify. :class:`NerTagger` segments documents into sentences and
words (keeping segmentations a reader already supplied, e.g. CoNLL tokens), predicts
all sentences of a batch of documents together, decodes with BIO constraints and adds
entities with character offsets into the original text.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from biotag.document import Document, Span
from biotag.labels import LabelSchema, TokenSpan


class WordPredictor(Protocol):
    schema: LabelSchema

    def predict_words(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]: ...


def sentence_word_offsets(doc: Document) -> list[list[tuple[int, int]]]:
    """Word offsets per sentence, segmenting the document first where needed."""
    from biotag.text.segment import segment, sentence_words

    segment(doc)
    return sentence_words(doc)


class NerTagger:
    """Adds the entities a word-level model finds to documents."""

    def __init__(
        self,
        predictor: WordPredictor,
        *,
        name: str = "ner",
        batch_size: int = 32,
        docs_per_batch: int = 64,
        constrained: bool = True,
        min_score: float = 0.0,
        type_names: dict[str, str] | None = None,
    ) -> None:
        self.predictor = predictor
        self.name = name
        self.batch_size = batch_size
        self.docs_per_batch = docs_per_batch
        self.constrained = constrained
        self.min_score = min_score
        self.type_names = type_names or {}

    @property
    def schema(self) -> LabelSchema:
        return self.predictor.schema

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        docs = iter(docs)
        while batch := list(islice(docs, self.docs_per_batch)):
            self.tag_batch(batch)
            yield from batch

    def _decode(self, scores: list[np.ndarray]) -> list[list[tuple[TokenSpan, float]]]:
        """Spans per sentence by the predictor's own decoder (a CRF's transitions; all
        sentences at once when it can), else the schema's."""
        many = getattr(self.predictor, "decode_batch", None)
        if many is not None:
            return many(scores, constrained=self.constrained)
        decode = getattr(self.predictor, "decode", None) or self.schema.decode
        return [decode(s, constrained=self.constrained) for s in scores]

    def tag_batch(self, docs: Sequence[Document]) -> None:
        units: list[tuple[Document, list[tuple[int, int]]]] = []
        for doc in docs:
            for words in sentence_word_offsets(doc):
                if words:
                    units.append((doc, words))
        word_lists = [[doc.text[a:b] for a, b in words] for doc, words in units]
        scores = self.predictor.predict_words(word_lists, batch_size=self.batch_size) if word_lists else []
        for (doc, words), decoded in zip(units, self._decode(scores)):
            for span, conf in decoded:
                if conf < self.min_score:
                    continue
                start, end = words[span.start][0], words[span.end - 1][1]
                doc.add_entity(
                    [Span(start, end)],
                    type=self.type_names.get(span.type, span.type),
                    score=round(conf, 4),
                    source=self.name,
                )
