"""Request bodies in any input format in, documents in any output format out, through
the :mod:`biotag.io` readers and writers (so the service and the command line agree on
every format)."""

from __future__ import annotations

import io as _stdio
import json
import tempfile
from pathlib import Path

from biotag import io
from biotag.document import Document
from biotag.errors import InputError
from biotag.io.text import file_name_for
from biotag.serve.schemas import InputFormat, OutputFormat

# the name the request body is given in error messages (never the temporary file's)
BODY_NAME = "request body"

MEDIA_TYPES = {
    OutputFormat.json: "application/json",
    OutputFormat.jsonl: "application/x-ndjson",
    OutputFormat.pubtator: "text/plain; charset=utf-8",
    OutputFormat.bioc_xml: "application/xml",
    OutputFormat.bioc_json: "application/json",
}
# a suffix io.guess_format agrees with, so a reader that looks at the name is not confused
_SUFFIXES = {
    InputFormat.pubtator: ".pubtator",
    InputFormat.bioc_xml: ".bioc.xml",
    InputFormat.bioc_json: ".bioc.json",
    InputFormat.pubmed_xml: ".pubmed.xml",
    InputFormat.jsonl: ".jsonl",
    InputFormat.conll: ".conll",
    InputFormat.text: ".txt",
}


def read_body(body: bytes, fmt: InputFormat, name: str = "document") -> list[Document]:
    """The documents of a raw request body in format ``fmt``. The readers read from a
    path, so the body goes to a temporary file named ``name`` (documents of formats
    without ids of their own, text and CoNLL, take their id from it). Errors name the
    request body, not the temporary file."""
    with tempfile.TemporaryDirectory(prefix="biotag-serve-") as folder:
        path = Path(folder) / (file_name_for(name) + _SUFFIXES[fmt])
        path.write_bytes(body)
        try:
            return list(io.read(path, fmt.value))
        except InputError as error:
            located = error.path is not None and Path(error.path) == path
            raise type(error)(
                error.message,
                path=BODY_NAME if located else error.path,
                line=error.line,
                document=error.document,
                field=error.field,
            ) from None


def render(docs: list[Document], output: OutputFormat, *, single: bool = False) -> bytes:
    """``docs`` in ``output`` format. JSON is one document object when ``single``, else
    ``{"documents": [...]}``."""
    if output is OutputFormat.json:
        payload = docs[0].to_dict() if single else {"documents": [d.to_dict() for d in docs]}
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    stream = _stdio.StringIO()
    io.write(docs, stream, output.value)
    return stream.getvalue().encode("utf-8")
