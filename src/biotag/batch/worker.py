"""The body of a batch job's Ray actor: one pipeline (one model) per worker process,
documents in batches, and a memory watchdog.

The watchdog thread samples the process's RSS every ``interval`` seconds. It keeps the
peak reached while a batch runs, which the driver uses to retire the actor *before* the
next batch could take it over ``max_rss_mb`` (see :mod:`biotag.batch.runner`). If a
single batch still pushes RSS over the limit, the watchdog ends the process at once --
cheaper than the kernel's OOM killer choosing a victim -- and the driver handles it like
any other crash: the batch is split and retried, and a document that takes a worker
down twice is quarantined.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from typing import Any

import psutil

from biotag.document import Document

log = logging.getLogger("biotag.batch")

MIB = 2**20
MEMORY_EXIT_CODE = 86  # what a worker over --max-worker-rss-mb exits with (seen in Ray's worker logs)


class PipelineWorker:
    """Ray actor: ``ready()`` once, then ``process(docs)`` per batch.

    A failure to build the pipeline (bad model path, unknown step) is reported by
    ``ready()`` rather than raised, so the driver can stop with that message instead of
    restarting actors that can never work.
    """

    def __init__(
        self,
        load_options: dict[str, Any],
        *,
        imports: list[str] | tuple[str, ...] = (),
        max_rss_mb: float | None = None,
        interval: float = 0.05,
    ) -> None:
        self._process = psutil.Process()
        self._peak = 0
        self.error: str | None = None
        self.nlp = None
        try:
            # modules that register custom steps must be imported in every worker process
            for name in imports:
                importlib.import_module(name)
            from biotag.api import load

            self.nlp = load(**load_options)
        except Exception as error:  # noqa: BLE001 - reported to the driver by ready()
            self.error = f"{type(error).__name__}: {error}"
        self.limit = int(max_rss_mb * MIB) if max_rss_mb else None
        self.interval = interval
        if self.limit:
            threading.Thread(target=self._watch, name="biotag-memory-watchdog", daemon=True).start()

    def _rss(self) -> int:
        return self._process.memory_info().rss

    def _watch(self) -> None:
        while True:
            rss = self._rss()
            self._peak = max(self._peak, rss)
            if rss > self.limit:
                sys.stderr.write(
                    f"biotag batch worker {os.getpid()}: RSS {rss / MIB:.0f} MiB is above --max-worker-rss-mb "
                    f"{self.limit / MIB:.0f}; ending the process (its batch is retried, split)\n"
                )
                sys.stderr.flush()
                os._exit(MEMORY_EXIT_CODE)
            time.sleep(self.interval)

    def ready(self) -> dict[str, Any]:
        import ray

        return {
            "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
            "rss_mb": self._rss() / MIB, "error": self.error,
        }

    def process(self, docs: list[Document]) -> dict[str, Any]:
        """Run the pipeline over ``docs``. Per document: ``[json, []]`` when it went
        through, ``[None, errors]`` when a step failed on it (the pipeline caught the
        error, see :mod:`biotag.pipeline.step`). Also the RSS after the batch, its peak
        and the rise within it (MiB; sampled by the watchdog when a limit is set), for
        the driver's recycling decision."""
        start = self._rss()
        self._peak = start
        before = [len(doc.errors) for doc in docs]  # errors an input document already carried are not ours
        out = self.nlp(docs)
        results = [[None, doc.errors[n:]] if len(doc.errors) > n else [doc.to_json(), []] for doc, n in zip(out, before, strict=True)]
        end = self._rss()
        peak = max(self._peak, end)
        return {"results": results, "rss_mb": end / MIB, "peak_mb": peak / MIB, "growth_mb": (peak - start) / MIB}
