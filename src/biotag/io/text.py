"""Plain text: a ``.txt`` file (or every ``*.txt`` of a folder) as Documents.

Reading
    A file is one Document whose id is the file stem and whose text is the file's
    text, unchanged (line breaks included), with one ``"paragraph"`` passage per
    block of non-blank lines (offsets into that text, surrounding whitespace left
    out). With ``per_line=True`` every non-blank line is a Document of its own, id
    ``<stem>:<line number>``, read as a stream. A folder reads its ``*.txt`` files in
    sorted name order.

Writing
    A path ending in ``.txt`` or an open stream gets the texts one after another
    (separated by a blank line; with ``per_line=True`` one text per line, line
    breaks inside a text turned into spaces). Any other path is a folder that
    receives one ``<document id>.txt`` per document.

This module also holds the small file helpers the other line-based readers share:
:func:`iter_lines` (streamed, UTF-8 checked line by line) and :func:`open_output`
(a path or an already open text stream).
"""

from __future__ import annotations

import codecs
import re
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator

from biotag.document import Document, Passage
from biotag.errors import FormatError, InputError
from biotag.io import ErrorHandler, handle_bad

# a line break followed by at least one whitespace-only line: the gap between paragraphs
_PARAGRAPH_GAP = re.compile(r"\n(?:[^\S\n]*\n)+")
# characters that are unsafe or awkward in a file name on common file systems
_UNSAFE_FILENAME_CHARS = re.compile(r"[^\w.\-]+")


# -- shared file helpers ------------------------------------------------------
def _open_binary(path: str | Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open for reading: {exc.strerror or exc}", path=str(path)) from None


def decode_error(exc: UnicodeDecodeError, raw: bytes, *, path: str | Path, line: int, encoding: str) -> FormatError:
    """The FormatError for a line that is not valid in ``encoding``."""
    bad = raw[exc.start : exc.start + 4]
    return FormatError(
        f"not valid {encoding} at byte {exc.start + 1} of the line ({bad!r}); is the file in another encoding?",
        path=str(path),
        line=line,
        field="encoding",
    )


def iter_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str | FormatError]]:
    """Stream ``(line number, line)`` pairs, line terminators (``\\n`` or ``\\r\\n``) removed
    and a leading byte-order mark dropped.

    A line that cannot be decoded comes as the :class:`FormatError` to raise instead of a
    string: the reader decides whether that ends the file or only the current document.
    """
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield number, decode_error(exc, raw, path=path, line=number, encoding=encoding)


def read_whole(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole file decoded, exactly (line breaks kept, a leading byte-order mark
    dropped); a decoding error names its line."""
    with _open_binary(path) as fh:
        data = fh.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        raw = data[line_start : None if line_end < 0 else line_end]
        in_line = UnicodeDecodeError(exc.encoding, raw, exc.start - line_start, exc.end - line_start, exc.reason)
        raise decode_error(in_line, raw, path=path, line=data.count(b"\n", 0, exc.start) + 1, encoding=encoding) from None


@contextmanager
def open_output(target: str | Path | IO[str]) -> Iterator[IO[str]]:
    """A text stream for ``target``: a path is opened (UTF-8, line breaks written as
    given), an open stream is used as it is and left open."""
    if isinstance(target, (str, Path)):
        with open(target, "w", encoding="utf-8", newline="") as fh:
            yield fh
    elif hasattr(target, "write"):
        yield target
    else:
        raise TypeError(f"expected a path or an open text stream, got {type(target).__name__}")


# -- reading ------------------------------------------------------------------------
def paragraphs(text: str, start: int = 0, end: int | None = None) -> list[Passage]:
    """One ``"paragraph"`` passage per blank-line-separated block of ``text[start:end]``,
    trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    out: list[Passage] = []
    block_start = start
    for gap in [*_PARAGRAPH_GAP.finditer(text, start, end), None]:
        block_end = end if gap is None else gap.start()
        block = text[block_start:block_end]
        stripped = block.strip()
        if stripped:
            first = block_start + (len(block) - len(block.lstrip()))
            out.append(Passage("paragraph", first, first + len(stripped)))
        if gap is not None:
            block_start = gap.end()
    return out


def _text_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted((p for p in path.glob("*.txt") if p.is_file()), key=lambda p: p.name)
    return [path]


def read(
    path: str | Path,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    per_line: bool = False,
    encoding: str = "utf-8",
) -> Iterator[Document]:
    """Documents from a ``.txt`` file or a folder of them (see the module docstring)."""
    for file in _text_files(Path(path)):
        if per_line:
            yield from _read_lines_as_documents(file, skip_bad, on_error, encoding)
            continue
        try:
            text = read_whole(file, encoding)
        except FormatError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        yield Document(id=file.stem, text=text, passages=paragraphs(text))


def _read_lines_as_documents(file: Path, skip_bad: bool, on_error: ErrorHandler | None, encoding: str) -> Iterator[Document]:
    for number, line in iter_lines(file, encoding):
        if isinstance(line, FormatError):
            handle_bad(line, skip_bad, on_error)
        elif line.strip():
            yield Document(id=f"{file.stem}:{number}", text=line, passages=paragraphs(line))


# -- writing ------------------------------------------------------------------------
def _is_folder_target(target: str | Path | IO[str]) -> bool:
    if not isinstance(target, (str, Path)):
        return False
    p = Path(target)
    return p.is_dir() or p.suffix.lower() != ".txt"


def file_name_for(doc_id: str) -> str:
    """A safe file name (without suffix) for a document id."""
    name = _UNSAFE_FILENAME_CHARS.sub("_", doc_id).strip(".")
    return name or "_"


def write(docs: Iterable[Document], path: str | Path | IO[str], *, per_line: bool = False) -> int:
    """Write the documents' texts (see the module docstring); returns how many."""
    if _is_folder_target(path):
        return _write_folder(docs, Path(path))
    count = 0
    with open_output(path) as out:
        for doc in docs:
            if per_line:
                out.write(re.sub(r"\r\n|[\r\n]", " ", doc.text) + "\n")
            else:
                out.write(("\n\n" if count else "") + doc.text)
            count += 1
    return count


def _write_folder(docs: Iterable[Document], folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for doc in docs:
        name = file_name_for(doc.id)
        if name in written:
            raise FormatError(
                f"cannot write two documents to {name}.txt (ids {written[name]!r} and {doc.id!r})",
                path=str(folder),
                document=doc.id,
                field="id",
            )
        written[name] = doc.id
        (folder / f"{name}.txt").write_text(doc.text, encoding="utf-8", newline="")
    return len(written)
