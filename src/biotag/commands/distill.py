"""``biotag distill``: a trained teacher model directory -> a smaller student."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from biotag.commands import DEVICE_HELP
from biotag.errors import BiotagError, InputError


def parse_layers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"takes layer numbers separated by commas, got {text!r}", field="student_layers") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def distill(
        teacher: Optional[List[Path]] = typer.Option(
            None, "--teacher", "-t", help="Trained biotag model directory to learn from; repeat for an ensemble (soft labels averaged)."
        ),
        type_teacher: Optional[List[Path]] = typer.Option(
            None, "--type-teacher", help="Model directory that teaches the types it predicts (e.g. a single-corpus model); repeat."
        ),
        type_mode: Optional[str] = typer.Option(None, help="How type teachers share a type: corpus (a corpus' own teacher on its sentences; default) or mean."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (the student goes to OUTPUT/model)."),
        corpus: Optional[List[str]] = typer.Option(None, "--corpus", "-c", help="Gold corpus name or path; repeat for several."),
        student: Optional[str] = typer.Option(None, "--student", help="Student encoder directory or short name (minilm-l3...)."),
        student_layers: Optional[str] = typer.Option(None, help="Instead of --student: the teacher's layers to keep, e.g. 0,2,4."),
        student_width: Optional[int] = typer.Option(None, help="Cut the student's hidden size to this (a multiple of the head size; weight subcloning)."),
        student_ffn: Optional[float] = typer.Option(None, help="Share of each student layer's FFN neurons to remove."),
        config: Optional[Path] = typer.Option(None, help="DistillConfig JSON; command-line options override it."),
        unify_types: Optional[bool] = typer.Option(None, "--unify-types/--corpus-types", help="Map corpus labels to unified types (default: as the teacher)."),
        soft_text: Optional[List[Path]] = typer.Option(
            None, "--soft-text", help="Unlabelled text (.jsonl or .txt) the teacher labels; repeat. A relation teacher labels the NER model's candidate pairs in it."
        ),
        soft_limit: Optional[int] = typer.Option(None, help="Read at most this many --soft-text documents (relations: unlabelled pairs)."),
        soft_ner: Optional[Path] = typer.Option(None, help="Relations: the NER model that finds candidate pairs in --soft-text (default: the bundled model)."),
        augment_copies: Optional[int] = typer.Option(None, help="Relations: perturbed, unlabelled copies of each gold pair for the teacher to label."),
        soft_ratio: Optional[float] = typer.Option(None, help="Unlabelled-text batches per gold batch."),
        soft_top_k: Optional[int] = typer.Option(None, help="Cache the teacher's top-k probabilities (0: its fp16 logits)."),
        soft_cache: Optional[Path] = typer.Option(None, help="Teacher-output cache folder (share it between runs of one teacher)."),
        weighting: Optional[str] = typer.Option(None, help="dynamic (soft weight decays, hard rises) or fixed."),
        schedule: Optional[str] = typer.Option(None, help="Dynamic weighting curve: linear or cosine."),
        soft_floor: Optional[float] = typer.Option(None, help="Dynamic weighting: the soft weight at the end."),
        hard_weight: Optional[float] = typer.Option(None, help="Fixed weighting: weight of the gold-label loss."),
        soft_weight: Optional[float] = typer.Option(None, help="Fixed weighting: weight of the soft-label KL (0: plain fine-tuning)."),
        kd_temperature: Optional[float] = typer.Option(None, help="Softmax temperature of the soft-label KL."),
        hidden_weight: Optional[float] = typer.Option(None, help="Weight of hidden-state transfer (0: off)."),
        attention_weight: Optional[float] = typer.Option(None, help="Weight of attention transfer (0: off)."),
        prune_sparsity: Optional[float] = typer.Option(None, help="Gradual magnitude pruning of the encoder to this sparsity (0: off)."),
        epochs: Optional[int] = typer.Option(None),
        lr: Optional[float] = typer.Option(None),
        batch_size: Optional[int] = typer.Option(None),
        max_length: Optional[int] = typer.Option(None, help="Sub-words per student window."),
        max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
        eval_every: Optional[int] = typer.Option(None, help="Evaluate every N steps (0: each epoch end)."),
        checkpoint_every: Optional[int] = typer.Option(None),
        seed: Optional[int] = typer.Option(None),
        threads: Optional[int] = typer.Option(None),
        device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    ) -> None:
        """Distil a trained model into a smaller student (soft labels, dynamic loss weights,
        unlabelled text, optional hidden-state/attention transfer and gradual pruning)."""
        from biotag.cli import _fail
        from biotag.distill import DistillConfig, distill as run

        options = {
            "teacher": (str(teacher[0]) if len(teacher) == 1 else [str(t) for t in teacher]) if teacher else None, "output_dir": output, "corpora": list(corpus) if corpus else None, "encoder": student, "unify_types": unify_types,
            "soft_limit": soft_limit, "soft_ratio": soft_ratio, "soft_top_k": soft_top_k, "soft_cache": soft_cache,
            "weighting": weighting, "schedule": schedule, "soft_floor": soft_floor, "hard_weight": hard_weight,
            "soft_weight": soft_weight, "kd_temperature": kd_temperature, "hidden_weight": hidden_weight,
            "attention_weight": attention_weight, "prune_sparsity": prune_sparsity, "epochs": epochs, "lr": lr,
            "batch_size": batch_size, "max_length": max_length, "max_steps": max_steps, "eval_every": eval_every,
            "checkpoint_every": checkpoint_every, "seed": seed, "threads": threads, "device": device,
            "soft_text": [str(p) for p in soft_text] if soft_text else None, "student_width": student_width, "student_ffn": student_ffn,
            "type_teachers": [str(p) for p in type_teacher] if type_teacher else None, "soft_ner": soft_ner, "type_mode": type_mode,
            "augment_copies": augment_copies,
        }
        options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
        logging.getLogger("biotag").setLevel(logging.INFO)  # long runs show progress (the CLI's handler is set up already)
        try:
            if student_layers is not None:
                options["student_layers"] = parse_layers(student_layers)
            base = json_object(config) if config is not None else {}
            if "encoder" in options:
                base.pop("student_layers", None)
            if "student_layers" in options:
                base.pop("encoder", None)
            merged = {**base, **options}
            if _teaches_relations(merged.get("teacher")):
                path = _distill_relations(merged, resume, config)
            else:
                path = run(DistillConfig.from_dict(merged, path=str(config) if config else None), resume=resume)
        except BiotagError as error:
            _fail(error)
        typer.echo(str(path))


# options of NER distillation that a relation teacher has no use for
NER_ONLY = (
    "unify_types", "soft_ratio", "soft_top_k", "soft_cache", "hidden_weight",
    "attention_weight", "prune_sparsity", "soft_loss", "hidden_layers", "type_teachers", "type_mode",
)


def json_object(path: Path) -> dict:
    from biotag.json_config import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError("a config file holds one JSON object", path=str(path), field="config")
    return data


def _teaches_relations(teacher) -> bool:
    from biotag.relations.model import is_relation_model

    teachers = teacher if isinstance(teacher, list) else [teacher] if teacher else []
    return any(is_relation_model(t) for t in teachers)


def _distill_relations(merged: dict, resume: bool, config_path: Path | None) -> Path:
    """``biotag distill`` with a relation teacher: ``--corpus`` names the relation dataset
    (default: the teacher's task)."""
    from biotag.relations.distill import RelationDistillConfig, distill_relations
    from biotag.relations.model import read_relation_metadata

    if isinstance(merged.get("teacher"), list):
        raise InputError("relation distillation takes one teacher, not an ensemble", field="teacher")
    given = [name for name in NER_ONLY if merged.get(name) not in (None, [], 0, 0.0)]
    if given:
        raise InputError(f"{', '.join(given)} apply to NER distillation only; the teacher is a relation model", field=given[0])
    corpora = merged.pop("corpora", None)
    if corpora:
        if len(corpora) != 1:
            raise InputError(f"a relation student learns one dataset, got {corpora}", field="corpora")
        merged["dataset"] = corpora[0]
    merged.setdefault("dataset", read_relation_metadata(Path(merged["teacher"]))["task"]["name"])
    for name in NER_ONLY:
        merged.pop(name, None)
    config = RelationDistillConfig.from_dict(merged, path=str(config_path) if config_path else None)
    return distill_relations(config, resume=resume)
