"""What every biotag trainer does with its output folder, written once.

A run folder holds ``model/`` (the best model so far), ``log.jsonl`` (one record per
evaluation), ``checkpoint/`` (while the run is unfinished) and ``summary.json`` (once it
is). :func:`run_training` is the resume protocol (a finished run returns its model, a
checkpoint is refused when its config differs in a setting that changes results) and
:class:`CheckpointedRun` the trainer side (checkpoint, log, restore, finish). The NER and
relation trainers share both, so a crash-safety fix lands in one place."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from biotag.errors import InputError
from biotag.json_config import JsonConfig
from biotag.training.checkpoint import (
    CHECKPOINT_DIR,
    load_checkpoint,
    remove_dir,
    restore_rng_states,
    save_checkpoint,
)

log = logging.getLogger(__name__)

MODEL_DIR = "model"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"


def run_training(config: JsonConfig, resume: bool, make_trainer: Callable[[Any], "CheckpointedRun"], *, threads: int) -> Path:
    """Start or (with ``resume``) continue the run of ``config`` in ``config.output_dir``
    with the trainer ``make_trainer(config)`` builds; returns the best model's directory."""
    out = Path(config.output_dir)  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / SUMMARY_FILE).is_file() and (out / MODEL_DIR).is_dir():
        log.info("%s already finished; nothing to resume", out)
        return out / MODEL_DIR
    torch.set_num_threads(threads)
    checkpoint = load_checkpoint(out) if resume else None
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
    trainer = make_trainer(config)
    if checkpoint is None:
        trainer.start_fresh()
    else:
        trainer.restore(checkpoint)
    return trainer.run()


class CheckpointedRun:
    """Trainer mixin. Expects ``out`` (the run folder), ``config`` (a JsonConfig with a
    ``seed``), ``model``, ``optimizer``, ``scheduler`` and ``state`` (a LoopState)."""

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.state = checkpoint["state"]
        restore_rng_states(checkpoint["rng"])
        self._truncate_log(self.state.step)
        log.info("resuming at epoch %d, batch %d, step %d", self.state.epoch, self.state.position, self.state.step)

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
            plan_seed=[self.config.seed, self.state.epoch],
        )

    def _log_line(self, record: dict) -> None:
        with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

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

