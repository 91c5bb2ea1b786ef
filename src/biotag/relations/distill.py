"""Distilling a relation classifier into a smaller one (``biotag distill`` with a relation
teacher).

The student learns the gold label of each training pair and the teacher's class
distribution over it: ``w_hard·CE(student, gold) + w_soft·T²·KL(teacher_T || student_T)``,
with the weights of :mod:`biotag.distill.schedule` (FastBioNER's dynamic weighting by
default). The teacher scores every training pair once, before the first step; its logits
are kept in ``<output_dir>/teacher-logits.npz`` beside a fingerprint of the teacher files
and the examples, so a resumed run does not score them again. The teacher may be an ONNX
export (``biotag export``), which scores pairs several times faster.

Unlabelled pairs (a transfer set, :mod:`biotag.relations.transfer`): ``soft_text`` files
are tagged by an NER model (``soft_ner``, default the bundled one) and their candidate pairs,
at most ``soft_limit``, join the training pairs with no gold label: the teacher scores them
with the rest and the student learns them through the soft term only.

The student is a local encoder with a new head (``encoder``; any tokenizer, since
relation distillation compares one distribution per pair, not per sub-word) or, with
``student_layers``, the teacher itself with only those layers kept (its PyTorch weights
are then needed). ``student_ffn`` then removes that share of each layer's FFN neurons and
``student_width`` cuts the hidden size by weight subcloning
(:mod:`biotag.compress.structured`, both ranked by weight magnitude). The student
keeps the teacher's task and, by default, its marker style.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from biotag.distill.losses import grouped_kl
from biotag.distill.schedule import SHAPES, WEIGHTINGS, loss_weights
from biotag.distill.soft_labels import teacher_fingerprint
from biotag.errors import InputError
from biotag.relations.datasets import RelationTask
from biotag.relations.model import RelationClassifier, read_relation_metadata
from biotag.relations.training import RelationTrainConfig, RelationTrainer, train_relations

log = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher-logits.npz"


@dataclass
class RelationDistillConfig(RelationTrainConfig):
    """A :class:`RelationTrainConfig` (data, schedule, checkpoints) plus the teacher, the
    student's shape and the loss weights (named as in :class:`biotag.distill.DistillConfig`).
    ``style`` left unset takes the teacher's; a teacher-cut student must keep it."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("teacher", "dataset", "output_dir")

    teacher: str = ""
    encoder: str | None = None  # type: ignore[assignment]  # the student encoder, or student_layers
    style: str | None = None  # type: ignore[assignment]
    student_layers: list[int] | None = None
    student_width: int | None = None
    student_ffn: float = 0.0  # share of each student layer's FFN neurons to remove
    kd_temperature: float = 2.0
    weighting: str = "dynamic"
    hard_weight: float = 1.0
    soft_weight: float = 1.0
    soft_floor: float = 0.1
    schedule: str = "linear"
    teacher_batch_size: int = 64
    soft_text: list[str] = field(default_factory=list)
    soft_limit: int | None = None  # unlabelled pairs
    soft_ner: str | None = None  # the NER model that finds them (None: the bundled model)
    augment_copies: int = 0  # perturbed, unlabelled copies of each gold pair (relations.augment)
    augment_rate: float = 0.15  # share of a copy's non-argument words deleted or replaced

    def __post_init__(self) -> None:
        style, self.style = self.style, self.style or "typed"
        super().__post_init__()
        self.style = style
        if not self.teacher:
            raise InputError("a teacher relation model directory is needed", field="teacher")
        if (self.encoder is None) == (self.student_layers is None):
            raise InputError("give either a student encoder or the teacher layers to keep (student_layers)", field="encoder")
        if self.student_layers is not None:
            layers = self.student_layers
            if not layers or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers) or len(set(layers)) != len(layers):
                raise InputError(f"must be distinct layer numbers, got {layers!r}", field="student_layers")
            self.student_layers = sorted(layers)
        self._require_int("student_width", minimum=1, optional=True)
        self._require_int("teacher_batch_size", minimum=1)
        self._require_in("student_ffn", "[0, 1)")
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"must be one of {WEIGHTINGS}, got {self.weighting!r}", field="weighting")
        if self.schedule not in SHAPES:
            raise InputError(f"must be one of {SHAPES}, got {self.schedule!r}", field="schedule")
        self._require_in("kd_temperature", "(0, inf)")
        for name in ("hard_weight", "soft_weight"):
            self._require_in(name, "[0, inf)")
        self._require_in("soft_floor", "[0, 1]")
        if isinstance(self.soft_text, str):
            self.soft_text = [self.soft_text]
        self.soft_text = [str(p) for p in self.soft_text]
        self._require_int("soft_limit", minimum=1, optional=True)
        self._require_int("augment_copies", minimum=0)
        self._require_in("augment_rate", "(0, 1]")
        for name in ("soft_text", "augment_copies"):
            if getattr(self, name) and self.weighting == "fixed" and not self.soft_weight:
                raise InputError("unlabelled pairs teach only through soft labels: a soft weight of 0 leaves them nothing", field=name)


def distill_relations(config: RelationDistillConfig, resume: bool = False) -> Path:
    """Run the distillation ``config`` describes; returns the best student's directory."""
    return train_relations(config, resume, RelationDistillTrainer)


class RelationDistillTrainer(RelationTrainer):
    def __init__(self, config: RelationDistillConfig) -> None:
        from biotag.relations.onnx import load_relation_model

        teacher_dir = Path(config.teacher)
        read_relation_metadata(teacher_dir)
        self.teacher_dir = teacher_dir
        self.teacher = load_relation_model(teacher_dir, threads=config.threads)
        if config.style is not None and config.student_layers is not None and config.style != self.teacher.style:
            raise InputError(f"a student cut from the teacher keeps its marker style {self.teacher.style!r}", field="style")
        self.style = config.style or self.teacher.style
        super().__init__(config)
        if self.teacher.task.all_labels != self.task.all_labels:
            raise InputError(
                f"the teacher predicts {list(self.teacher.task.all_labels)}, dataset {config.dataset!r} has {list(self.task.all_labels)}",
                field="dataset",
            )
        self.teacher_logits = torch.from_numpy(self._teacher_logits())
        self.teacher = None  # scored once; free its memory for training
        self.since = time.perf_counter()  # training speed, not counting the teacher's scoring

    def _unlabelled_examples(self, task: RelationTask) -> list:
        from biotag.relations.augment import augmented_examples
        from biotag.relations.transfer import held_out, transfer_examples

        c = self.config
        if not (c.augment_copies or c.soft_text):
            return []
        exclude = held_out(c.dataset, task, window=c.window)  # read once for both sources
        out = []
        if c.augment_copies:
            out += augmented_examples(self.train_examples, c.augment_copies, rate=c.augment_rate, seed=c.seed, exclude_texts=exclude[1])
            log.info("%d perturbed copies of the %d gold pairs", len(out), len(self.train_examples))
        if c.soft_text:
            out += transfer_examples(
                c.soft_text, c.dataset, task, ner_model=c.soft_ner, window=c.window, limit=c.soft_limit, threads=c.threads, exclude=exclude
            )
        return out

    # -- the student ------------------------------------------------------------------------
    def _build_model(self, task: RelationTask) -> RelationClassifier:
        from biotag.compress.structured import cut_ffn, cut_width, keep_layers

        c = self.config
        if c.student_layers is None:
            student = RelationClassifier.from_encoder(c.encoder, task, style=self.style, max_length=c.max_length, dropout=c.dropout)
        else:
            if not (self.teacher_dir / "model.safetensors").is_file():
                raise InputError("cutting layers from the teacher needs its PyTorch weights (model.safetensors)", path=str(self.teacher_dir), field="student_layers")
            student = RelationClassifier.from_pretrained(self.teacher_dir)
            layers = student.network.config.num_hidden_layers
            if max(c.student_layers) >= layers:
                raise InputError(f"the teacher has layers 0..{layers - 1}, not {c.student_layers}", field="student_layers")
            keep_layers(student.network, c.student_layers)
            student.encoder.max_length = c.max_length
        if c.student_ffn:
            cut_ffn(student.network, c.student_ffn)
        if c.student_width is not None:
            cut_width(student.network, c.student_width)
        student.encoder_name = c.encoder or f"{self.teacher_dir} layers {c.student_layers}"
        return student

    # -- the teacher's outputs ----------------------------------------------------------------
    def _teacher_logits(self) -> np.ndarray:
        """Logits ``[n_train, n_labels]`` of the teacher, from the cache when it fits."""
        path = self.out / TEACHER_LOGITS
        key = self._cache_key()
        if path.is_file():
            with np.load(path) as cached:
                if str(cached["key"]) == key:
                    log.info("teacher logits from %s", path)
                    return cached["logits"]
        log.info("scoring %d training pairs with the teacher %s", len(self.train_examples), self.teacher_dir)
        logits = self.teacher.predict_logits(self.train_examples, batch_size=self.config.teacher_batch_size).astype(np.float32)
        self.out.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, logits=logits, key=np.array(key))
        partial.replace(path)
        return logits

    def _cache_key(self) -> str:
        digest = hashlib.blake2b(digest_size=8)
        digest.update(teacher_fingerprint(self.teacher_dir).encode())
        for example in self.train_examples:
            digest.update(json.dumps(self.teacher.encoder.render(example)).encode())
        return digest.hexdigest()

    # -- the loss -----------------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        c = self.config
        weights = loss_weights(
            self.state.step / max(self.total_steps, 1),
            weighting=c.weighting, hard=c.hard_weight, soft=c.soft_weight, floor=c.soft_floor, shape=c.schedule,
        )
        teacher = self.teacher_logits[torch.from_numpy(indices)].to(logits.device)
        soft = grouped_kl(logits[:, None, :], teacher[:, None, :], c.kd_temperature)
        gold = labels >= 0  # unlabelled pairs learn from the teacher only
        hard = F.cross_entropy(logits[gold], labels[gold]) if bool(gold.any()) else logits.sum() * 0.0
        return weights.hard * hard + weights.soft * soft

    def _card_extra(self) -> dict[str, Any]:
        c = self.config
        return {
            "distillation": {
                "teacher": str(self.teacher_dir),
                "student": c.encoder or {"teacher_layers": c.student_layers},
                "student_width": c.student_width,
                "student_ffn": c.student_ffn,
                "weighting": c.weighting,
                "kd_temperature": c.kd_temperature,
                "unlabelled_pairs": len(self.train_examples) - self.n_gold,
                "augment_copies": c.augment_copies,
                "soft_text": c.soft_text,
                "parameters": sum(p.numel() for p in self.model.parameters()),
            }
        }
