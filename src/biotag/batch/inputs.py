"""The inputs of a batch job: files, folders and glob patterns of any biotag format, read
as one stream of ``(input, position, Document or bad-input error)`` items.

A folder is read as one input when it is a brat folder (it holds ``*.ann``) or when
``input_format`` is ``brat``/``text``; otherwise it stands for every readable file under
it (recursively, sorted, hidden files left out), each guessed on its own. A name that
does not exist but holds ``*``, ``?`` or ``[`` is a glob pattern (``**`` recurses).
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from biotag import io
from biotag.document import Document
from biotag.errors import InputError

log = logging.getLogger("biotag.batch")

FOLDER_FORMATS = ("brat", "text")


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a file (or a brat/text folder) and the format it is read in."""

    path: str  # absolute: the key of its documents in the manifest
    format: str

    @property
    def size(self) -> int:
        p = Path(self.path)
        if p.is_dir():
            return sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        return p.stat().st_size


@dataclass(slots=True)
class Item:
    """A document to process, or an input record that could not be read (``error``)."""

    source: Source
    position: int
    document: Document | None = None
    error: InputError | None = None


def expand_inputs(names: Iterable[str | os.PathLike], input_format: str | None = None) -> list[Source]:
    """The inputs named by files, folders and glob patterns, in the order given (folders
    and patterns expanded in sorted order), each once."""
    sources: list[Source] = []
    seen: set[str] = set()

    def add(path: Path, fmt: str) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            sources.append(Source(key, fmt))

    for name in names:
        name = os.fspath(name)
        path = Path(name)
        if path.exists():
            paths = [path]
        elif glob.has_magic(name):
            paths = [Path(p) for p in sorted(glob.glob(name, recursive=True))]
            if not paths:
                raise InputError("no file matches this pattern", path=name)
        else:
            raise InputError("no such file or folder", path=name)
        for p in paths:
            if p.is_dir():
                for sub, fmt in _folder(p, input_format):
                    add(sub, fmt)
            else:
                add(p, input_format or io.guess_format(p))
    if not sources:
        raise InputError("the inputs hold no readable document files", path=", ".join(map(os.fspath, names)))
    return sources


def _folder(folder: Path, input_format: str | None) -> list[tuple[Path, str]]:
    if input_format in FOLDER_FORMATS or (input_format is None and any(folder.glob("*.ann"))):
        return [(folder, input_format or "brat")]
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if input_format is not None:
            out.append((path, input_format))
            continue
        try:
            out.append((path, io.guess_format(path)))
        except InputError:
            log.warning("skipping %s: not a document file biotag can read", path)
    return out


def read_items(source: Source, *, skip_bad: bool = False) -> Iterator[Item]:
    """The items of one input in order. With ``skip_bad`` a bad record becomes an item
    with its error (at its own position) instead of ending the job."""
    errors: list[InputError] = []
    docs = io.read(source.path, source.format, skip_bad=skip_bad, on_error=errors.append)
    position = 0
    while True:
        # the reader reports a bad record through on_error while looking for the next
        # document, so the errors gathered during next() come before that document
        try:
            doc = next(docs)
        except StopIteration:
            doc = None
        for error in errors:
            yield Item(source, position, error=error)
            position += 1
        errors.clear()
        if doc is None:
            return
        yield Item(source, position, document=doc)
        position += 1


def count_documents(source: Source) -> int | None:
    """A fast estimate of the number of documents of an input (for the progress bar's
    ETA) from a byte scan; ``None`` for formats without a cheap marker."""
    path = Path(source.path)
    if path.is_dir():
        pattern = "*.ann" if source.format == "brat" else "*.txt"
        return sum(1 for _ in path.glob(pattern))
    if source.format == "text":
        return 1
    markers = {
        "jsonl": None,  # non-blank lines
        "pubtator": b"|t|",
        "pubmed-xml": b"<PubmedArticle>",
        "bioc-xml": b"<document>",
        "bioc-json": b'"passages"',
    }
    if source.format not in markers:
        return None
    marker = markers[source.format]
    count = 0
    try:
        with open(path, "rb") as fh:
            if marker is None:
                count = sum(1 for line in fh if line.strip())
            else:
                tail = b""
                while chunk := fh.read(1 << 22):
                    block = tail + chunk
                    count += block.count(marker)
                    # a marker cut in two by the chunk boundary is found in the next block;
                    # the carried tail is too short to hold a whole one, so none counts twice
                    tail = block[-(len(marker) - 1) :]
    except OSError:
        return None
    return count
