"""The steps biotag ships: ``sentences``, ``ner``, ``abbreviations``, ``linking`` and ``relations``.

The default pipeline is ``sentences, ner, linking, abbreviations`` when entity linking
is installed and its indexes are available, otherwise ``sentences, ner,
abbreviations`` (the log says which and why). Abbreviations run after linking so that
short forms inherit the links of their long forms as well as their types.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from biotag.document import Document
from biotag.errors import BiotagError, InputError
from biotag.pipeline.registry import register_step
from biotag.pipeline.step import Step, each_document

log = logging.getLogger("biotag.pipeline")


@register_step("sentences")
def sentences(*, max_chars: int | None = None):
    """Fill the sentence and token layers where missing (:func:`biotag.text.segment.segment`)."""
    from biotag.text.segment import segment

    def split(doc: Document) -> Document:
        return segment(doc, max_chars=max_chars)

    return each_document(split)


class NerStep(Step):
    """A step around a :class:`~biotag.ner.NerTagger` (all sentences of a batch of
    documents go through the model together); ``tagger`` stays reachable."""

    def __init__(self, tagger: Any, name: str = "ner") -> None:
        super().__init__(name, tagger.tag_batch)
        self.tagger = tagger


@register_step("ner")
def ner(
    *,
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    threads: int | None = None,
    batch_size: int = 32,
    min_score: float = 0.0,
):
    """Named-entity recognition with a model directory (default: the bundled model,
    see :func:`biotag.api.default_model_path`); ``batch_size`` is sentences per forward pass."""
    from biotag.api import load_predictor
    from biotag.ner import NerTagger

    predictor = load_predictor(model, threads=threads, backend=backend)
    return NerStep(NerTagger(predictor, batch_size=batch_size, min_score=min_score))


@register_step("abbreviations")
def abbreviations(*, min_overlap: float | None = None, propagate: bool = True):
    """Schwartz-Hearst abbreviation definitions, propagated to short forms
    (:mod:`biotag.abbreviations`)."""
    from biotag.abbreviations import DEFAULT_MIN_OVERLAP, annotate

    overlap = DEFAULT_MIN_OVERLAP if min_overlap is None else min_overlap

    def find(doc: Document) -> Document:
        return annotate(doc, min_overlap=overlap, propagate_entities=propagate)

    return each_document(find)


@register_step("linking")
def linking(**options: Any):
    """Entity linking to ontology identifiers with :class:`biotag.linking.Linker`
    (imported here, on first use; ``options`` go to its constructor)."""
    try:
        from biotag.linking import Linker
    except ImportError as error:
        raise InputError(f"entity linking is not installed ({error})", field="steps.linking") from None
    return Linker(**options).link_documents


@register_step("relations")
def relations(
    *,
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    threads: int | None = None,
    window: int = 1,
    batch_size: int = 64,
    min_score: float = 0.0,
):
    """Relations between the entities found by earlier steps (NER, linking), with a
    relation model directory (``$BIOTAG_RELATION_MODEL`` when not given); see
    :mod:`biotag.relations.extractor`. ``window`` is sentences per candidate pair."""
    from biotag.relations.extractor import RelationExtractor
    from biotag.relations.onnx import load_relation_model

    model = model or os.environ.get("BIOTAG_RELATION_MODEL")
    if not model:
        raise InputError(
            "the relations step needs a relation model: --relation-model DIR, a step option "
            '{"name": "relations", "model": DIR} or $BIOTAG_RELATION_MODEL',
            field="steps.relations.model",
        )
    predictor = load_relation_model(model, backend=backend, threads=threads)
    return RelationExtractor(predictor, window=window, batch_size=batch_size, min_score=min_score).extract


def default_steps(ner_options: dict[str, Any] | None = None) -> list[Step]:
    """The default pipeline's steps (``ner_options`` go to the ``ner`` factory). Linking
    is in only when it imports and its default indexes load; the log says which."""
    from biotag.pipeline.registry import build_step

    steps = [build_step("sentences"), build_step("ner", ner_options)]
    try:
        steps.append(build_step("linking"))
    except (BiotagError, OSError) as error:
        log.info("default pipeline without a linking step: %s", getattr(error, "message", error))
    steps.append(build_step("abbreviations"))
    log.info("default pipeline: %s", ", ".join(s.name for s in steps))
    return steps
