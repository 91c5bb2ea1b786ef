"""Where biotag finds shared data, encoders and its bundled resources."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(__file__).parent / "resources"


def data_root() -> Path:
    """Root of the benchmark data: ``$BIOTAG_DATA`` or ``../shared/data`` (relative to the
    working directory, as in the project's checkout layout)."""
    env = os.environ.get("BIOTAG_DATA")
    return Path(env) if env else Path("../shared/data").resolve()


def encoders_root() -> Path:
    """Folder holding pretrained encoders built by ``../shared/tools/fetch-encoders.sh``."""
    env = os.environ.get("BIOTAG_ENCODERS")
    return Path(env) if env else Path.home() / ".cache" / "biotag" / "encoders"


def find_encoder(name_or_path: str | os.PathLike) -> Path:
    """A local encoder directory from a path or a short name (``minilm-l6``)."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    candidate = encoders_root() / str(name_or_path)
    if candidate.is_dir():
        return candidate
    from biotag.errors import InputError

    raise InputError(
        f"no encoder directory {str(name_or_path)!r} (looked in {encoders_root()}); "
        "run ../shared/tools/fetch-encoders.sh or set BIOTAG_ENCODERS",
        field="encoder",
    )
