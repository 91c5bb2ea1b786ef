"""Run steps in order over a stream of documents, batch by batch, with per-step timing.

>>> from biotag.pipeline import Pipeline
>>> nlp = Pipeline.from_config({"steps": [{"name": "sentences"}, {"name": "abbreviations"}]})
>>> for doc in nlp.pipe(documents):       # constant memory: one batch in flight
...     ...
>>> nlp.stats()["abbreviations"]["docs_per_second"]

A document that fails in a step carries the error (see :mod:`biotag.pipeline.step`).
With ``on_error="pass"`` (the default) it stays in the stream, later steps skip it
unless they were built with ``run_failed=True``; with ``on_error="set_aside"`` it leaves
the stream at once and goes to ``on_set_aside`` (or :attr:`Pipeline.set_aside`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import psutil

from biotag.document import Document
from biotag.errors import InputError
from biotag.pipeline.step import Step, as_step

try:  # the process's peak RSS; not available on Windows
    import resource
except ImportError:  # pragma: no cover
    resource = None

log = logging.getLogger("biotag.pipeline")

ON_ERROR = ("pass", "set_aside")


def _peak_rss() -> int:
    """The process's high-water RSS in bytes (0 where the OS does not say)."""
    if resource is None:  # pragma: no cover
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class _MemoryProbe:
    """Measures how far one call pushes memory above the RSS it started from.

    psutil gives the current RSS; the kernel's high-water mark gives the peak. When the
    call raises the process's high-water mark, the peak inside the call is exactly that
    mark; otherwise the call stayed below an earlier peak and the growth of RSS across
    the call is the best (lower-bound) estimate available without sampling.
    """

    def __init__(self) -> None:
        self.process = psutil.Process()

    def start(self) -> tuple[int, int]:
        return self.process.memory_info().rss, _peak_rss()

    def peak_delta(self, started: tuple[int, int]) -> int:
        rss_before, peak_before = started
        peak_after = _peak_rss()
        if peak_after > peak_before:
            return peak_after - rss_before
        return max(0, self.process.memory_info().rss - rss_before)


@dataclass(slots=True)
class StepStats:
    """Totals of one step over every batch a pipeline ran since its last reset."""

    seconds: float = 0.0
    documents: int = 0
    batches: int = 0
    failed: int = 0
    peak_rss_delta: int = 0  # bytes: the largest rise above the starting RSS in one call

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 6),
            "documents": self.documents,
            "batches": self.batches,
            "failed": self.failed,
            "docs_per_second": round(self.documents / self.seconds, 1) if self.seconds > 0 else None,
            "peak_rss_delta_mb": round(self.peak_rss_delta / 2**20, 2),
        }


@dataclass(slots=True)
class PipelineResult:
    documents: list[Document]
    set_aside: list[Document] = field(default_factory=list)


class Pipeline:
    """Named steps run in order over batches of ``batch_size`` documents."""

    def __init__(self, steps: Iterable[Step | Callable], *, batch_size: int = 64, on_error: str = "pass") -> None:
        self.steps: list[Step] = [as_step(s) for s in steps]
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(f"step names must be unique; repeated: {', '.join(duplicates)}", field="steps")
        if on_error not in ON_ERROR:
            raise InputError(f"unknown policy {on_error!r}; expected one of {', '.join(ON_ERROR)}", field="on_error")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"must be a positive integer, got {batch_size!r}", field="batch_size")
        self.batch_size = batch_size
        self.on_error = on_error
        self.set_aside: list[Document] = []
        self._stats = {s.name: StepStats() for s in self.steps}
        self._memory = _MemoryProbe()

    def __repr__(self) -> str:
        return f"Pipeline([{', '.join(self.names)}], batch_size={self.batch_size}, on_error={self.on_error!r})"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    # -- running ----------------------------------------------------------------
    def pipe(self, docs: Iterable[Document], *, on_set_aside: Callable[[Document], Any] | None = None) -> Iterator[Document]:
        """Stream processed documents, one batch in memory at a time. Set-aside documents
        (``on_error="set_aside"``) go to ``on_set_aside``, or are kept in
        :attr:`set_aside` when no callback is given. Per-step timings are logged when
        the stream ends."""
        docs = iter(docs)
        processed = 0
        while batch := list(islice(docs, self.batch_size)):
            done, failed = self.process_batch(batch)
            for doc in failed:
                if on_set_aside is None:
                    self.set_aside.append(doc)
                else:
                    on_set_aside(doc)
            processed += len(batch)
            yield from done
        if processed:
            self.log_stats()

    def __call__(self, docs: Iterable[Document]) -> list[Document]:
        return list(self.pipe(docs))

    def run(self, docs: Iterable[Document]) -> PipelineResult:
        """Process all ``docs``; the result keeps processed and set-aside documents apart."""
        result = PipelineResult([])
        result.documents.extend(self.pipe(docs, on_set_aside=result.set_aside.append))
        return result

    def process_batch(self, batch: list[Document]) -> tuple[list[Document], list[Document]]:
        """Run every step over one batch; returns (documents to pass on, documents set
        aside). Without ``set_aside`` the second list is empty and failed documents stay
        in the first, in input order."""
        batch = list(batch)
        failed: set[int] = set()
        for step in self.steps:
            take_failed = step.run_failed and self.on_error == "pass"
            positions = [i for i in range(len(batch)) if take_failed or i not in failed]
            if not positions:
                continue
            inputs = [batch[i] for i in positions]
            errors_before = [len(doc.errors) for doc in inputs]
            stats = self._stats[step.name]
            started, memory = time.perf_counter(), self._memory.start()
            outputs = step(inputs)
            stats.seconds += time.perf_counter() - started
            stats.peak_rss_delta = max(stats.peak_rss_delta, self._memory.peak_delta(memory))
            stats.documents += len(inputs)
            stats.batches += 1
            for i, doc, n_errors in zip(positions, outputs, errors_before, strict=True):
                batch[i] = doc
                if len(doc.errors) > n_errors and i not in failed:
                    failed.add(i)
                    stats.failed += 1
        if self.on_error == "set_aside":
            return [d for i, d in enumerate(batch) if i not in failed], [batch[i] for i in sorted(failed)]
        return batch, []

    # -- statistics ---------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per step, in order: wall seconds, documents, batches, failed documents,
        documents per second and the largest RSS rise within one call (MiB)."""
        return {name: self._stats[name].to_dict() for name in self.names}

    def reset_stats(self) -> None:
        self._stats = {s.name: StepStats() for s in self.steps}

    def log_stats(self, level: int = logging.INFO) -> None:
        if not log.isEnabledFor(level):
            return
        for name, s in self.stats().items():
            log.log(
                level,
                "step %-14s %8.3f s  %6d docs  %s docs/s  %d failed  peak RSS +%.1f MiB",
                name, s["seconds"], s["documents"], s["docs_per_second"], s["failed"], s["peak_rss_delta_mb"],
            )

    # -- configuration ------------------------------------------------------------
    @classmethod
    def from_config(cls, config: "dict[str, Any] | str | Path", **overrides: Any) -> "Pipeline":
        """Build from a config dict or a JSON file (see :mod:`biotag.pipeline.config`)."""
        from biotag.pipeline.config import pipeline_from_config

        return pipeline_from_config(config, **overrides)

    def to_config(self) -> dict[str, Any]:
        from biotag.pipeline.config import pipeline_to_config

        return pipeline_to_config(self)

    def save_config(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_config(), indent=2) + "\n", encoding="utf-8")
        return path
