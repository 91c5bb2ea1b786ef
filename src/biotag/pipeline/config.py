"""Pipelines as JSON configs, and back.

::

    {
      "batch_size": 64,
      "on_error": "pass",
      "steps": [
        {"name": "sentences"},
        {"name": "ner", "model": "models/bc5cdr", "backend": "onnx"},
        {"name": "abbreviations", "run_failed": true}
      ]
    }

``name`` picks a registered step factory (:func:`biotag.pipeline.registry.known_steps`);
the other keys of a step are that factory's options. A step may be written as its bare
name (``"steps": ["sentences", "ner"]``). ``batch_size`` (documents per batch) and
``on_error`` are optional. :func:`pipeline_to_config` writes a pipeline built from the
registry back as such a dict, so ``from_config(to_config(p))`` rebuilds ``p``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biotag.errors import FormatError, InputError
from biotag.pipeline.registry import build_step

if TYPE_CHECKING:
    from biotag.pipeline.pipeline import Pipeline

PIPELINE_KEYS = ("steps", "batch_size", "on_error")


def read_config(source: "dict[str, Any] | str | os.PathLike") -> tuple[dict[str, Any], str | None]:
    """The config dict and the file it came from (``None`` for a dict)."""
    if isinstance(source, dict):
        return source, None
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("pipeline config file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the pipeline config ({error})", path=str(path)) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise FormatError(f"invalid JSON: {error.msg} (column {error.colno})", path=str(path), line=error.lineno) from None
    if not isinstance(config, dict):
        raise FormatError(f"a pipeline config is a JSON object, got {type(config).__name__}", path=str(path))
    return config, str(path)


def step_specs(config: dict[str, Any], path: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(name, options)`` of each step of a config, checked for shape."""
    unknown = sorted(set(config) - set(PIPELINE_KEYS))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(map(repr, unknown))}; a pipeline config has: {', '.join(PIPELINE_KEYS)}", path=path, field=unknown[0])
    steps = config.get("steps")
    if not isinstance(steps, list) or not steps:
        raise InputError("must be a non-empty list of steps", path=path, field="steps")
    specs = []
    for i, spec in enumerate(steps):
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InputError('each step is a name or an object with a "name"', path=path, field=f"steps[{i}]")
        options = {k: v for k, v in spec.items() if k != "name"}
        specs.append((spec["name"], options))
    return specs


def pipeline_from_config(
    source: "dict[str, Any] | str | os.PathLike",
    *,
    step_defaults: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> "Pipeline":
    """Build a :class:`~biotag.pipeline.pipeline.Pipeline` from a config dict or JSON
    file. ``step_defaults`` gives options by step name for steps whose config leaves them
    out (``{"ner": {"model": ...}}``); ``overrides`` (``batch_size``, ``on_error``) win
    over the config's values."""
    from biotag.pipeline.pipeline import Pipeline

    config, path = read_config(source)
    specs = step_specs(config, path)
    defaults = step_defaults or {}
    steps = [
        build_step(name, {**defaults.get(name, {}), **options}, where=f"steps[{i}]", path=path)
        for i, (name, options) in enumerate(specs)
    ]
    settings = {k: config[k] for k in ("batch_size", "on_error") if k in config}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Pipeline(steps, **settings)
    except InputError as error:
        raise error.located(path=path) from None


def pipeline_to_config(pipeline: "Pipeline") -> dict[str, Any]:
    """The config that rebuilds ``pipeline``; every step must come from the registry."""
    steps = []
    for step in pipeline.steps:
        if step.factory is None:
            raise InputError(
                f"step {step.name!r} was built from code, not from a registered factory, so it cannot be written to a config",
                field="steps",
            )
        spec = {"name": step.factory, **{k: _jsonable(v) for k, v in step.options.items()}}
        if step.run_failed:
            spec["run_failed"] = True
        steps.append(spec)
    return {"batch_size": pipeline.batch_size, "on_error": pipeline.on_error, "steps": steps}


def _jsonable(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value
