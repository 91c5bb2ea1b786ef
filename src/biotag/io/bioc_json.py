"""BioC JSON, as PMC's BioC API and PubTator3 write it.

Accepted layouts:

* a collection ``{"source", "date", "key", "infons", "documents": [...]}``, or PubTator3's
  ``{"PubTator3": [...]}``;
* a top-level list of documents, or of collections (PMC's BioC API answers
  ``[{"bioctype": "BioCCollection", "documents": [...]}]``);
* one document (or one collection) per line (JSON Lines, as the older PubTator API
  exported them).

JSON Lines are streamed line by line; the other layouts are one JSON value and are loaded
per file. The layout is told from the first non-blank line: if it is a whole JSON value,
the file is read as JSON Lines. Documents are mapped by :mod:`biotag.io._bioc_common`
(shared with BioC XML); infon values may be any JSON value and are kept as they are.

Errors name the file, the line (of the document in JSON Lines; of the syntax error in a
whole-file layout, where documents have no line), the document and the field. With
``skip_bad`` a bad document (or a bad line) is skipped; a whole-file layout that is not
valid JSON ends the file.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from biotag.document import Document
from biotag.errors import FormatError, InputError
from biotag.io import ErrorHandler, handle_bad
from biotag.io._bioc_common import document_from_bioc, document_to_bioc
from biotag.io.text import iter_lines, open_output, read_whole

# top-level keys holding the documents of a collection
COLLECTION_KEYS = ("documents", "PubTator3")


def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    check_text: bool = True,
) -> Iterator[Document]:
    """Stream the Documents of a BioC JSON file (any layout above)."""
    name = str(path)
    for line, raw in _raw_documents(name, skip_bad, on_error):
        try:
            doc = document_from_bioc(raw, path=name, line=line, check_text=check_text)
        except InputError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        yield doc


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (and NaN would make a document unequal to itself)
    raise ValueError(f"{name} is not a JSON value")


def _loads(text: str, *, path: str, line: int | None) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise FormatError("JSON nested too deeply", path=path, line=line, field="json") from None
    except json.JSONDecodeError as exc:
        at = exc.lineno if line is None else line
        raise FormatError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=at, field="json") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise FormatError(f"not valid JSON: {exc}", path=path, line=line, field="json") from None


def _documents_in(value: Any, *, path: str, line: int | None) -> list[Any]:
    """The documents a parsed JSON value holds (a collection, one document, or a list of
    either)."""
    if isinstance(value, list):
        return [doc for item in value for doc in (_documents_in(item, path=path, line=line) if _is_collection(item) else [item])]
    if isinstance(value, dict):
        for key in COLLECTION_KEYS:
            if key in value:
                documents = value[key]
                if not isinstance(documents, list):
                    raise FormatError(f"{key!r} must be a list of documents", path=path, line=line, field=key)
                return documents
        return [value]
    message = f"expected a BioC collection, document or list of documents, got {type(value).__name__}"
    raise FormatError(message, path=path, line=line, field="json")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _is_collection(value: Any) -> bool:
    return isinstance(value, dict) and any(key in value for key in COLLECTION_KEYS)


def _raw_documents(path: str, skip_bad: bool, on_error: ErrorHandler | None) -> Iterator[tuple[int | None, Any]]:
    lines = iter_lines(path)
    layout_known = False
    for number, line in lines:
        if isinstance(line, str) and not line.strip():
            continue
        if not layout_known and isinstance(line, str) and not _is_json(line):
            lines.close()  # not JSON Lines: one value spanning the file
            yield from _whole_file(path, skip_bad, on_error)
            return
        layout_known = True
        try:
            if isinstance(line, FormatError):
                raise line
            documents = _documents_in(_loads(line, path=path, line=number), path=path, line=number)
        except InputError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        for raw in documents:
            yield number, raw


def _whole_file(path: str, skip_bad: bool, on_error: ErrorHandler | None) -> Iterator[tuple[int | None, Any]]:
    try:
        documents = _documents_in(_loads(read_whole(path), path=path, line=None), path=path, line=None)
    except InputError as err:
        handle_bad(err, skip_bad, on_error)
        return
    for raw in documents:
        yield None, raw


def write(
    docs: Iterable[Document],
    path: str | Path | IO[str],
    *,
    lines: bool = False,
    source: str = "biotag",
    date: str | None = None,
    key: str = "biotag.key",
) -> int:
    """Write a BioC JSON collection, streamed document by document (``lines=True``: one
    document per line instead). Returns the number of documents written."""
    count = 0
    with open_output(path) as out:
        if lines:
            for doc in docs:
                out.write(_dumps(doc) + "\n")
                count += 1
            return count
        header = {"source": source, "date": date or datetime.date.today().isoformat(), "key": key, "infons": {}}
        out.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "documents": [')
        for doc in docs:
            out.write(("," if count else "") + "\n" + _dumps(doc))
            count += 1
        out.write("\n]}\n")
    return count


def _dumps(doc: Document) -> str:
    return json.dumps(document_to_bioc(doc), ensure_ascii=False)
