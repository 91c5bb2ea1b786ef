"""Crash-safe directories and the training checkpoint.

A directory is replaced atomically: it is written under ``<name>.tmp``, the current
``<name>`` is renamed ``<name>.old``, the new one renamed into place and the old one
removed. A process killed at any point leaves either ``<name>`` or ``<name>.old``
complete, and :func:`existing_dir` finds whichever it is.

The checkpoint (``<out>/checkpoint/state.pt``) holds everything the rest of a run
depends on: model, optimizer and scheduler states, the trainer's loop state (a dataclass:
:class:`LoopState` for the fine-tuning trainers -- epoch, batch index, step, early
stopping; the epoch's batch plan is recomputed from ``(seed, epoch)``), the config and the
Python, NumPy and PyTorch random states (dropout draws from the latter).
"""

from __future__ import annotations

import json
import random
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, TypeVar

import numpy as np
import torch

from biotag.errors import InputError

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
# what state.json, the checkpoint's summary for people, shows of the loop state
READABLE_STATE = ("epoch", "position", "step", "best_f1", "best_step")


@contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``final`` when the block ends
    without an error."""
    tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def existing_dir(final: Path) -> Path | None:
    """``final``, or its ``.old`` copy when a replacement was cut between two renames."""
    old = final.with_name(final.name + ".old")
    if final.is_dir():
        return final
    return old if old.is_dir() else None


def remove_dir(final: Path) -> None:
    for path in (final, final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")):
        if path.exists():
            shutil.rmtree(path)


@dataclass
class LoopState:
    """Where the training loop is, and what early stopping and logging remember."""

    epoch: int = 0  # current epoch (0-based)
    position: int = 0  # batches of this epoch already consumed
    step: int = 0  # optimizer steps taken
    best_f1: float = -1.0
    best_step: int = -1
    bad_evals: int = 0  # evaluations since the last improvement
    last_eval_step: int = -1
    loss_sum: float = 0.0  # training loss since the last evaluation
    loss_batches: int = 0
    epoch_seconds: float = 0.0  # time spent in the current epoch (across restarts)
    stop_reason: str | None = None

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None


def rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


S = TypeVar("S")


def save_checkpoint(out: Path, *, model, optimizer, scheduler, state, config: dict, plan_seed: list[int] | None = None) -> Path:
    """Write ``<out>/checkpoint`` atomically; ``state`` is the trainer's loop-state dataclass
    (``plan_seed`` is stored for people reading the file; no trainer reads it back)."""
    final = out / CHECKPOINT_DIR
    with replacing_dir(final) as tmp:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": asdict(state),
                "rng": rng_states(),
                "config": config,
                **({"plan_seed": plan_seed} if plan_seed is not None else {}),
            },
            tmp / STATE_FILE,
        )
        # a readable summary for people; the trainer reads only state.pt
        summary = {k: v for k, v in asdict(state).items() if k in READABLE_STATE}
        (tmp / "state.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return final


def load_checkpoint(out: Path, state_type: type[S] = LoopState) -> dict[str, Any] | None:  # type: ignore[assignment]
    """The checkpoint's contents (its ``"state"`` a ``state_type``), or None when the run has none."""
    folder = existing_dir(out / CHECKPOINT_DIR)
    if folder is None:
        return None
    path = folder / STATE_FILE
    try:
        # our own file: it holds RNG states (tuples, NumPy arrays), not only tensors
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises assorted types for a damaged file
        raise InputError(f"cannot read the checkpoint: {error}", path=str(path)) from None
    data["state"] = state_type(**data["state"])
    return data
