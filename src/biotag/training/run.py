"""What every biotag trainer does with its output folder, written once.

A run folder holds the trainer's result directory (``model/``, the best model so far;
``encoder/`` for pretraining), ``log.jsonl`` (one record per evaluation),
``checkpoint/`` (while the run is unfinished), ``config.json`` and ``summary.json`` (once it
is finished, or stopped by a time budget with ``"finished": false``). :func:`run_training` is
the resume protocol (a finished run returns its result, a checkpoint is refused when its
config differs in a setting that changes results) and :class:`CheckpointedRun` the trainer
side (checkpoint, log, restore, early stopping, finish). The NER, relation and pretraining
trainers share both, so a crash-safety fix lands in one place."""

from __future__ import annotations

import json
import logging
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import torch

from biotag.errors import InputError
from biotag.json_config import JsonConfig
from biotag.training.checkpoint import (
    CHECKPOINT_DIR,
    LoopState,
    load_checkpoint,
    remove_dir,
    restore_rng_states,
    save_checkpoint,
)

log = logging.getLogger(__name__)

MODEL_DIR = "model"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"


def run_training(config: JsonConfig, resume: bool, trainer_class: type["CheckpointedRun"], *, threads: int) -> Path:
    """Start or (with ``resume``) continue the run of ``config`` in ``config.output_dir``
    with ``trainer_class(config)``; returns its result directory (``trainer_class.RESULT_DIR``)."""
    out = Path(config.output_dir)  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    result = out / trainer_class.RESULT_DIR
    if resume and is_finished(out) and result.is_dir():
        log.info("%s already finished; nothing to resume", out)
        return result
    torch.set_num_threads(threads)
    checkpoint = load_checkpoint(out, trainer_class.STATE_TYPE) if resume else None
    if checkpoint is not None:
        changed = type(config).from_dict(checkpoint["config"]).differences(config)
        if changed:
            raise InputError(
                f"the config differs from the checkpointed run's in {', '.join(changed)}; "
                "resume with the same config or start a new run",
                path=str(out / CHECKPOINT_DIR),
                field=changed[0],
            )
    elif resume:
        log.warning("no checkpoint in %s: starting from scratch", out)
    trainer = trainer_class(config)
    if checkpoint is None:
        trainer.start_fresh()
    else:
        trainer.restore(checkpoint)
    return trainer.run()


def is_finished(out: Path) -> bool:
    """Whether the run in ``out`` has ended for good: it wrote its summary, and the summary
    does not say ``"finished": false`` (a run stopped by a time budget, to be resumed)."""
    path = out / SUMMARY_FILE
    if not path.is_file():
        return False
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:  # cut short by a kill: the run did not finish
        return False
    return not isinstance(summary, dict) or summary.get("finished", True) is not False


def adamw(parameters, *, lr: float, weight_decay: float, **options: Any) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases and norms)."""
    params = list(parameters)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, **options)


def run_facts() -> dict[str, str]:
    """When and on what a model was trained, for its card."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
    }


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``/``cuda:N``, or ``auto`` (a GPU when torch sees one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for but torch sees no GPU here (use cpu or auto)", field="device")
    if name.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # the encoders' float32 matrices, ~3x faster
    return torch.device(name)


# the loop-state fields that say where a resumed run starts, and their names in the log
_WHERE = (("epoch", "epoch"), ("position", "batch"), ("step", "step"))


class CheckpointedRun:
    """Trainer mixin. Expects ``out`` (the run folder), ``config`` (a JsonConfig with a
    ``seed``), ``model``, ``optimizer``, ``scheduler`` and ``state`` (a ``STATE_TYPE``
    dataclass with a ``step``), and methods ``start_fresh()`` and ``run()``."""

    # the folder run_training returns, and the dataclass the checkpoint's loop state is
    RESULT_DIR: ClassVar[str] = MODEL_DIR
    STATE_TYPE: ClassVar[type] = LoopState

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.state = checkpoint["state"]
        restore_rng_states(checkpoint["rng"])
        self._truncate_log(self.state.step)
        where = [f"{label} {getattr(self.state, name)}" for name, label in _WHERE if hasattr(self.state, name)]
        log.info("resuming at %s", ", ".join(where))

    def _clear_outputs(self) -> None:
        """Remove what an earlier run left in the folder, and write this run's config."""
        self.out.mkdir(parents=True, exist_ok=True)
        for name in (LOG_FILE, SUMMARY_FILE):
            (self.out / name).unlink(missing_ok=True)
        remove_dir(self.out / CHECKPOINT_DIR)
        remove_dir(self.out / self.RESULT_DIR)
        self.config.save(self.out / "config.json")

    def _truncate_log(self, step: int) -> None:
        """Drop log lines of evaluations the checkpoint does not know about: they will be
        replayed (and a line cut short by the kill goes too)."""
        path = self.out / LOG_FILE
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", -1) <= step:
                kept.append(line + "\n")
        path.write_text("".join(kept), encoding="utf-8")

    def _checkpoint(self) -> None:
        save_checkpoint(
            self.out,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            state=self.state,
            config=self.config.to_dict(),
        )

    def _log_line(self, record: dict) -> None:
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _record_score(self, f1: float, report: Any) -> None:
        """Early-stopping bookkeeping after an evaluation: keep the model when ``f1`` beats
        the best so far (``_save_best(report)``), else count one more evaluation without
        improvement and stop after ``config.patience`` of them."""
        st = self.state
        if f1 > st.best_f1:
            st.best_f1, st.best_step, st.bad_evals = f1, st.step, 0
            self._save_best(report)
        else:
            st.bad_evals += 1
        if self.config.patience and st.bad_evals >= self.config.patience and not st.stopped:
            st.stop_reason = "early_stopping"

    def _save_best(self, report: Any) -> None:
        raise NotImplementedError

    def _summary_extra(self) -> dict[str, Any]:
        """More fields for summary.json (a trainer's own statistics)."""
        return {}

    def _finish(self) -> Path:
        st = self.state
        summary = {
            "best_f1": st.best_f1,
            "best_step": st.best_step,
            "steps": st.step,
            "epochs": st.epoch,
            "stop_reason": st.stop_reason,
            "model": str(self.out / MODEL_DIR),
            **self._summary_extra(),
        }
        (self.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        remove_dir(self.out / CHECKPOINT_DIR)
        log.info("finished (%s): best devel F1 %.4f at step %d", st.stop_reason, st.best_f1, st.best_step)
        return self.out / MODEL_DIR

