"""The de-identification corpora as Documents, and their training folders.

* ``physionet-deid`` (``<data root>/deid/physionet-deid/{train,dev}.jsonl``): real ICU
  nursing notes whose gold PHI is untyped, so every span becomes a :data:`~biotag.deid.
  spans.UNTYPED` (``PHI``) entity. Documents are ``physionet-<patient>-<note>`` with the
  patient in ``metadata["patient"]``. The shared ``dev`` split is kept for the reported
  numbers; model selection and thresholds use a ``devel`` split carved out of ``train``
  by patient (:func:`devel_patient`), so no patient's notes are on both sides.
* ``presidio-synthetic`` (``<data root>/deid/presidio-synthetic/synth_dataset_v2.json.gz``):
  template sentences with typed PII. :data:`PRESIDIO_TYPES` maps its labels onto
  HIPAA-style types; labels that are not PHI under HIPAA (job titles, honorifics,
  nationalities, ages under 90) map to ``None`` and their words train as "not PHI".

The NER trainer reads folders of ``<split>.jsonl`` Document files (see
:mod:`biotag.training.data`), so :func:`write_training_corpora` writes one folder per
corpus; ``biotag deid-corpora`` runs it.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Iterator

from biotag import io as bio_io
from biotag import paths
from biotag.deid.spans import UNTYPED
from biotag.document import Document
from biotag.errors import FormatError, InputError

PHYSIONET = "deid/physionet-deid"
PRESIDIO = "deid/presidio-synthetic/synth_dataset_v2.json.gz"
DEVEL_PERCENT = 15  # share of train patients held out for model selection

# presidio label -> HIPAA-style type (None: not PHI under Safe Harbor)
PRESIDIO_TYPES: dict[str, str | None] = {
    "PERSON": "NAME",
    "STREET_ADDRESS": "LOCATION",
    "GPE": "LOCATION",
    "ZIP_CODE": "ZIP",
    "ORGANIZATION": "ORGANIZATION",  # employers and hospitals: physionet marks them
    "DATE_TIME": "DATE",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "DOMAIN_NAME": "URL",
    "IP_ADDRESS": "IP",
    "CREDIT_CARD": "ID",
    "IBAN_CODE": "ID",
    "US_SSN": "ID",
    "US_DRIVER_LICENSE": "ID",
    "AGE": None,  # template ages are mostly under 90
    "TITLE": None,  # "Dr.", "Mrs.", job titles
    "NRP": None,  # nationality, religion, political group
}


def physionet_path(split: str, root: str | Path | None = None) -> Path:
    """``train`` or ``dev`` of physionet-deid under the data root."""
    if split not in ("train", "dev"):
        raise InputError(f"physionet-deid has the splits train and dev, not {split!r}", field="split")
    path = (Path(root) if root is not None else paths.data_root()) / PHYSIONET / f"{split}.jsonl"
    if not path.is_file():
        raise InputError("physionet-deid file not found (set BIOTAG_DATA to the folder holding deid/)", path=str(path))
    return path


def read_physionet(path: str | Path) -> Iterator[Document]:
    """Documents with ``PHI`` entities from a physionet-deid JSONL file."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                patient, note, text, phi = row["patient"], row["note"], row["text"], row["phi"]
            except (ValueError, KeyError, TypeError) as exc:
                raise FormatError(f"not a physionet-deid row ({type(exc).__name__}: {exc})", path=str(path), line=number) from None
            doc = Document(id=f"physionet-{patient}-{note}", text=text, metadata={"patient": patient, "note": note})
            for i, span in enumerate(phi):
                if not (isinstance(span, list) and len(span) == 2 and 0 <= span[0] < span[1] <= len(text)):
                    raise FormatError(f"bad PHI span {span!r}", path=str(path), line=number, document=doc.id, field=f"phi[{i}]")
                doc.add_entity(span[0], span[1], UNTYPED, source="gold")
            yield doc


def devel_patient(patient) -> bool:
    """Whether a train patient belongs to the devel split (a stable hash of the id)."""
    return zlib.crc32(str(patient).encode("utf-8")) % 100 < DEVEL_PERCENT


def physionet_split(split: str, root: str | Path | None = None) -> list[Document]:
    """``train`` (train minus the devel patients), ``devel`` (those patients) or ``dev``
    (the shared dev split, for reporting)."""
    if split == "dev":
        return list(read_physionet(physionet_path("dev", root)))
    if split not in ("train", "devel"):
        raise InputError(f"physionet-deid splits are train, devel and dev, not {split!r}", field="split")
    docs = read_physionet(physionet_path("train", root))
    return [d for d in docs if devel_patient(d.metadata["patient"]) == (split == "devel")]


def read_presidio(path: str | Path | None = None, *, typed: bool = False) -> Iterator[Document]:
    """presidio-synthetic sentences as Documents: entities typed by
    :data:`PRESIDIO_TYPES` with ``typed``, else all ``PHI`` (labels mapping to None dropped)."""
    path = Path(path) if path is not None else paths.data_root() / PRESIDIO
    if not path.is_file():
        raise InputError("presidio-synthetic file not found (set BIOTAG_DATA to the folder holding deid/)", path=str(path))
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            items = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a gzipped JSON list: {exc}", path=str(path)) from None
    for i, item in enumerate(items):
        doc = Document(id=f"presidio-{i}", text=item["full_text"])
        for j, span in enumerate(item["spans"]):
            label = span["entity_type"]
            if label not in PRESIDIO_TYPES:
                raise FormatError(f"unknown PII label {label!r}", path=str(path), document=doc.id, field=f"spans[{j}]")
            kind = PRESIDIO_TYPES[label]
            if kind is not None:
                doc.add_entity(span["start_position"], span["end_position"], kind if typed else UNTYPED, source="gold")
        yield doc


def write_training_corpora(out: str | Path, root: str | Path | None = None, *, typed_presidio: bool = False) -> dict[str, dict[str, int]]:
    """``out/physionet-deid/{train,devel,test}.jsonl`` (test: the shared dev split) and
    ``out/presidio-synthetic/{train,devel}.jsonl`` (devel empty: model selection is on
    clinical notes only). Returns documents and entities per file."""
    out = Path(out)
    sizes: dict[str, dict[str, int]] = {}
    files = {
        "physionet-deid/train.jsonl": physionet_split("train", root),
        "physionet-deid/devel.jsonl": physionet_split("devel", root),
        "physionet-deid/test.jsonl": physionet_split("dev", root),
        "presidio-synthetic/train.jsonl": list(read_presidio(None if root is None else Path(root) / PRESIDIO, typed=typed_presidio)),
        "presidio-synthetic/devel.jsonl": [],
    }
    for name, docs in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        bio_io.write(docs, path, "jsonl")
        sizes[name] = {"documents": len(docs), "entities": sum(len(d.entities) for d in docs)}
    return sizes
