"""Errors that name where bad input is: file, line, document and field.

Every reader, validator and pipeline step raises (or records) one of these, so a user
sees one clear message such as ``corpus.txt:12: document 123: field 'end': offset 90 is
past the end of the text (85 characters)`` instead of a traceback from deep inside a
parser.
"""

from __future__ import annotations


class BiotagError(Exception):
    """Base class of every error biotag raises on purpose."""


class InputError(BiotagError):
    """Bad input, with as much of its location as is known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        document: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.document = document
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path if self.line is None else f"{self.path}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return ": ".join(where + [self.message])

    def located(self, **where) -> "InputError":
        """A copy with missing location parts filled in (known parts are kept)."""
        current = {"path": self.path, "line": self.line, "document": self.document, "field": self.field}
        for key, value in where.items():
            if current.get(key) is None:
                current[key] = value
        return type(self)(self.message, **current)


class FormatError(InputError):
    """A file does not follow its format (truncated, malformed, wrong encoding...)."""


class ValidationError(InputError):
    """A document is well-formed but inconsistent (offsets outside the text, text mismatch...)."""
