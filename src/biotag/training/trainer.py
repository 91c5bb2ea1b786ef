"""Fine-tuning a :class:`TokenClassifier` with early stopping, checkpoints and resume.

``train(config)`` writes into ``config.output_dir``:

* ``model/``      the best model so far (by devel strict micro F1), replaced atomically;
* ``log.jsonl``   one ``{"event": "data", ...}`` line (corpus sizes, alignment counts),
                  then one ``{"event": "eval", ...}`` line per evaluation;
* ``checkpoint/`` everything needed to continue (see :mod:`.checkpoint`), replaced
                  atomically every ``checkpoint_every`` steps and at each epoch end,
                  removed when the run finishes;
* ``config.json`` and, once finished, ``summary.json``.

A run killed at any point and continued with ``resume=True`` replays the exact same
batches, dropout masks and updates from its last checkpoint, so it ends with the same
weights and scores as an uninterrupted run (on the same machine and thread count).
"""

from __future__ import annotations

import logging
import math
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.metrics import Report, score_spans
from biotag.models.token_classifier import TokenClassifier
from biotag.training.checkpoint import LoopState, replacing_dir
from biotag.training.config import TrainConfig
from biotag.training.data import (
    AlignmentStats,
    Example,
    collate_items,
    corpus_examples,
    epoch_batches,
    load_corpus,
    training_items,
)
from biotag.training.run import MODEL_DIR, CheckpointedRun, adamw, resolve_device, run_facts, run_training

log = logging.getLogger(__name__)


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train as ``config`` says; returns the directory of the best model.

    With ``resume`` a run continues from ``<output_dir>/checkpoint`` (a finished run
    just returns its model; one without a checkpoint starts over). Without it any
    earlier run in ``output_dir`` is replaced.
    """
    return run_training(config, resume, Trainer, threads=config.threads or os.cpu_count() or 1)


def _command_line() -> str:
    """How this process was started, for the model card."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "__main__.py":
        program = "python -m biotag.training"
    elif program in ("", "-c"):
        program = "python"
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_examples(model: TokenClassifier, examples: Sequence[Example], batch_size: int = 64) -> Report:
    """Strict span scores of the model on sentence examples; predicted types the
    example's corpus does not annotate are left out (nothing could confirm them)."""
    scores = model.predict_words([e.words for e in examples], batch_size=batch_size)
    types = model.schema.types
    gold = [(e.key, s.start, s.end, s.type) for e in examples for s in e.spans]
    pred = [
        (e.key, s.start, s.end, s.type)
        for e, sc in zip(examples, scores)
        for s, _ in model.decode(sc)
        if e.type_mask[types.index(s.type)]
    ]
    return score_spans(gold, pred)


class Trainer(CheckpointedRun):
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.out = Path(config.output_dir)
        seed_everything(config.seed)
        corpora = [load_corpus(n, config.train_split, config.devel_split, config.unify_types, config.types) for n in config.corpora]
        found = list(dict.fromkeys(t for c in corpora for t in c.types))
        self.schema = LabelSchema(tuple(config.types or found), config.scheme)
        self.stats = AlignmentStats()
        self.train_examples: list[Example] = []
        self.devel: list[Example] = []
        self.corpus_sizes: dict[str, dict[str, int]] = {}
        for i, corpus in enumerate(corpora):
            train = corpus_examples(corpus.train, i, corpus, self.schema, self.stats, config.negative_evidence, config.uncertain_inside)
            devel = corpus_examples(corpus.devel, i, corpus, self.schema, AlignmentStats())
            self.train_examples += train
            self.devel += devel
            self.corpus_sizes[corpus.name] = {"train_sentences": len(train), "devel_sentences": len(devel)}
            self.corpus_sizes[corpus.name]["types"] = [t for t in self.schema.types if t in corpus.types]
            if not self.corpus_sizes[corpus.name]["types"]:  # it would train on nothing but "O"
                raise InputError(
                    f"corpus {corpus.name} annotates {sorted(corpus.types)}, none of the model's types {list(self.schema.types)}"
                    + ("" if config.unify_types else " (its labels are not mapped to biotag's types: set unify_types)"),
                    field="corpora",
                )
        for split, examples in (("train", self.train_examples), ("devel", self.devel)):
            if not examples:
                raise InputError(f"the corpora have no {split} sentences", field="corpora")

        from biotag.features import feature_extractor

        features = feature_extractor(config.dictionary_features, config.shape_features)
        self.model = TokenClassifier.from_encoder(
            config.encoder, self.schema, max_length=config.max_length, dropout=config.dropout,
            features=features, decoder=config.decoder, feature_dropout=config.feature_dropout,
        )
        self.model.to(resolve_device(config.device))
        self.items = training_items(self.train_examples, self.model.encoder, self.schema, self.stats, features)
        self.item_corpus = np.array([it.corpus for it in self.items], dtype=np.int64)
        self.item_length = np.array([len(it.window) for it in self.items], dtype=np.int64)
        self.batches_per_epoch = len(self._plan(0))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.grad_accum)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)

        # fused: on this CPU the unfused step costs more than the backward pass
        self.optimizer = adamw(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, round(config.warmup_ratio * self.total_steps), self.total_steps
        )
        self.state = LoopState()
        self._reset_throughput()

    # -- run setup --------------------------------------------------------------------
    def start_fresh(self) -> None:
        self._clear_outputs()
        data = {
            "event": "data",
            "corpora": self.corpus_sizes,
            "types": list(self.schema.types),
            "scheme": self.schema.scheme,
            "train_windows": len(self.items),
            "batches_per_epoch": self.batches_per_epoch,
            "total_steps": self.total_steps,
            "alignment": self.stats.to_dict(),
        }
        self._log_line(data)
        if self.stats.extended or self.stats.cross_sentence or self.stats.no_words:
            log.warning("entity alignment onto words: %s", self.stats.to_dict())

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> Path:
        st = self.state
        with tqdm(total=self.total_steps, initial=st.step, desc="train", unit="step", disable=None) as bar:
            self.bar = bar
            while not st.stopped:
                if st.epoch >= self.config.epochs:
                    st.stop_reason = "epochs"
                    break
                self._run_epoch()
        return self._finish()

    def _plan(self, epoch: int) -> list[np.ndarray]:
        c = self.config
        return epoch_batches(self.item_corpus, self.item_length, c.batch_size, c.temperature, c.seed, epoch)

    def _run_epoch(self) -> None:
        st, c = self.state, self.config
        batches = self._plan(st.epoch)
        started, seconds_before = time.perf_counter(), st.epoch_seconds
        self.model.train()
        while st.position < len(batches):
            group = batches[st.position : st.position + c.grad_accum]
            for indices in group:
                self._backward(indices, scale=1.0 / len(group))
            self._optimizer_step()
            st.position += len(group)
            st.step += 1
            st.epoch_seconds = seconds_before + time.perf_counter() - started
            self.bar.update(1)
            if c.max_steps and st.step >= c.max_steps:
                st.stop_reason = "max_steps"
            if (c.eval_every and st.step % c.eval_every == 0) or st.stopped:
                self._evaluate(len(batches))
            if st.stopped:
                return
            if c.checkpoint_every and st.step % c.checkpoint_every == 0 and st.position < len(batches):
                self._checkpoint()
        if st.last_eval_step != st.step:
            self._evaluate(len(batches))
        st.epoch += 1
        st.position = 0
        st.epoch_seconds = 0.0
        if not st.stopped:
            self._checkpoint()

    def _backward(self, indices: np.ndarray, scale: float) -> None:
        batch = collate_items([self.items[i] for i in indices], self.model.encoder)
        scores = self.model(batch.subwords)
        labels, type_mask, word_rows = (
            torch.from_numpy(a).to(scores.device) for a in (batch.labels, batch.type_mask, batch.subwords.word_rows)
        )
        loss = self.model.loss(scores, labels, type_mask, word_rows)
        (loss * scale).backward()
        value = float(loss.detach())
        self.state.loss_sum += value
        self.state.loss_batches += 1
        self.tokens += batch.subwords.n_tokens
        self.bar.set_postfix(loss=f"{value:.4f}", refresh=False)

    def _optimizer_step(self) -> None:
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    # -- evaluation, saving, logging ------------------------------------------------
    def _evaluate(self, batches_in_epoch: int) -> None:
        st, c = self.state, self.config
        report = evaluate_examples(self.model, self.devel, c.eval_batch_size)
        f1 = report.micro.f1
        self._record_score(f1, report)
        elapsed = time.perf_counter() - self.since
        done = max(st.position, 1) / batches_in_epoch
        self._log_line(
            {
                "event": "eval",
                "epoch": st.epoch,
                "epoch_progress": round(st.position / batches_in_epoch, 4),
                "step": st.step,
                "lr": self.scheduler.get_last_lr()[0],
                "loss": st.loss_sum / st.loss_batches if st.loss_batches else None,
                "devel": {"precision": report.micro.precision, "recall": report.micro.recall, "f1": f1},
                "best_f1": st.best_f1,
                "best_step": st.best_step,
                "seconds_per_epoch": round(st.epoch_seconds / done, 2),
                "tokens_per_second": round(self.tokens / elapsed, 1) if elapsed > 0 else None,
            }
        )
        st.last_eval_step = st.step
        st.loss_sum, st.loss_batches = 0.0, 0
        self._reset_throughput()
        self.model.train()

    def _reset_throughput(self) -> None:
        self.tokens, self.since = 0, time.perf_counter()

    def _save_best(self, report: Report) -> None:
        with replacing_dir(self.out / MODEL_DIR) as tmp:
            self.model.save_pretrained(tmp, card=self._card(report))

    def _card(self, report: Report) -> dict:
        st = self.state
        card = {
            "data": {name: sizes for name, sizes in self.corpus_sizes.items()},
            "command": _command_line(),
            "metrics": {
                "devel_precision": round(report.micro.precision, 4),
                "devel_recall": round(report.micro.recall, 4),
                "devel_f1": round(report.micro.f1, 4),
                "step": st.step,
                "epoch": st.epoch,
            },
            **run_facts(),
            "config": self.config.to_dict(),
            "alignment": self.stats.to_dict(),
        }
        card.update(self.config.card)
        return card

    def _summary_extra(self) -> dict:
        return {"alignment": self.stats.to_dict()}
