"""A pipeline step: a named callable ``step(docs) -> docs`` that never lets one bad
document stop a batch.

A step's work is a *batch function* ``process(docs: list[Document]) -> list[Document] |
None`` (returning ``None`` means "I changed the documents in place"). :class:`Step`
wraps it so that an exception is caught and recorded on the document that caused it::

    doc.errors == [{"step": "ner", "type": "ValidationError", "message": "..."}]

When the batch call raises, the step cannot know which document was at fault, so it
rolls the batch back and re-runs it document by document: the good documents are
processed normally and only the culprit carries the error (Kazu's batch steps mark the
whole batch as failed instead). Rolling back restores what a step typically adds --
the entity, relation, sentence and token layers, the metadata keys -- from a cheap
snapshot of references taken before the call; in-place edits of existing entities are
not undone, which is why steps are expected to be idempotent on a document they
already partly processed (every built-in step is).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from biotag.document import Document
from biotag.errors import BiotagError

log = logging.getLogger("biotag.pipeline")

BatchFunction = Callable[[list[Document]], "list[Document] | None"]
DocumentFunction = Callable[[Document], "Document | None"]


class StepError(BiotagError):
    """A step broke its contract (e.g. returned a different number of documents)."""


def error_record(step_name: str, error: BaseException) -> dict[str, str]:
    """The JSON-friendly description of a failure kept in ``Document.errors``."""
    return {"step": step_name, "type": type(error).__name__, "message": str(error)}


def each_document(function: DocumentFunction) -> BatchFunction:
    """A batch function applying ``function`` to each document in turn (for steps with
    no batch-level speed-up, such as sentence splitting)."""

    def process(docs: list[Document]) -> list[Document]:
        return [function(doc) or doc for doc in docs]

    process.__name__ = getattr(function, "__name__", "process")
    process.__doc__ = function.__doc__
    return process


@dataclass(slots=True)
class _Snapshot:
    """References to the layers of a document a step may replace or append to."""

    doc: Document
    entities: list
    relations: list
    sentences: Any
    tokens: Any
    metadata: dict
    n_errors: int

    @classmethod
    def of(cls, doc: Document) -> "_Snapshot":
        return cls(doc, list(doc.entities), list(doc.relations), doc.sentences, doc.tokens, dict(doc.metadata), len(doc.errors))

    def restore(self) -> None:
        doc = self.doc
        doc.entities = self.entities
        doc.relations = self.relations
        doc.sentences = self.sentences
        doc.tokens = self.tokens
        doc.metadata = self.metadata
        del doc.errors[self.n_errors :]


class Step:
    """A named, error-capturing pipeline step around a batch function.

    ``run_failed`` says whether a pipeline hands this step documents that already failed
    in an earlier step (default: no, they are passed on untouched). ``factory`` and
    ``options`` record how the registry built the step, so that a pipeline can be
    written back as a config; a step built directly from code has no factory.
    """

    def __init__(
        self,
        name: str,
        process: BatchFunction,
        *,
        run_failed: bool = False,
        factory: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a step needs a non-empty name")
        self.name = name
        self.process = process
        self.run_failed = run_failed
        self.factory = factory
        self.options = dict(options or {})

    def __repr__(self) -> str:
        return f"Step({self.name!r})"

    def __call__(self, docs: list[Document]) -> list[Document]:
        """Process ``docs``; returns one document per input, in order. A document whose
        processing raised is returned as it was before the step, with the error appended
        to its ``errors``."""
        docs = list(docs)
        if not docs:
            return docs
        snapshots = [_Snapshot.of(doc) for doc in docs]
        try:
            return self._checked(docs, self.process(docs))
        except StepError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of a step's code is recorded, not raised
            for snapshot in snapshots:
                snapshot.restore()
            if len(docs) == 1:
                self._record(docs[0], error)
                return docs
            log.debug("step %s: a batch of %d documents failed (%s); retrying one by one", self.name, len(docs), error)
            return [out for snapshot in snapshots for out in self._run_one(snapshot)]

    def _run_one(self, snapshot: _Snapshot) -> list[Document]:
        try:
            return self._checked([snapshot.doc], self.process([snapshot.doc]))
        except StepError:
            raise
        except Exception as error:  # noqa: BLE001
            snapshot.restore()
            self._record(snapshot.doc, error)
            return [snapshot.doc]

    def _record(self, doc: Document, error: Exception) -> None:
        doc.errors.append(error_record(self.name, error))
        log.warning("step %s failed on document %s: %s: %s", self.name, doc.id, type(error).__name__, error)

    def _checked(self, docs: list[Document], result: Iterable[Document] | None) -> list[Document]:
        if result is None:
            return docs
        out = list(result)
        if len(out) != len(docs):
            raise StepError(f"step {self.name!r} returned {len(out)} documents for {len(docs)}: a step must return one per input")
        return out


def as_step(item: "Step | Callable[[list[Document]], Any]", name: str | None = None) -> Step:
    """``item`` itself when it is a :class:`Step`, else a Step around a batch callable
    (named ``name``, or the callable's ``name`` attribute or ``__name__``)."""
    if isinstance(item, Step):
        return item
    if not callable(item):
        raise TypeError(f"a pipeline step must be a Step or a callable, got {type(item).__name__}")
    step_name = name or getattr(item, "name", None) or getattr(item, "__name__", None)
    if not isinstance(step_name, str):
        raise TypeError(f"cannot name the step {item!r}: give it a name")
    return Step(step_name, item)
