"""The manifest of a batch job: which input documents are finished, shard by shard.

``OUTDIR/manifest.json`` is rewritten atomically (temporary file, fsync, rename) after
every shard, so at any moment it describes exactly the shards that are complete::

    {
      "version": 1,
      "job": {"output_format": "jsonl", "steps": "...", "model": "...", ...},
      "inputs": {"/data/a.jsonl": {"format": "jsonl", "size": 123456}},
      "failures_bytes": 2048,
      "shards": [
        {"file": "part-00000.jsonl", "documents": 998, "failures": 2,
         "done": {"/data/a.jsonl": [[0, 1000]]}},
        ...
      ]
    }

A document is named by its input file and its *position* there: the 0-based ordinal of
the item the reader produced, counting bad input records that ``--skip-bad`` reported
too, so positions stay the same when the job runs again. ``done`` holds half-open
``[start, end)`` position ranges; a position is in exactly one shard, either as a
written document or as a line of ``failures.jsonl``. ``failures_bytes`` is the length
of ``failures.jsonl`` that the listed shards account for: a resumed job cuts the file
back to it, and deletes part files that no shard lists, so work of an interrupted shard
is neither lost nor counted twice -- it is simply done again.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from biotag.errors import FormatError

MANIFEST = "manifest.json"
FAILURES = "failures.jsonl"
VERSION = 1


class RangeSet:
    """A set of non-negative integers kept as sorted, disjoint half-open ranges (a job's
    positions come in long runs, so millions of finished documents take a few numbers)."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in sorted(tuple(r) for r in ranges):
            self._add_range(start, end)

    def _add_range(self, start: int, end: int) -> None:
        if start >= end:
            return
        i = bisect.bisect_left(self._ends, start)  # first range that ends at or after start
        j = bisect.bisect_right(self._starts, end)  # ranges from i to j-1 touch [start, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def add(self, value: int) -> None:
        self._add_range(value, value + 1)

    def update(self, other: "RangeSet") -> None:
        for start, end in other.ranges():
            self._add_range(start, end)

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def ranges(self) -> list[list[int]]:
        return [[s, e] for s, e in zip(self._starts, self._ends)]

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges()})"


@dataclass
class Manifest:
    job: dict[str, Any]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: list[dict[str, Any]] = field(default_factory=list)
    failures_bytes: int = 0

    def done(self) -> dict[str, RangeSet]:
        """Finished positions per input, over every shard."""
        out: dict[str, RangeSet] = {}
        for shard in self.shards:
            for name, ranges in shard["done"].items():
                out.setdefault(name, RangeSet()).update(RangeSet(ranges))
        return out

    def next_shard_number(self) -> int:
        return len(self.shards)

    @property
    def documents(self) -> int:
        return sum(s["documents"] for s in self.shards)

    @property
    def failures(self) -> int:
        return sum(s["failures"] for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "job": self.job,
            "inputs": self.inputs,
            "failures_bytes": self.failures_bytes,
            "documents": self.documents,
            "failures": self.failures,
            "shards": self.shards,
        }

    def save(self, outdir: Path) -> None:
        data = self.to_dict()
        shards = data.pop("shards")
        # one shard per line: readable, and small enough to rewrite after every shard
        head = json.dumps(data, indent=1, ensure_ascii=False)[:-2]
        lines = ",\n  ".join(json.dumps(s, ensure_ascii=False) for s in shards)
        atomic_write_text(outdir / MANIFEST, f'{head},\n "shards": [\n  {lines}\n ]\n}}\n' if shards else json.dumps({**data, "shards": []}, indent=1) + "\n")

    @classmethod
    def load(cls, outdir: Path) -> "Manifest | None":
        path = outdir / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise FormatError(f"manifest version {data.get('version')!r} is not {VERSION}", path=str(path), field="version")
            return cls(job=data["job"], inputs=data["inputs"], shards=data["shards"], failures_bytes=int(data["failures_bytes"]))
        except (ValueError, KeyError, TypeError) as error:
            raise FormatError(f"unreadable batch manifest ({type(error).__name__}: {error})", path=str(path)) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader (or a crash) sees either the old
    file or the new one, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
