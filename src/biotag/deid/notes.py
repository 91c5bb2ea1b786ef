"""Notes in, de-identified notes out: the input forms ``biotag deidentify`` accepts and
the records it writes.

Input: a text, a ``.txt`` file or a folder of ``*.txt`` files (:mod:`biotag.io.text`: one
note per file, text unchanged), or a JSONL file of objects with a text field (``text``
by default; biotag's own Document JSONL qualifies). A note's *key* decides which notes
share one date offset and one surrogate table: the value of ``key_field`` (e.g.
``patient``) when given, else the note's id.

Output records hold the note id, its key, the de-identified text and the offset map
(:class:`~biotag.deid.redact.Replacement`), never the original text of a span. Other
fields of an input object are not copied, as they may hold PHI too.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from biotag import io as bio_io
from biotag.deid.redact import DeidResult, deidentify_text
from biotag.deid.surrogates import Surrogates
from biotag.deid.tagger import PhiTagger
from biotag.document import Document
from biotag.errors import FormatError
from biotag.io.text import iter_lines

KEYS_KEPT = 10_000  # surrogate tables kept in memory (least recently used dropped)


@dataclass
class Note:
    id: str
    text: str
    key: str


def read_notes(
    path: str | Path | None = None,
    text: str | None = None,
    *,
    text_field: str = "text",
    id_field: str = "id",
    key_field: str | None = None,
) -> Iterator[Note]:
    if text is not None:
        yield Note("text", text, "text")
        return
    assert path is not None
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path, text_field, id_field, key_field)
        return
    for doc in bio_io.read(path, "text"):
        yield Note(doc.id, doc.text, doc.id)


def _read_jsonl(path: Path, text_field: str, id_field: str, key_field: str | None) -> Iterator[Note]:
    for number, line in iter_lines(path):
        if isinstance(line, FormatError):
            raise line
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise FormatError(f"not a JSON object: {exc}", path=str(path), line=number) from None
        if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
            raise FormatError(f"no text field {text_field!r} (a string) in this object", path=str(path), line=number, field=text_field)
        note_id = str(row.get(id_field, number))
        if key_field is not None and key_field not in row:
            raise FormatError(f"no key field {key_field!r}", path=str(path), line=number, document=note_id, field=key_field)
        key = str(row[key_field]) if key_field is not None else note_id
        yield Note(note_id, row[text_field], key)


def deidentify_notes(
    notes: Iterable[Note],
    tagger: PhiTagger,
    *,
    mode: str = "tag",
    seed: int | str | None = None,
    batch_notes: int = 64,
) -> Iterator[tuple[Note, DeidResult]]:
    """Each note with its de-identified result. ``seed`` drives date offsets and
    surrogates (None: a random secret, so offsets cannot be recomputed)."""
    seed = secrets.token_hex(16) if seed is None else seed
    tables: OrderedDict[str, Surrogates] = OrderedDict()
    notes = iter(notes)
    while batch := list(islice(notes, batch_notes)):
        docs = [Document(id=n.id, text=n.text) for n in batch]
        for note, spans in zip(batch, tagger.find(docs)):
            surrogates = None
            if mode == "surrogate":
                surrogates = tables.pop(note.key, None) or Surrogates(note.key, seed)
                tables[note.key] = surrogates
                if len(tables) > KEYS_KEPT:
                    tables.popitem(last=False)
            yield note, deidentify_text(note.text, spans, mode, surrogates)


def note_record(note: Note, result: DeidResult, mode: str) -> dict:
    return {
        "id": note.id,
        "key": note.key,
        "mode": mode,
        "text": result.text,
        "phi": [r.to_dict() for r in result.replacements],
    }
