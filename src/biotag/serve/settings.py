"""What a ``biotag serve`` worker needs to know: model, limits, timeout, API keys.

Settings travel to uvicorn worker processes as JSON in an environment variable (each
worker builds its own app and loads its own model), so they hold only plain values.
API keys are never put there: each worker reads them itself from the key file and
from the environment variable named by ``api_keys_env``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from biotag.errors import InputError

DEFAULT_API_KEYS_ENV = "BIOTAG_API_KEYS"
# JSON text escapes (\uXXXX is 6 bytes for one character) and the JSON around the text
# make a body larger than the text it carries; this many bytes per allowed character,
# plus a fixed allowance, is the request body limit.
BODY_BYTES_PER_CHAR = 8
BODY_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Settings of one service instance (every worker gets the same)."""

    model: Path | None = None  # None: the bundled default model
    backend: str = "auto"
    threads: int | None = None  # CPU threads for the model's own kernels
    batch_size: int = 32
    max_chars: int = 200_000  # characters of text in one request, all documents together
    max_documents: int = 256  # documents in one request
    max_body_bytes: int | None = None  # None: derived from max_chars
    timeout: float = 60.0  # seconds for one request's parsing + inference + rendering
    concurrency: int = 1  # requests annotated at once in one worker
    api_keys_file: Path | None = None
    api_keys_env: str | None = DEFAULT_API_KEYS_ENV
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)  # explicit keys (tests, embedding)

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_documents", "concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"must be at least 1, got {getattr(self, name)}", field=name)
        if self.timeout <= 0:
            raise InputError(f"must be positive, got {self.timeout}", field="timeout")

    @property
    def body_limit(self) -> int:
        """The largest request body accepted, in bytes."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return BODY_BYTES_PER_CHAR * self.max_chars + BODY_OVERHEAD_BYTES

    def resolve_api_keys(self, environ: Mapping[str, str] = os.environ) -> frozenset[str]:
        """Every accepted key: the explicit ones, the key file's and the environment's.
        An empty set means authentication is off."""
        keys = set(self.api_keys)
        if self.api_keys_file is not None:
            keys |= read_api_keys_file(self.api_keys_file)
        if self.api_keys_env and environ.get(self.api_keys_env):
            keys |= {k.strip() for k in environ[self.api_keys_env].split(",") if k.strip()}
        return frozenset(keys)

    # -- transport to worker processes ---------------------------------------------
    def to_json(self) -> str:
        """Plain-value JSON without the explicit keys (workers re-read file and env)."""
        data = asdict(self)
        data.pop("api_keys")
        for name in ("model", "api_keys_file"):
            data[name] = None if data[name] is None else str(data[name])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)} - {"api_keys"}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown settings {sorted(unknown)}", field="settings")
        for name in ("model", "api_keys_file"):
            if data.get(name) is not None:
                data[name] = Path(data[name])
        return cls(**data)

    def replace(self, **changes: Any) -> ServeSettings:
        return replace(self, **changes)


def read_api_keys_file(path: str | os.PathLike) -> frozenset[str]:
    """Keys from a file, one per line; blank lines and lines starting with ``#`` are
    ignored (a ``#`` inside a key is part of the key). A
    file with no key is an error: it would silently turn authentication off."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the API key file ({exc.strerror})", path=str(path), field="api_keys_file") from None
    except UnicodeDecodeError:
        raise InputError("the API key file is not UTF-8 text", path=str(path), field="api_keys_file") from None
    keys = frozenset(k for k in (line.strip() for line in lines) if k and not k.startswith("#"))
    if not keys:
        raise InputError("the API key file holds no key", path=str(path), field="api_keys_file")
    return keys
