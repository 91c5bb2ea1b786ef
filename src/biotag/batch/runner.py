"""The driver of a batch job: reads the inputs as a stream, hands batches to Ray actors,
writes shards and the manifest, and makes sure no document is lost.

Invariant: every input document (and every bad input record, with ``skip_bad``) ends up
exactly once either in an output shard or in ``failures.jsonl`` -- also across a
restart, because a document counts as done only when the shard that holds it is in
the manifest (:mod:`biotag.batch.manifest`).

Faults:

* A Python error in a step is caught per document by the pipeline; that document goes
  to the failures file with its error, the rest of its batch to the output.
* A worker process that dies (SIGKILL, segfault, the memory watchdog, Ray's OOM killer,
  a lost node) fails its running batch. Actors run their tasks in order, so the first
  of its unfinished batches is the one that was running: it is split in halves and
  retried; the batches queued behind it are retried as they are. A document alone in a
  batch that takes a worker down, after having been in a crashed batch before, is
  quarantined (``kind: "worker-crash"``). A dead actor is replaced at once.
* After each batch a worker reports its RSS and the batch's peak rise; when the next
  batch could push it past ``max_worker_rss_mb``, the actor is retired once its queued
  batches are done and a fresh one takes its place.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from biotag.batch.inputs import Item, Source, count_documents, expand_inputs, read_items
from biotag.batch.manifest import Manifest, RangeSet
from biotag.batch.output import Annotated, FailureLog, check_format, remove_uncommitted, write_shard
from biotag.batch.worker import PipelineWorker
from biotag.errors import BiotagError, InputError

log = logging.getLogger("biotag.batch")

# headroom on the largest per-batch RSS rise seen so far: rises vary from batch to batch, and a
# worker retired a little early costs a restart where one retired a little late costs a crashed batch
RISE_MARGIN = 1.25
STARTUP_FAILURES = 3  # consecutive actors dying while loading the pipeline before the job gives up


@dataclass
class BatchOptions:
    inputs: Sequence[str | os.PathLike]
    outdir: str | os.PathLike
    input_format: str | None = None
    output_format: str = "jsonl"
    model: str | os.PathLike | None = None
    steps: str | None = None
    pipeline: str | os.PathLike | None = None  # a pipeline config JSON file
    backend: str = "auto"
    workers: int = 2
    threads: int = 1  # CPU threads (and Ray CPUs) per worker
    batch_size: int = 32  # documents per Ray task
    shard_size: int = 1000  # documents (output + failures) per shard
    commit_seconds: float = 60.0  # a shard is also committed after this long
    max_worker_rss_mb: float | None = None
    address: str | None = None
    skip_bad: bool = False
    imports: Sequence[str] = ()  # modules that register custom steps, imported in each worker
    in_flight: int = 2  # batches queued per worker, so that it never waits for the driver
    progress: bool = True

    def job(self) -> dict[str, Any]:
        """What must not change when a job resumes (its outputs would be inconsistent)."""
        return {
            "output_format": self.output_format,
            "model": _absolute(self.model),
            "steps": self.steps,
            "pipeline": _absolute(self.pipeline),
            "backend": self.backend,
        }


@dataclass
class BatchSummary:
    documents: int = 0  # written to the output in this run
    failures: int = 0  # written to failures.jsonl in this run
    skipped: int = 0  # already done by an earlier run
    shards: int = 0  # committed in this run
    crashes: int = 0  # worker processes that died
    recycled: int = 0  # actors retired by the memory watchdog
    retried_batches: int = 0
    seconds: float = 0.0
    max_worker_rss_mb: float = 0.0
    total_documents: int = 0  # in the output, over every run
    total_failures: int = 0
    removed_uncommitted: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)  # Ray node ids the workers ran on

    @property
    def docs_per_second(self) -> float:
        done = self.documents + self.failures
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "docs_per_second": round(self.docs_per_second, 2)}


def _absolute(path: str | os.PathLike | None) -> str | None:
    if path is None:
        return None
    return os.path.abspath(path) if os.path.exists(path) else os.fspath(path)


def _is_crash(error: BaseException) -> bool:
    import ray.exceptions as rx

    return isinstance(error, rx.RayError) and not isinstance(error, rx.RayTaskError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class _Worker:
    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.ready_ref = handle.ready.remote()
        self.ready = False
        self.pid: int | None = None
        self.in_flight: list[_Task] = []
        self.retiring = False
        self.max_growth = 0.0


@dataclass
class _Batch:
    items: list[Item]
    # run with nothing else queued on its worker, so that a crash is pinned on it for sure
    # (the reply of a batch that finished just before a SIGKILL can die with the process)
    exclusive: bool = False


@dataclass
class _Task:
    ref: Any
    worker: _Worker
    batch: _Batch


class BatchJob:
    def __init__(self, options: BatchOptions, *, on_commit: Callable[[Manifest], None] | None = None) -> None:
        self.o = options
        self.on_commit = on_commit
        if options.workers < 1 or options.batch_size < 1 or options.shard_size < 1 or options.threads < 1:
            raise InputError("--workers, --batch-size, --shard-size and --threads must be at least 1", field="workers")
        check_format(options.output_format)
        if options.steps is not None and options.pipeline is not None:
            raise InputError("give either steps or a pipeline config, not both", field="steps")
        for name in options.imports:  # fail here, not in every worker, when a module is missing
            try:
                importlib.import_module(name)
            except ImportError as error:
                raise InputError(f"cannot import {name!r} ({error})", field="imports") from None
        self.outdir = Path(options.outdir)
        self.sources = expand_inputs(options.inputs, options.input_format)
        self.summary = BatchSummary()
        self.retry: deque[_Batch] = deque()
        self.crashes: dict[tuple[str, int], int] = {}
        self.pending: dict[Any, _Task] = {}
        self.workers: list[_Worker] = []
        self.startup_failures = 0
        self._reset_shard()

    # -- state on disk ----------------------------------------------------------------
    def _open_outdir(self) -> None:
        self.outdir.mkdir(parents=True, exist_ok=True)
        manifest = Manifest.load(self.outdir)
        job = self.o.job()
        if manifest is None:
            manifest = Manifest(job=job)
        elif manifest.job != job:
            changed = sorted(k for k in job if manifest.job.get(k) != job[k])
            raise InputError(
                f"this folder holds a job run with other settings ({', '.join(changed)}: "
                f"{', '.join(repr(manifest.job.get(k)) for k in changed)}); resume with the same settings or use a new output folder",
                path=str(self.outdir), field=changed[0],
            )
        for source in self.sources:
            known = manifest.inputs.get(source.path)
            if known is not None and known.get("size") != source.size:
                log.warning("%s changed size since the job started: positions of finished documents may no longer match", source.path)
            manifest.inputs[source.path] = {"format": source.format, "size": source.size}
        self.manifest = manifest
        committed = {s["file"] for s in manifest.shards if s["file"]}
        self.summary.removed_uncommitted = remove_uncommitted(self.outdir, committed)
        self.failures = FailureLog(self.outdir, manifest.failures_bytes)
        self.done = manifest.done()

    def _reset_shard(self) -> None:
        self.shard_docs: list[Annotated] = []
        self.shard_done: dict[str, RangeSet] = {}
        self.shard_failures = 0
        self.shard_started = time.monotonic()

    def _mark_done(self, item: Item) -> None:
        self.shard_done.setdefault(item.source.path, RangeSet()).add(item.position)
        if self.progress is not None:
            self.progress.advance(self.task)

    def _commit(self) -> None:
        if not self.shard_done:
            return
        number = self.manifest.next_shard_number()
        name = write_shard(self.outdir, number, self.o.output_format, sorted(self.shard_docs, key=lambda d: (d.source, d.position))) if self.shard_docs else None
        self.manifest.failures_bytes = self.failures.commit()
        self.manifest.shards.append(
            {
                "file": name, "documents": len(self.shard_docs), "failures": self.shard_failures,
                "done": {path: ranges.ranges() for path, ranges in self.shard_done.items()},
            }
        )
        self.manifest.save(self.outdir)
        self.summary.shards += 1
        self._reset_shard()
        if self.on_commit is not None:
            self.on_commit(self.manifest)

    def _maybe_commit(self) -> None:
        size = len(self.shard_docs) + self.shard_failures
        if size >= self.o.shard_size or (size and time.monotonic() - self.shard_started >= self.o.commit_seconds):
            self._commit()

    # -- outcomes of documents --------------------------------------------------------
    def _fail(self, item: Item, kind: str, error: str, **extra: Any) -> None:
        doc = item.document
        record = {
            "id": doc.id if doc is not None else item.error.document,
            "input": item.source.path,
            "position": item.position,
            "line": item.error.line if item.error is not None else None,
            "kind": kind,
            "error": error,
            **extra,
        }
        if doc is not None:
            record["document"] = doc.to_dict()
        self.failures.add(record)
        self.shard_failures += 1
        self.summary.failures += 1
        self._mark_done(item)

    def _succeed(self, item: Item, json_text: str) -> None:
        self.shard_docs.append(Annotated(item.source.path, item.position, json_text))
        self.summary.documents += 1
        self._mark_done(item)

    # -- input ------------------------------------------------------------------------
    def _items(self) -> Iterator[Item]:
        for source in self.sources:
            done = self.done.get(source.path)
            for item in read_items(source, skip_bad=self.o.skip_bad):
                if done is not None and item.position in done:
                    self.summary.skipped += 1
                    continue
                yield item

    def _read_batch(self) -> _Batch | None:
        batch: list[Item] = []
        while len(batch) < self.o.batch_size:
            item = next(self.stream, None)
            if item is None:
                self.exhausted = True
                break
            if item.error is not None:
                self._fail(item, "bad-input", str(item.error))
            else:
                batch.append(item)
        return _Batch(batch) if batch else None

    # -- workers ------------------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        import ray

        options = {"threads": self.o.threads, "backend": self.o.backend, "steps": self.o.steps, "config": self.o.job()["pipeline"]}
        if self.o.model is not None:
            options["path"] = self.o.job()["model"]
        actor = ray.remote(PipelineWorker).options(num_cpus=self.o.threads, max_restarts=0, max_task_retries=0)
        worker = _Worker(actor.remote(options, imports=list(self.o.imports), max_rss_mb=self.o.max_worker_rss_mb))
        self.workers.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        import ray

        self.workers.remove(worker)
        for task in worker.in_flight:
            self.pending.pop(task.ref, None)
        try:
            ray.kill(worker.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead is fine
            pass
        self._start_worker()

    def _on_ready(self, worker: _Worker) -> None:
        import ray

        try:
            info = ray.get(worker.ready_ref)
        except Exception as error:  # noqa: BLE001 - any way of dying while starting
            if not _is_crash(error):
                raise
            self.startup_failures += 1
            if self.startup_failures >= STARTUP_FAILURES:
                raise BiotagError(f"{self.startup_failures} workers in a row died while loading the pipeline: {_first_line(error)}") from None
            log.warning("a worker died while starting (%s); starting another", _first_line(error))
            self._replace(worker)
            return
        if info["error"]:
            raise InputError(f"the workers cannot build the pipeline: {info['error']}", field="steps")
        limit = self.o.max_worker_rss_mb
        if limit and info["rss_mb"] >= limit:
            raise InputError(
                f"a worker needs {info['rss_mb']:.0f} MiB once the pipeline is loaded, above --max-worker-rss-mb {limit:.0f}",
                field="max_worker_rss_mb",
            )
        self.startup_failures = 0
        worker.ready, worker.pid = True, info["pid"]
        if info["node"] not in self.summary.nodes:
            self.summary.nodes.append(info["node"])
        self.summary.max_worker_rss_mb = max(self.summary.max_worker_rss_mb, info["rss_mb"])

    def _submit(self) -> None:
        for worker in list(self.workers):
            while worker.ready and not worker.retiring and len(worker.in_flight) < self.o.in_flight:
                if any(task.batch.exclusive for task in worker.in_flight):
                    break
                if self.retry:
                    if self.retry[0].exclusive and worker.in_flight:
                        break
                    batch = self.retry.popleft()
                else:
                    batch = self._read_batch()
                    if batch is None:
                        return
                ref = worker.handle.process.remote([item.document for item in batch.items])
                task = _Task(ref, worker, batch)
                worker.in_flight.append(task)
                self.pending[ref] = task

    def _collect(self, task: _Task) -> None:
        """Handle the outcome of a finished (or failed) task."""
        import ray

        worker = task.worker
        try:
            value = ray.get(task.ref)
        except Exception as error:  # noqa: BLE001
            if _is_crash(error):
                self._on_crash(worker, error)
                return
            # a Python error outside the pipeline's per-document capture: narrow it down
            self._forget(task)
            self._split_or_fail(task.batch.items, "batch-error", _first_line(error))
            return
        self._accept(task, value)
        self.summary.max_worker_rss_mb = max(self.summary.max_worker_rss_mb, value["peak_mb"])
        worker.max_growth = max(worker.max_growth, value["growth_mb"])
        limit = self.o.max_worker_rss_mb
        # the batches already queued on this worker will run too: stop feeding it once
        # they and one more could take it to the limit, and replace it when they are done
        coming = worker.max_growth * RISE_MARGIN * (len(worker.in_flight) + 1)
        if limit and not worker.retiring and value["rss_mb"] + coming >= limit:
            log.info(
                "recycling worker %s: RSS %.0f MiB + %d batch(es) rising up to %.0f MiB each reaches the limit %.0f MiB",
                worker.pid, value["rss_mb"], len(worker.in_flight) + 1, worker.max_growth, limit,
            )
            worker.retiring = True
        if worker.retiring and not worker.in_flight:
            self.summary.recycled += 1
            self._replace(worker)

    def _accept(self, task: _Task, value: dict[str, Any]) -> None:
        self._forget(task)
        for item, (json_text, errors) in zip(task.batch.items, value["results"], strict=True):
            self.crashes.pop((item.source.path, item.position), None)
            if errors:
                message = "; ".join(f"{e.get('step')}: {e.get('type')}: {e.get('message')}" for e in errors)
                self._fail(item, "step-error", message, errors=errors)
            else:
                self._succeed(item, json_text)

    def _forget(self, task: _Task) -> None:
        self.pending.pop(task.ref, None)
        task.worker.in_flight.remove(task)

    def _on_crash(self, worker: _Worker, error: BaseException) -> None:
        import ray

        self.summary.crashes += 1
        message = _first_line(error)
        log.warning("worker %s died: %s", worker.pid, message)
        unfinished = []
        for task in list(worker.in_flight):
            try:  # a batch that finished before the crash keeps its results
                value = ray.get(task.ref, timeout=30)
            except Exception:  # noqa: BLE001 - lost with the process
                self._forget(task)
                unfinished.append(task.batch)
                continue
            self._accept(task, value)
        if len(unfinished) == 1:
            self._on_crashed_batch(unfinished[0].items, message)
        else:  # no telling which one was running: each runs alone next, nothing held against them
            for batch in reversed(unfinished):
                self.retry.appendleft(_Batch(batch.items, exclusive=True))
                self.summary.retried_batches += 1
        self._replace(worker)

    def _on_crashed_batch(self, batch: list[Item], message: str) -> None:
        for item in batch:
            key = (item.source.path, item.position)
            self.crashes[key] = self.crashes.get(key, 0) + 1
        if len(batch) == 1:
            item = batch[0]
            crashes = self.crashes[(item.source.path, item.position)]
            if crashes >= 2:
                self.crashes.pop((item.source.path, item.position))
                self._fail(item, "worker-crash", f"the worker process died {crashes} times on this document (last: {message})", crashes=crashes)
                return
        self._split_or_fail(batch, None, message, exclusive=True)

    def _split_or_fail(self, batch: list[Item], kind: str | None, message: str, *, exclusive: bool = False) -> None:
        """Retry a batch in two halves (the first one first); a lone document is retried
        once more after a crash (``kind`` None), or fails with ``kind``."""
        if len(batch) == 1 and kind is not None:
            self._fail(batch[0], kind, message)
            return
        half = (len(batch) + 1) // 2
        for part in (batch[half:], batch[:half]):
            if part:
                self.retry.appendleft(_Batch(part, exclusive))
                self.summary.retried_batches += 1

    # -- the run ----------------------------------------------------------------------
    def run(self) -> BatchSummary:
        import ray

        started = time.monotonic()
        self._open_outdir()
        self.stream = self._items()
        self.exhausted = False
        self.progress = None
        first = self._read_batch()
        if first is None:  # nothing left to do (a finished job run again): no need for Ray
            self._commit()
            self.failures.close()
            return self._finish(started)
        self.retry.append(first)
        own_ray = _connect(self.o)
        try:
            with _progress_bar(self.o.progress) as progress:
                self.progress = progress
                if progress is not None:
                    already = sum(len(self.done[s.path]) for s in self.sources if s.path in self.done)
                    already += sum(len(r) for r in self.shard_done.values())  # bad input met before the bar
                    self.task = progress.add_task("biotag batch", total=self._total(), completed=already)
                for _ in range(self.o.workers):
                    self._start_worker()
                while True:
                    self._submit()
                    starting = {w.ready_ref: w for w in self.workers if not w.ready}
                    if not self.pending and self.exhausted and not self.retry and not self._busy():
                        break
                    refs = list(self.pending) + list(starting)
                    ready, _ = ray.wait(refs, num_returns=1, timeout=1.0) if refs else ([], [])
                    for ref in ready:
                        if ref in starting:
                            self._on_ready(starting[ref])
                        elif ref in self.pending:
                            self._collect(self.pending[ref])
                    self._maybe_commit()
                self._commit()
        finally:
            for worker in self.workers:
                try:
                    ray.kill(worker.handle, no_restart=True)
                except Exception:  # noqa: BLE001
                    pass
            self.failures.close()
            if own_ray:
                ray.shutdown()
        return self._finish(started)

    def _finish(self, started: float) -> BatchSummary:
        self.summary.seconds = time.monotonic() - started
        self.summary.total_documents = self.manifest.documents
        self.summary.total_failures = self.manifest.failures
        return self.summary

    def _busy(self) -> bool:
        return any(w.in_flight for w in self.workers)

    def _total(self) -> int | None:
        counts = [count_documents(s) for s in self.sources]
        return None if any(c is None for c in counts) else sum(counts)


def _connect(options: BatchOptions) -> bool:
    """Connect to Ray: the cluster at ``address``, or a local Ray started here (unless
    this process already holds a Ray session). Returns whether we started it."""
    import ray

    if ray.is_initialized():
        return False
    if options.address:
        ray.init(address=options.address, logging_level=logging.WARNING)
    else:
        ray.init(
            address="local",  # never attach to a stray cluster recorded in /tmp/ray
            num_cpus=options.workers * options.threads,
            include_dashboard=False,
            logging_level=logging.WARNING,
            object_store_memory=512 * 2**20,  # batches are small; Ray's default takes 30 % of RAM
        )
    return True


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr (documents, documents/s, ETA), or None."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed or 0:.1f} docs/s")

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Speed(),
        TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(), console=Console(stderr=True),
    ) as progress:
        yield progress


def run_batch(options: BatchOptions, *, on_commit: Callable[[Manifest], None] | None = None) -> BatchSummary:
    """Run (or resume) a batch job; see :mod:`biotag.batch`."""
    return BatchJob(options, on_commit=on_commit).run()
