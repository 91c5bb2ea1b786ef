"""Plumbing shared by the XML formats (BioC XML, PubMed XML).

* :func:`iter_records` yields each record (child of the root element) in turn.
* :func:`iter_events` streams ``lxml.etree.iterparse`` events with entity resolution and
  network access off, and turns a syntax error (truncated file, wrong encoding...) into
  a :class:`~biotag.errors.FormatError` carrying the line lxml reports.
* :func:`release` frees a handled element and its already handled siblings, so a reader
  keeps one document in memory however long the file is.
* :func:`open_binary_output` gives the byte stream ``lxml.etree.xmlfile`` writes to, for
  a path or an open (binary or text) stream.
* :func:`child_elements`, :func:`unknown_element` and :func:`check_no_entity_references`
  are the strict-structure helpers.
"""

from __future__ import annotations

import codecs
import io
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from lxml import etree

from biotag.errors import FormatError, InputError
from biotag.io import ErrorHandler, handle_bad

XmlSource = str | Path | IO[bytes]


def source_name(source: XmlSource) -> str:
    """The path to name in error messages (a stream's ``name`` when it has one)."""
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def iter_events(source: XmlSource, events: tuple[str, ...] = ("start", "end")) -> Iterator[tuple[str, etree._Element]]:
    """``iterparse`` events; XML errors become a FormatError with the file and line."""
    name = source_name(source)
    if isinstance(source, (str, Path)):
        try:
            handle: IO[bytes] = open(source, "rb")
        except OSError as exc:
            raise InputError(f"cannot open for reading: {exc.strerror or exc}", path=name) from None
    else:
        handle = source
    try:
        # resolve_entities/no_network: never expand external entities (XXE) or fetch DTDs
        parser = etree.iterparse(
            handle, events=events, resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
        )
        try:
            yield from parser
        except etree.XMLSyntaxError as exc:
            line = exc.position[0] if exc.position else exc.lineno
            if "encoding" in exc.msg or "UTF-8" in exc.msg:
                message = f"{exc.msg} (is the file in another encoding than it declares?)"
                raise FormatError(message, path=name, line=line or None, field="encoding") from None
            raise FormatError(f"malformed XML: {exc.msg}", path=name, line=line or None, field="xml") from None
        except (etree.LxmlError, ValueError, LookupError) as exc:  # e.g. an unsupported encoding
            raise FormatError(f"malformed XML: {exc}", path=name, field="xml") from None
    finally:
        if handle is not source:
            handle.close()


def iter_records(
    source: XmlSource,
    roots: tuple[str, ...],
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
) -> Iterator[etree._Element]:
    """Each child of the root element (a BioC ``<document>``, a ``<PubmedArticle>``...),
    complete, then freed once the caller is done with it. A root element not in ``roots``
    or a syntax error is a file-level error: raised, or with ``skip_bad`` reported and the
    rest of the file skipped."""
    name = source_name(source)
    depth = 0
    try:
        for event, elem in iter_events(source):
            if event == "start":
                depth += 1
                if depth == 1 and elem.tag not in roots:
                    expected = " or ".join(f"<{r}>" for r in roots)
                    message = f"root element is <{elem.tag}>, expected {expected}"
                    raise FormatError(message, path=name, line=elem.sourceline, field="root")
                continue
            depth -= 1
            if depth == 1:
                yield elem
                release(elem)
    except InputError as err:
        handle_bad(err, skip_bad, on_error)


def release(elem: etree._Element) -> None:
    """Free ``elem`` and every earlier sibling (already handled), keeping memory flat."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def child_elements(elem: etree._Element) -> Iterator[etree._Element]:
    """Element children only (processing instructions and entities are skipped)."""
    for child in elem:
        if isinstance(child.tag, str):
            yield child


def check_no_entity_references(record: etree._Element, *, path: str, document: str | None) -> None:
    """Entities a DTD declares are never expanded (entity bombs, external files): a record
    that uses one is an error rather than a text with a hole in it."""
    for entity in record.iter(etree.Entity):
        parent = entity.getparent()
        raise FormatError(
            f"entity reference {entity.text} is not expanded (biotag does not resolve DTD entities)",
            path=path,
            line=entity.sourceline or (parent.sourceline if parent is not None else None),
            document=document,
            field="xml",
        )


def unknown_element(child: etree._Element, parent: str, *, path: str, document: str | None) -> FormatError:
    return FormatError(
        f"unexpected element <{child.tag}> inside <{parent}>",
        path=path,
        line=child.sourceline,
        document=document,
        field=parent,
    )


class _TextSink(io.RawIOBase):
    """Bytes in, text out: lets ``xmlfile`` write UTF-8 into an open text stream
    (an incremental decoder, so a character split across two writes stays whole)."""

    def __init__(self, target: IO[str]) -> None:
        self._target = target
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._target.write(self._decoder.decode(bytes(data)))
        return len(data)


@contextmanager
def open_binary_output(target: str | Path | IO) -> Iterator[IO[bytes]]:
    """A byte stream for ``target``: a path is opened (and closed), an open stream is
    used as it is and left open (text streams receive the decoded UTF-8)."""
    if isinstance(target, (str, Path)):
        with open(target, "wb") as fh:
            yield fh
    elif isinstance(target, io.TextIOBase):
        yield _TextSink(target)  # type: ignore[misc]
    elif hasattr(target, "write"):
        yield target
    else:
        raise TypeError(f"expected a path or an open stream, got {type(target).__name__}")
