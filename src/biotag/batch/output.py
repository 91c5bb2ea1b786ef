"""Output shards and the failures file of a batch job.

A shard is written whole to ``part-NNNNN.<ext>.tmp``, fsynced and renamed, so a part
file that exists is complete; it is *committed* once the manifest lists it. Formats:

``jsonl``
    biotag's lossless document JSON, one per line (as ``biotag annotate`` writes).
``pubtator``
    titles, abstracts and mentions (:mod:`biotag.io.pubtator`).
``parquet``
    one row per document: ``input``, ``position``, ``id``, ``text``, ``entities`` (a
    list of ``{id, type, text, start, end, score, links}`` with ``links`` as
    ``ONTOLOGY:ID`` strings; ``start``/``end`` cover a discontinuous mention's spans)
    and ``document`` (the lossless JSON, for everything else).

``failures.jsonl`` gets one JSON object per document that is not in the output::

    {"id": "PMC123", "input": "/data/a.jsonl", "position": 17, "line": null,
     "kind": "step-error" | "worker-crash" | "batch-error" | "bad-input",
     "error": "ValueError: ...", "errors": [...], "crashes": 2, "document": {...}}

``document`` is the input document as it was read (absent for bad input, which could
not be read), so ``jq -c .document failures.jsonl`` gives a file to retry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biotag.document import Document
from biotag.errors import InputError
from biotag.batch.manifest import FAILURES, fsync_dir

OUTPUT_FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet", "pubtator": ".pubtator"}


@dataclass(slots=True)
class Annotated:
    """A finished document on its way into a shard (``json`` is what the worker sent)."""

    source: str
    position: int
    json: str


def check_format(fmt: str) -> str:
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown output format {fmt!r}; expected one of {', '.join(OUTPUT_FORMATS)}", field="output_format")
    return fmt


def shard_name(number: int, fmt: str) -> str:
    return f"part-{number:05d}{OUTPUT_FORMATS[fmt]}"


def write_shard(outdir: Path, number: int, fmt: str, docs: list[Annotated]) -> str:
    """Write one complete shard; returns its file name (relative to ``outdir``)."""
    name = shard_name(number, fmt)
    tmp = outdir / (name + ".tmp")
    with open(tmp, "wb") as fh:
        if fmt == "parquet":
            _write_parquet(docs, fh)
        else:
            _write_text(docs, fh, fmt)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, outdir / name)
    fsync_dir(outdir)
    return name


def _documents(docs: list[Annotated]) -> list[Document]:
    # the workers already validated these documents: no need to check offsets again
    return [Document.from_dict(json.loads(d.json), validate=False) for d in docs]


def _write_text(docs: list[Annotated], fh, fmt: str) -> None:
    import io as stdio

    text = stdio.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    try:
        if fmt == "jsonl":
            for d in docs:
                text.write(d.json)
                text.write("\n")
        else:
            from biotag import io

            io.write(_documents(docs), text, fmt)
        text.flush()
    finally:
        text.detach()  # leave fh open for the caller's fsync


def _write_parquet(docs: list[Annotated], fh) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[Any]] = {k: [] for k in ("input", "position", "id", "text", "entities", "document")}
    for d, doc in zip(docs, _documents(docs)):
        rows["input"].append(d.source)
        rows["position"].append(d.position)
        rows["id"].append(doc.id)
        rows["text"].append(doc.text)
        rows["entities"].append(
            [
                {
                    "id": e.id, "type": e.type, "text": e.text, "start": e.start, "end": e.end, "score": e.score,
                    "links": [f"{link.ontology}:{link.id}" for link in e.links],
                }
                for e in doc.entities
            ]
        )
        rows["document"].append(d.json)
    table = pa.Table.from_pydict(rows, schema=parquet_schema())
    pq.write_table(table, fh, compression="zstd")


def parquet_schema():
    import pyarrow as pa

    entity = pa.struct(
        [
            ("id", pa.string()), ("type", pa.string()), ("text", pa.string()), ("start", pa.int64()),
            ("end", pa.int64()), ("score", pa.float64()), ("links", pa.list_(pa.string())),
        ]
    )
    return pa.schema(
        [
            ("input", pa.string()), ("position", pa.int64()), ("id", pa.string()), ("text", pa.string()),
            ("entities", pa.list_(entity)), ("document", pa.string()),
        ]
    )


class FailureLog:
    """``failures.jsonl``, appended to as failures happen and made durable at each
    shard commit (the manifest records the committed length)."""

    def __init__(self, outdir: Path, committed_bytes: int) -> None:
        self.path = outdir / FAILURES
        if self.path.exists() and self.path.stat().st_size > committed_bytes:
            # lines of a shard that never committed: its documents are done again
            with open(self.path, "r+b") as fh:
                fh.truncate(committed_bytes)
        self._fh = open(self.path, "ab")
        self.pending = 0

    def add(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self.pending += 1

    def commit(self) -> int:
        """Flush and fsync; returns the file's length."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.pending = 0
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def remove_uncommitted(outdir: Path, committed: set[str]) -> list[str]:
    """Delete part files (and temporary files) no committed shard lists; returns their names."""
    removed = []
    for path in sorted(outdir.iterdir()):
        if path.name.startswith("part-") and path.name not in committed:
            path.unlink()
            removed.append(path.name)
    return removed
