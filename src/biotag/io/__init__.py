"""Readers and writers: one module per format, one registry in front of them.

Each format module exposes ``read(path, *, skip_bad=False, on_error=None, **options) ->
Iterator[Document]`` (streaming: constant memory per document) and ``write(docs, path,
**options) -> int`` (number of documents written). A reader raises
:class:`~biotag.errors.FormatError` naming file, line, document and field; with
``skip_bad=True`` it calls ``on_error(error)`` (default: log a warning), skips that
document and goes on with the next one.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator

from biotag.document import Document
from biotag.errors import FormatError, InputError

log = logging.getLogger(__name__)

# format name -> (module, file name suffixes used to guess the format)
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "jsonl": ("biotag.io.jsonl", (".jsonl", ".json.l", ".ndjson")),
    "conll": ("biotag.io.conll", (".tsv", ".conll", ".iob", ".iob2", ".bio")),
    "pubtator": ("biotag.io.pubtator", (".pubtator", ".pubtator.txt")),
    "bioc-xml": ("biotag.io.bioc_xml", (".bioc.xml", ".xml")),
    "bioc-json": ("biotag.io.bioc_json", (".bioc.json", ".json")),
    "brat": ("biotag.io.brat", (".ann",)),
    "pubmed-xml": ("biotag.io.pubmed_xml", (".pubmed.xml",)),
    "text": ("biotag.io.text", (".txt",)),
}

ErrorHandler = Callable[[InputError], None]


def _module(fmt: str):
    try:
        return importlib.import_module(FORMATS[fmt][0])
    except KeyError:
        raise InputError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}", field="format") from None


def guess_format(path: str | Path) -> str:
    """The format of ``path`` from its name (and, for ambiguous ``.xml``/``.txt``, its first bytes)."""
    p = Path(path)
    if p.is_dir():
        return "brat" if any(p.glob("*.ann")) else "text"
    name = p.name.lower()
    best = None
    for fmt, (_, suffixes) in FORMATS.items():
        for suffix in suffixes:
            if name.endswith(suffix) and (best is None or len(suffix) > best[1]):
                best = (fmt, len(suffix))
    sniffed = _sniff(p)
    if sniffed:
        return sniffed
    if best is None:
        raise InputError(f"cannot tell the format of {p.name!r}; pass format= one of {', '.join(FORMATS)}", path=str(p), field="format")
    return best[0]


def _sniff(p: Path) -> str | None:
    """Look at the first bytes of a file whose name is ambiguous."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="ignore")
    except OSError:
        return None
    if "<PubmedArticleSet" in head or "<PubmedArticle>" in head or "<MedlineCitationSet" in head:
        return "pubmed-xml"
    if "<collection" in head and "<document" in head:
        return "bioc-xml"
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if lines and ("|t|" in lines[0] or "|a|" in lines[0]):
        return "pubtator"
    return None


def read(
    path: str | Path,
    format: str | None = None,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    **options,
) -> Iterator[Document]:
    """Stream Documents from ``path`` (a file, or a folder for brat/text)."""
    fmt = format or guess_format(path)
    if not Path(path).exists():
        raise InputError("no such file or folder", path=str(path))
    handler = on_error or _log_error
    return _module(fmt).read(path, skip_bad=skip_bad, on_error=handler, **options)


def write(docs: Iterable[Document], path: str | Path, format: str | None = None, **options) -> int:
    """Write Documents to ``path``; returns the number written."""
    fmt = format or guess_format(path)
    return _module(fmt).write(docs, path, **options)


def _log_error(error: InputError) -> None:
    log.warning("skipped bad input: %s", error)


def handle_bad(error: InputError, skip_bad: bool, on_error: ErrorHandler | None) -> None:
    """Shared policy of the readers: raise, or report and let the caller skip."""
    if not skip_bad:
        raise error
    (on_error or _log_error)(error)


__all__ = ["read", "write", "guess_format", "FORMATS", "FormatError", "InputError", "handle_bad"]
