"""The Python API: ``biotag.load(path)`` returns a callable annotator.

>>> import biotag
>>> nlp = biotag.load()                      # the bundled default model and pipeline
>>> doc = nlp("BRCA1 mutations cause breast cancer.")
>>> [(e.text, e.type) for e in doc.entities]
>>> nlp = biotag.load(steps="ner,abbreviations")
>>> nlp = biotag.load(config="pipeline.json")
>>> nlp.stats()                              # per-step seconds, documents, memory
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence, overload

from biotag.document import Document
from biotag.errors import InputError
from biotag.ner import NerTagger
from biotag.paths import RESOURCES
from biotag.pipeline import NerStep, Pipeline, default_steps

DEFAULT_MODEL = RESOURCES / "models" / "default"


def default_model_path() -> Path:
    """The bundled default model (``$BIOTAG_MODEL`` overrides it)."""
    env = os.environ.get("BIOTAG_MODEL")
    return Path(env) if env else DEFAULT_MODEL


def load_predictor(
    path: str | os.PathLike | Sequence[str | os.PathLike] | None = None, *, threads: int | None = None, backend: str = "auto", decoder: str | None = None
):
    """A word-level predictor from a model directory: the ONNX Runtime engine when the
    directory holds an ONNX export (``backend="auto"`` or ``"onnx"``), else PyTorch.
    ``decoder`` (greedy, viterbi or crf) replaces the decoder the model was saved with,
    to compare decoders on one set of weights. A list of two or more directories gives an
    :class:`~biotag.models.ensemble.EnsemblePredictor` (the mean of their word
    distributions, decoded with ``viterbi`` or ``greedy``)."""
    if isinstance(path, (list, tuple)):
        if len(path) > 1:
            from biotag.models.ensemble import EnsemblePredictor

            members = [_load_predictor(p, threads=threads, backend=backend) for p in path]
            return EnsemblePredictor(members, names=[str(p) for p in path], decoder=decoder or "viterbi")
        path = path[0] if path else None
    predictor = _load_predictor(path, threads=threads, backend=backend)
    if decoder is not None:
        set_decoder(predictor, decoder)
    return predictor


def set_decoder(predictor, decoder: str) -> None:
    """Decode ``predictor``'s scores with ``decoder`` from now on: ``greedy`` (argmax),
    ``viterbi`` (BIO-constrained) or ``crf`` (only for a model trained with a CRF layer;
    greedy and viterbi on such a model ignore its transition scores)."""
    from biotag.models.decoding import DECODERS

    if decoder not in DECODERS:
        raise InputError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}", field="decoder")
    if decoder == "crf" and getattr(predictor, "crf", None) is None:
        raise InputError("the crf decoder needs a model trained with a CRF layer (decoder: crf in its training config)", field="decoder")
    predictor.decoder = decoder


def _load_predictor(path: str | os.PathLike | None, *, threads: int | None, backend: str):
    model_dir = Path(path) if path is not None else default_model_path()
    if not (model_dir / "biotag.json").is_file():
        raise InputError(
            "not a biotag model directory (no biotag.json); train one with `biotag train` or "
            "pass --model pointing at a model directory",
            path=str(model_dir),
            field="model",
        )
    has_onnx = any(model_dir.glob("*.onnx"))
    if backend == "onnx" or (backend == "auto" and has_onnx):
        from biotag.runtime.engine import OnnxTokenClassifier

        return OnnxTokenClassifier.from_pretrained(model_dir, threads=threads)
    if backend not in ("auto", "torch"):
        raise InputError(f"unknown backend {backend!r}; expected auto, onnx or torch", field="backend")
    if not any((model_dir / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        raise InputError(
            "no PyTorch weights (model.safetensors) in this model directory; it holds only an ONNX "
            "export: use backend='onnx' (or 'auto')",
            path=str(model_dir),
            field="backend",
        )
    import torch

    from biotag.models.token_classifier import TokenClassifier

    if threads:
        torch.set_num_threads(threads)
    model = TokenClassifier.from_pretrained(model_dir)
    model.eval()
    return model


class Annotator:
    """Callable over a string, a Document or an iterable of strings/Documents: runs a
    :class:`~biotag.pipeline.Pipeline` (by default sentences, NER, linking where
    available, abbreviations). A document that fails in a step is returned with the
    error in ``doc.errors``; the others are unaffected."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @property
    def tagger(self) -> NerTagger | None:
        """The NER tagger of the pipeline's ``ner`` step, if it has one."""
        step = next((s for s in self.pipeline.steps if isinstance(s, NerStep)), None)
        return step.tagger if step is not None else None

    @property
    def types(self) -> tuple[str, ...]:
        """Entity types the NER model predicts (empty without an NER step)."""
        return self.tagger.schema.types if self.tagger is not None else ()

    @overload
    def __call__(self, item: str | Document) -> Document: ...
    @overload
    def __call__(self, item: Iterable[str | Document]) -> list[Document]: ...

    def __call__(self, item):
        if isinstance(item, str):
            item = Document(id="text", text=item)
        if isinstance(item, Document):
            (doc,), _ = self.pipeline.process_batch([item])
            return doc
        return list(self.pipe(item))

    def pipe(self, docs: Iterable[str | Document]) -> Iterator[Document]:
        """Stream annotated documents (constant memory for any input size); a string
        becomes a Document with id ``text-<position>``."""
        return self.pipeline.pipe(_as_document(item, position) for position, item in enumerate(docs))

    def stats(self) -> dict[str, dict]:
        """Per-step timing (see :meth:`biotag.pipeline.Pipeline.stats`)."""
        return self.pipeline.stats()


def _as_document(item: str | Document, position: int) -> Document:
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document(id=f"text-{position}", text=item)
    raise InputError(
        f"expected a string or a Document, got {type(item).__name__}", document=f"#{position}", field="item"
    )


def load(
    path: str | os.PathLike | None = None,
    *,
    threads: int | None = None,
    backend: str = "auto",
    batch_size: int = 32,
    steps: str | Sequence[str | dict] | None = None,
    config: str | os.PathLike | dict | None = None,
    relation_model: str | os.PathLike | None = None,
) -> Annotator:
    """An :class:`Annotator` over the default pipeline, chosen ``steps`` (names, comma
    separated or a list, or step specs as in a config) or a pipeline ``config`` (a dict or
    a JSON file, see :mod:`biotag.pipeline.config`).

    ``path`` (a model directory, default: the bundled model), ``threads``, ``backend``
    and ``batch_size`` (sentences per forward pass) configure the ``ner`` step wherever
    the config does not say otherwise; no model is loaded without an ``ner`` step.
    ``relation_model`` is the model of a ``relations`` step (see :mod:`biotag.relations`).
    """
    ner_options = {"backend": backend, "threads": threads, "batch_size": batch_size}
    if path is not None:
        ner_options["model"] = os.fspath(path)
    ner_options = {k: v for k, v in ner_options.items() if v is not None}
    if steps is not None and config is not None:
        raise InputError("give either steps or a pipeline config, not both", field="steps")
    if steps is not None:
        names = [s.strip() for s in steps.split(",") if s.strip()] if isinstance(steps, str) else list(steps)
        config = {"steps": names}
    if config is None:
        return Annotator(Pipeline(default_steps(ner_options)))
    defaults = {"ner": ner_options}
    if relation_model is not None:
        defaults["relations"] = {"model": os.fspath(relation_model)}
    return Annotator(Pipeline.from_config(config, step_defaults=defaults))
