"""``biotag.json``, the metadata file of a biotag model directory (label schema, lengths,
features, training card), read in one place for the PyTorch and ONNX paths. It does not
import PyTorch, so the ONNX engine loads without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biotag.errors import InputError
from biotag.labels import LabelSchema

BIOTAG_FILE = "biotag.json"


def read_metadata(directory: str | Path) -> tuple[dict[str, Any], LabelSchema]:
    """``biotag.json`` of a model directory and its label schema; an error names the
    directory when it is not a biotag model, the file when the metadata is unreadable."""
    path = Path(directory) / BIOTAG_FILE
    if not path.is_file():
        raise InputError("not a biotag model directory (no biotag.json)", path=str(directory), field="model")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
        schema = LabelSchema.from_dict(metadata["schema"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable model metadata: {error}", path=str(path), field="schema") from None
    return metadata, schema
