"""JSON Lines: one :meth:`Document.to_dict` object per line, biotag's lossless format.

Blank lines are ignored. Every line is checked by :meth:`Document.from_dict` (offsets,
entity texts, relation arguments), and a bad line raises a FormatError or
ValidationError naming the file, the line number and, where it could be read, the
document id. With ``skip_bad`` only that line is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterable, Iterator

from biotag.document import Document
from biotag.errors import FormatError, InputError
from biotag.io import ErrorHandler, handle_bad
from biotag.io.text import iter_lines, open_output


def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    validate: bool = True,
) -> Iterator[Document]:
    """Stream Documents; ``validate=False`` skips the offset/text checks (faster, for
    files biotag wrote itself)."""
    for number, line in iter_lines(path):
        if isinstance(line, FormatError):
            handle_bad(line, skip_bad, on_error)
        elif line.strip():
            try:
                doc = _parse_line(line, path=path, number=number, validate=validate)
            except InputError as err:
                handle_bad(err, skip_bad, on_error)
                continue
            yield doc


def _parse_line(line: str, *, path: str | Path, number: int, validate: bool) -> Document:
    try:
        data = json.loads(line)
    except RecursionError:
        raise FormatError("JSON nested too deeply", path=str(path), line=number, field="json") from None
    except ValueError as exc:  # JSONDecodeError, and numbers past Python's digit limit
        raise FormatError(f"not a JSON value: {exc}", path=str(path), line=number, field="json") from None
    doc_id = str(data["id"]) if isinstance(data, dict) and "id" in data else None
    try:
        return Document.from_dict(data, validate=validate)
    except InputError as err:
        raise err.located(path=str(path), line=number) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # from_dict names the field for the layers it knows; this covers the rest
        # (e.g. "metadata" that is not an object)
        raise FormatError(
            f"malformed document ({type(exc).__name__}: {exc})", path=str(path), line=number, document=doc_id
        ) from None


def write(docs: Iterable[Document], path: str | Path | IO[str]) -> int:
    """One JSON object per line (UTF-8, non-ASCII characters kept as they are)."""
    count = 0
    with open_output(path) as out:
        for doc in docs:
            out.write(doc.to_json())
            out.write("\n")
            count += 1
    return count
