"""Step factories by name, in the manner of spaCy's registry.

A factory is a function of keyword options returning a batch function (or a ready
:class:`~biotag.pipeline.step.Step`)::

    @register_step("lowercase")
    def lowercase(*, keep_acronyms: bool = True):
        def process(docs): ...
        return process

    step = build_step("lowercase", {"keep_acronyms": False})

The options a factory accepts are read from its signature, so a config naming an
unknown step or option fails with an :class:`~biotag.errors.InputError` that lists what
is known, before any document is processed. The built-in steps
(:mod:`biotag.pipeline.builtin`) are registered when :mod:`biotag.pipeline` is
imported, so a user's registration of the same name comes later and wins.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from biotag.errors import InputError
from biotag.pipeline.step import Step

StepFactory = Callable[..., Any]

_FACTORIES: dict[str, StepFactory] = {}

# The option every step accepts, handled here rather than by the factories.
COMMON_OPTIONS = ("run_failed",)


def register_step(name: str) -> Callable[[StepFactory], StepFactory]:
    """Decorator registering a step factory under ``name`` (a later registration of the
    same name replaces the earlier one, so users can override a built-in step)."""

    def decorate(factory: StepFactory) -> StepFactory:
        _FACTORIES[name] = factory
        return factory

    return decorate


def known_steps() -> list[str]:
    return sorted(_FACTORIES)


def step_factory(name: str, *, where: str = "name", path: str | None = None) -> StepFactory:
    try:
        return _FACTORIES[name]
    except KeyError:
        raise InputError(
            f"unknown step {name!r}; known steps: {', '.join(known_steps())}", path=path, field=where
        ) from None


def factory_options(factory: StepFactory) -> list[str] | None:
    """The option names a factory accepts, or ``None`` when it takes any (``**options``)."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def build_step(name: str, options: dict[str, Any] | None = None, *, where: str = "steps", path: str | None = None) -> Step:
    """Build the registered step ``name`` with ``options`` (plus ``run_failed``)."""
    options = dict(options or {})
    factory = step_factory(name, where=f"{where}.name", path=path)
    run_failed = options.pop("run_failed", False)
    accepted = factory_options(factory)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        allowed = ", ".join(list(accepted) + list(COMMON_OPTIONS))
        raise InputError(f"step {name!r} has no option {', '.join(map(repr, unknown))}; its options: {allowed}", path=path, field=where)
    if not isinstance(run_failed, bool):
        raise InputError(f"must be true or false, got {run_failed!r}", path=path, field=f"{where}.run_failed")
    made = factory(**options)
    if isinstance(made, Step):
        step = made  # keeps a subclass and what it exposes (NerStep.tagger)
    elif callable(made):
        step = Step(name, made)
    else:
        raise TypeError(f"step factory {name!r} returned {type(made).__name__}, not a Step or a batch function")
    step.name, step.run_failed, step.factory, step.options = name, run_failed, name, options
    return step
