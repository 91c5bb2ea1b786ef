"""What a distillation run records about itself: the model card's ``distillation`` section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from biotag.distill.config import DistillConfig

if TYPE_CHECKING:
    from biotag.distill.trainer import DistillTrainer


def distillation_summary(trainer: DistillTrainer) -> dict:
    """What the model card and the data line of log.jsonl record about a distillation run."""
    c = trainer.config
    teacher_metrics = trainer.teacher.card.get("metrics") or {}
    summary = {
        "teacher": c.teacher,
        "soft_labels": (
            f"mean of {len(trainer.teachers.models)} teachers' word distributions" if len(trainer.teachers.models) > 1 else "the teacher's word distribution"
        ) + " (CRF marginals for a CRF teacher, else the softmax)" + (
            f"; for {sorted(set(trainer.teachers.schema.types) - set(trainer.teachers.primary_types))}, the per-type distributions "
            f"of the type teachers {c.type_teachers} ({c.type_mode} mode)" if c.type_teachers else ""
        ),
        "teacher_encoder": trainer.teacher.encoder_name,
        "unify_types": trainer.unify_types,
        "teacher_devel_f1": teacher_metrics.get("devel_f1"),
        "student": student_description(c, teacher="teacher"),
        "losses": {
            "hard": "gold labels (the model's loss, partial labels where a corpus does not annotate a type)",
            "soft": None if not trainer.soft_labels else (
                "cross-entropy of the student's CRF against the teacher's word distributions (pairs as products)"
                if trainer.soft_loss == "crf" else f"KL of the softmaxes at temperature {c.kd_temperature}"
            ),
            "hidden": f"MSE, layer pairs {trainer.pairs}" if c.hidden_weight else None,
            "attention": f"MSE of head-averaged attention, layer pairs {trainer.pairs}" if c.attention_weight else None,
        },
        "weighting": (
            {"kind": "dynamic", "soft": f"{c.soft_floor} + (1 - {c.soft_floor}) * d(step / total), d {c.schedule}", "hard": "1 - soft"}
            if c.weighting == "dynamic"
            else {"kind": "fixed", "hard": c.hard_weight, "soft": c.soft_weight}
        ),
        "hidden_weight": c.hidden_weight,
        "attention_weight": c.attention_weight,
        "teacher_negative_evidence": None if not c.teacher_negative_evidence else {
            "rules": c.teacher_negative_evidence, "threshold": c.teacher_evidence_threshold,
            "agreement": c.teacher_evidence_agreement, "dictionary": c.teacher_evidence_dictionary,
            "words_overruled": int(trainer.evidence_counts[0]), "words_seen": int(trainer.evidence_counts[1]),
        },
        "soft_text": {"files": c.soft_text, "sentences": len(trainer.soft_examples), "windows": len(trainer.soft_items), "ratio": c.soft_ratio},
        "teacher_cache": None if trainer.cache is None else {"format": "fp16 log-probabilities" if not c.soft_top_k else f"top-{c.soft_top_k} fp16", "sentences": len(trainer.cache)},
    }
    if trainer.pruner is not None:
        summary["pruning"] = {
            "method": "gradual magnitude (Zhu & Gupta cubic schedule), per encoder Linear matrix",
            "target": c.prune_sparsity, "steps": [trainer.pruner.start, trainer.pruner.end], "every": trainer.pruner.every,
            "sparsity": round(trainer.pruner.measured(), 4),
        }
    return summary


def student_description(config: DistillConfig, teacher: str | None = None) -> str:
    """What a student started from: ``teacher layers [0, 2, 4], hidden size 256, FFN -50%``
    (``teacher`` names the teacher; by default its directory)."""
    start = config.encoder or f"{teacher or config.teacher_dirs[0]} layers {config.student_layers}"
    width = f", hidden size {config.student_width}" if config.student_width else ""
    return start + width + (f", FFN -{config.student_ffn:.0%}" if config.student_ffn else "")
