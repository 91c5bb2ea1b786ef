"""The Python API: ``biotag.load(path)`` returns a callable annotator.

>>> import biotag
>>> nlp = biotag.load()                      # the bundled default model
>>> doc = nlp("BRCA1 mutations cause breast cancer.")
>>> [(e.text, e.type) for e in doc.entities]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, overload

from biotag.document import Document
from biotag.errors import InputError
from biotag.ner import NerTagger
from biotag.paths import RESOURCES

DEFAULT_MODEL = RESOURCES / "models" / "default"


def default_model_path() -> Path:
    """The bundled default model (``$BIOTAG_MODEL`` overrides it)."""
    env = os.environ.get("BIOTAG_MODEL")
    return Path(env) if env else DEFAULT_MODEL


def load_predictor(path: str | os.PathLike | None = None, *, threads: int | None = None, backend: str = "auto"):
    """A word-level predictor from a model directory: the ONNX Runtime engine when the
    directory holds an ONNX export (``backend="auto"`` or ``"onnx"``), else PyTorch."""
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
    import torch

    from biotag.models.token_classifier import TokenClassifier

    if threads:
        torch.set_num_threads(threads)
    model = TokenClassifier.from_pretrained(model_dir)
    model.eval()
    return model


class Annotator:
    """Callable over a string, a Document or an iterable of Documents."""

    def __init__(self, tagger: NerTagger) -> None:
        self.tagger = tagger

    @property
    def types(self) -> tuple[str, ...]:
        return self.tagger.schema.types

    @overload
    def __call__(self, item: str | Document) -> Document: ...
    @overload
    def __call__(self, item: Iterable[Document]) -> list[Document]: ...

    def __call__(self, item):
        if isinstance(item, str):
            return next(self.tagger([Document(id="text", text=item)]))
        if isinstance(item, Document):
            return next(self.tagger([item]))
        return list(self.tagger(item))

    def pipe(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Stream annotated documents (constant memory for any input size)."""
        return self.tagger(docs)


def load(
    path: str | os.PathLike | None = None,
    *,
    threads: int | None = None,
    backend: str = "auto",
    batch_size: int = 32,
) -> Annotator:
    """Load a model directory (default: the bundled model) as an :class:`Annotator`."""
    predictor = load_predictor(path, threads=threads, backend=backend)
    return Annotator(NerTagger(predictor, batch_size=batch_size))
