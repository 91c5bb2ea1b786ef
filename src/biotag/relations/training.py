"""Fine-tuning a :class:`RelationClassifier`, with the NER trainer's crash-safety.

``train_relations(config)`` writes into ``config.output_dir`` what
:mod:`biotag.training.trainer` writes for NER -- ``model/`` (best by devel micro-F1 over
the positive classes, replaced atomically), ``log.jsonl``, ``checkpoint/`` (model,
optimizer, scheduler, loop position and random states, via
:mod:`biotag.training.checkpoint`), ``config.json`` and ``summary.json`` -- and a run
continued with ``resume=True`` replays the same batches from its last checkpoint.

An epoch keeps every positive example and a fresh, seeded draw of
``negative_fraction`` of the negatives (ChemProt is 77 % and DDI 86 % negative, so a
fraction below 1 buys epochs cheaply); batches are formed from length-sorted pools so
that they pad little, then shuffled.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from biotag.errors import InputError
from biotag.json_config import JsonConfig
from biotag.relations.datasets import RelationTask, read_examples
from biotag.relations.examples import STYLES, RelationExample
from biotag.relations.metrics import RelationReport, score_labels
from biotag.relations.model import RelationClassifier
from biotag.training.checkpoint import CHECKPOINT_DIR, LoopState, remove_dir, replacing_dir
from biotag.training.run import LOG_FILE, MODEL_DIR, SUMMARY_FILE, CheckpointedRun, adamw, resolve_device, run_facts, run_training
from biotag.training.trainer import _command_line, seed_everything

log = logging.getLogger(__name__)

POOL_BATCHES = 50  # batches per length-sorted pool
UNLABELLED = -1  # the label id of a pair without a gold label (a distillation transfer set)


@dataclass
class RelationTrainConfig(JsonConfig):
    """Everything a relation training run depends on. ``dataset`` is a name of
    :mod:`biotag.relations.datasets` (chemprot, ddi, biored) or a corpus folder with
    relations. ``train_limit`` / ``devel_limit`` use a seeded random subset (for short
    comparison runs); ``window`` is sentences per candidate for document datasets."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("dataset", "output_dir")

    dataset: str
    output_dir: str
    encoder: str = "minilm-l6"
    style: str = "typed"
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    negative_fraction: float = 1.0
    train_limit: int | None = None
    devel_limit: int | None = None
    window: int = 1
    seed: int = 13
    patience: int = 0
    max_steps: int | None = None
    eval_every: int = 0
    checkpoint_every: int = 200
    eval_batch_size: int = 64
    threads: int | None = None
    device: str = "cpu"
    card: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InputError(f"unknown marker style {self.style!r}; expected one of {', '.join(STYLES)}", field="style")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size", "window"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"must be a positive integer, got {getattr(self, name)!r}", field=name)
        for name in ("patience", "eval_every", "checkpoint_every", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise InputError(f"must be a non-negative integer, got {getattr(self, name)!r}", field=name)
        for name in ("max_steps", "threads", "train_limit", "devel_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"must be a positive integer or null, got {value!r}", field=name)
        if not self.lr > 0:
            raise InputError(f"must be positive, got {self.lr!r}", field="lr")
        if not 0 < self.negative_fraction <= 1:
            raise InputError(f"must be in (0, 1], got {self.negative_fraction!r}", field="negative_fraction")
        for name in ("warmup_ratio", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"must be in [0, 1), got {getattr(self, name)!r}", field=name)
        self._require_device()


def train_relations(config: RelationTrainConfig, resume: bool = False, trainer: type | None = None) -> Path:
    """Train as ``config`` says (with ``trainer``, default :class:`RelationTrainer`); returns
    the best model's directory (see the module doc)."""
    return run_training(config, resume, trainer or RelationTrainer, threads=config.threads or min(2, os.cpu_count() or 1))


def _subset(examples: list[RelationExample], limit: int | None, seed: int) -> list[RelationExample]:
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:limit])
    return [examples[i] for i in keep]


def evaluate_model(model, examples: Sequence[RelationExample], batch_size: int = 64) -> tuple[RelationReport, list[str]]:
    """BLURB scores of any model with ``predict_logits`` and ``task``; and its predictions."""
    labels = model.task.all_labels
    predicted = [labels[i] for i in model.predict_logits(examples, batch_size=batch_size).argmax(-1)]
    gold = [e.label or model.task.negative for e in examples]
    return score_labels(gold, predicted, model.task.labels, model.task.negative), predicted


class RelationTrainer(CheckpointedRun):
    def __init__(self, config: RelationTrainConfig) -> None:
        self.config = c = config
        self.out = Path(c.output_dir)
        seed_everything(c.seed)
        task, train = read_examples(c.dataset, "train", window=c.window)
        _, devel = read_examples(c.dataset, "devel", window=c.window, task=task)
        self.task = task
        self.train_examples = _subset(train, c.train_limit, c.seed)
        self.devel = _subset(devel, c.devel_limit, c.seed + 1)
        if not self.train_examples or not self.devel:
            raise InputError(f"dataset {c.dataset!r} has no training or no devel examples", field="dataset")
        known = set(task.all_labels)
        unknown = sorted({e.label for e in self.train_examples if e.label not in known})
        if unknown:
            raise InputError(f"training labels {unknown} are not labels of task {task.name!r}", field="dataset")
        self.n_gold = len(self.train_examples)
        self.train_examples = self.train_examples + self._unlabelled_examples(task)
        self.model = self._build_model(task)
        self.model.to(resolve_device(c.device))
        self.rows = self.model.encoder.ids(self.train_examples)
        self.lengths = np.array([len(r) for r in self.rows])
        index = {label: i for i, label in enumerate(task.all_labels)}
        self.labels = np.array([index[e.label] if e.label is not None else UNLABELLED for e in self.train_examples], dtype=np.int64)
        self.batches_per_epoch = len(self._plan(0))
        self.total_steps = self.batches_per_epoch * c.epochs
        if c.max_steps:
            self.total_steps = min(self.total_steps, c.max_steps)
        # fused: on this CPU the unfused step costs more than the backward pass (CUDA has one too)
        self.optimizer = adamw(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay, fused=True)
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, round(c.warmup_ratio * self.total_steps), self.total_steps)
        self.state = LoopState()
        self.pairs_seen, self.since = 0, time.perf_counter()

    def _unlabelled_examples(self, task: RelationTask) -> list[RelationExample]:
        """Pairs without a gold label to train on besides the dataset's (none here; a
        distiller's teacher labels them)."""
        return []

    def _build_model(self, task: RelationTask) -> RelationClassifier:
        c = self.config
        return RelationClassifier.from_encoder(c.encoder, task, style=c.style, max_length=c.max_length, dropout=c.dropout)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        """The batch's training loss; ``indices`` are the rows of the training examples."""
        return F.cross_entropy(logits, labels)

    def _card_extra(self) -> dict[str, Any]:
        return {}

    def _label_counts(self, examples: Sequence[RelationExample]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in examples:
            counts[e.label] = counts.get(e.label, 0) + 1
        return dict(sorted(counts.items()))

    def _plan(self, epoch: int) -> list[np.ndarray]:
        c = self.config
        rng = np.random.default_rng([c.seed, epoch])
        negative = self.labels == 0
        keep = ~negative | (rng.random(len(self.labels)) < c.negative_fraction)
        chosen = rng.permutation(np.flatnonzero(keep))
        batches = []
        pool = c.batch_size * POOL_BATCHES
        for i in range(0, len(chosen), pool):
            part = chosen[i : i + pool]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches += [part[j : j + c.batch_size] for j in range(0, len(part), c.batch_size)]
        order = rng.permutation(len(batches))
        return [batches[k] for k in order]

    # -- run setup --------------------------------------------------------------------
    def start_fresh(self) -> None:
        for name in (LOG_FILE, SUMMARY_FILE):
            (self.out / name).unlink(missing_ok=True)
        remove_dir(self.out / CHECKPOINT_DIR)
        remove_dir(self.out / MODEL_DIR)
        self.config.save(self.out / "config.json")
        self._log_line(
            {
                "event": "data",
                "task": self.task.to_dict(),
                "train": self._label_counts(self.train_examples[: self.n_gold]),
                "unlabelled": len(self.train_examples) - self.n_gold,
                "devel": self._label_counts(self.devel),
                "batches_per_epoch": self.batches_per_epoch,
                "total_steps": self.total_steps,
                "truncated": int((self.lengths >= self.config.max_length).sum()),
            }
        )

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> Path:
        st, c = self.state, self.config
        with tqdm(total=self.total_steps, initial=st.step, desc="train", unit="step", disable=None) as self.bar:
            while not st.stopped:
                if st.epoch >= c.epochs:
                    st.stop_reason = "epochs"
                    break
                self._run_epoch()
        return self._finish()

    def _run_epoch(self) -> None:
        st, c = self.state, self.config
        batches = self._plan(st.epoch)
        self.model.train()
        while st.position < len(batches):
            self._step(batches[st.position])
            st.position += 1
            st.step += 1
            self.bar.update(1)
            if c.max_steps and st.step >= c.max_steps:
                st.stop_reason = "max_steps"
            if (c.eval_every and st.step % c.eval_every == 0) or st.stopped:
                self._evaluate()
            if st.stopped:
                return
            if c.checkpoint_every and st.step % c.checkpoint_every == 0 and st.position < len(batches):
                self._checkpoint()
        if st.last_eval_step != st.step:
            self._evaluate()
        st.epoch += 1
        st.position = 0
        if not st.stopped:
            self._checkpoint()

    def _step(self, indices: np.ndarray) -> None:
        batch = self.model.encoder.collate([self.rows[i] for i in indices])
        device = self.model.network.device
        ids, mask, labels = (torch.from_numpy(a).to(device) for a in (batch.input_ids, batch.attention_mask, self.labels[indices]))
        loss = self._loss(self.model(ids, mask), labels, indices)
        loss.backward()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        self.state.loss_sum += value
        self.state.loss_batches += 1
        self.pairs_seen += len(indices)
        self.bar.set_postfix(loss=f"{value:.4f}", refresh=False)

    def _evaluate(self) -> None:
        st, c = self.state, self.config
        elapsed = time.perf_counter() - self.since
        started = time.perf_counter()
        report, _ = evaluate_model(self.model, self.devel, c.eval_batch_size)
        eval_seconds = time.perf_counter() - started
        f1 = report.micro.f1
        if f1 > st.best_f1:
            st.best_f1, st.best_step, st.bad_evals = f1, st.step, 0
            self._save_best(report)
        else:
            st.bad_evals += 1
        if c.patience and st.bad_evals >= c.patience and not st.stopped:
            st.stop_reason = "early_stopping"
        self._log_line(
            {
                "event": "eval",
                "epoch": st.epoch,
                "step": st.step,
                "lr": self.scheduler.get_last_lr()[0],
                "loss": st.loss_sum / st.loss_batches if st.loss_batches else None,
                "devel": report.micro.to_dict(),
                "best_f1": st.best_f1,
                "best_step": st.best_step,
                "train_pairs_per_second": round(self.pairs_seen / elapsed, 1) if elapsed > 0 else None,
                "eval_pairs_per_second": round(len(self.devel) / eval_seconds, 1) if eval_seconds > 0 else None,
            }
        )
        st.last_eval_step = st.step
        st.loss_sum, st.loss_batches = 0.0, 0
        self.pairs_seen, self.since = 0, time.perf_counter()
        self.model.train()

    def _save_best(self, report: RelationReport) -> None:
        st = self.state
        card = {
            "data": {"dataset": self.config.dataset, "train": self.n_gold, "unlabelled": len(self.train_examples) - self.n_gold, "devel": len(self.devel)},
            "command": _command_line(),
            "metrics": {"devel_micro": report.micro.to_dict(), "step": st.step, "epoch": st.epoch},
            **run_facts(),
            "config": self.config.to_dict(),
            **self._card_extra(),
        }
        card.update(self.config.card)
        with replacing_dir(self.out / MODEL_DIR) as tmp:
            self.model.save_pretrained(tmp, card=card)
