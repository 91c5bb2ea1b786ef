"""JSON (de)serialisation shared by biotag's configuration dataclasses.

Every trainer (NER, relations, pretraining, ...) is driven by one dataclass that must be
written next to its run, read back from a hand-written file with errors naming the file and
the setting, and compared with a checkpoint's config on resume. :class:`JsonConfig` gives a
dataclass all of that; a subclass names its ``REQUIRED`` settings, and its ``__post_init__``
checks values with :meth:`JsonConfig._require_int` and :meth:`JsonConfig._require_in`, so
every config words the same mistake the same way."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from biotag.errors import FormatError, InputError

C = TypeVar("C", bound="JsonConfig")

_INTEGER_KINDS = {0: "a non-negative integer", 1: "a positive integer"}
# what biotag.training.run.resolve_device understands
_DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?")


class JsonConfig:
    """Mixin for a ``@dataclass`` config (validation stays in its ``__post_init__``)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    # settings that do not change results: a resumed run may change them
    RESULT_NEUTRAL: ClassVar[tuple[str, ...]] = ("threads", "output_dir")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], *, path: str | None = None) -> C:
        if not isinstance(data, dict):
            raise FormatError(f"expected a JSON object, got {type(data).__name__}", path=path)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in data:
            if key not in known:
                raise InputError(f"unknown setting; known settings: {', '.join(sorted(known))}", path=path, field=key)
        for key in cls.REQUIRED:
            if key not in data:
                raise InputError("required setting is missing", path=path, field=key)
        try:
            return cls(**data)
        except InputError as error:
            raise error.located(path=path) from None
        except TypeError as error:
            raise InputError(str(error), path=path) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls: type[C], path: str | Path) -> C:
        """Read a config file written by :meth:`save` (or by hand)."""
        return cls.from_dict(read_json(path), path=str(path))

    def replace(self: C, **changes: Any) -> C:
        """A copy with some settings changed (validated like a new config)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def differences(self, other: "JsonConfig", *, ignore: tuple[str, ...] | None = None) -> list[str]:
        """Names of the settings that differ (by default ignoring :attr:`RESULT_NEUTRAL`)."""
        ignore = self.RESULT_NEUTRAL if ignore is None else ignore
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ignore and a[k] != b.get(k)]

    # -- validation helpers for __post_init__ ------------------------------------------
    def _require_int(self, *names: str, minimum: int, optional: bool = False) -> None:
        """Each named setting is an integer >= ``minimum`` (or, with ``optional``, null)."""
        kind = _INTEGER_KINDS.get(minimum, f"an integer >= {minimum}") + (" or null" if optional else "")
        for name in names:
            value = getattr(self, name)
            if optional and value is None:
                continue
            # bool is an int subclass, but true for "epochs" is a mistake, not 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"must be {kind}, got {value!r}", field=name)

    def _require_in(self, name: str, interval: str, *, optional: bool = False) -> None:
        """The setting is a number in ``interval``, written as in mathematics: ``"[0, 1)"``,
        ``"(0, inf)"`` (with ``optional``, null is accepted too)."""
        value = getattr(self, name)
        if optional and value is None:
            return
        low_bracket, high_bracket = interval[0], interval[-1]
        low, high = (float(bound) for bound in interval[1:-1].split(","))
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
        if ok:
            ok = (value >= low if low_bracket == "[" else value > low) and (value <= high if high_bracket == "]" else value < high)
        if not ok:
            raise InputError(f"must be a number in {interval}{' or null' if optional else ''}, got {value!r}", field=name)

    def _require_device(self, name: str = "device") -> None:
        """The setting names where a run trains: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``
        (checked here, on any machine; whether a GPU is there is asked only when it runs)."""
        value = getattr(self, name)
        if not isinstance(value, str) or not _DEVICE.fullmatch(value):
            raise InputError(f"must be cpu, cuda, cuda:N or auto, got {value!r}", field=name)


def read_json(path: str | Path) -> Any:
    """The JSON value in a config file, with one clear error for an unreadable or invalid file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read the config: {error.strerror or error}", path=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormatError(f"not valid JSON: {error.msg}", path=str(path), line=error.lineno) from None
