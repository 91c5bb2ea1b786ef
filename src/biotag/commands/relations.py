"""``biotag train-relations`` and ``biotag evaluate-relations``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from biotag.commands import DEVICE_HELP
from biotag.errors import BiotagError


def register(app: typer.Typer) -> None:
    @app.command("train-relations")
    def train_relations(
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="chemprot, ddi, biored, or a corpus folder with relations."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output run directory (the model goes to OUTPUT/model)."),
        config: Optional[Path] = typer.Option(None, help="RelationTrainConfig JSON; command-line options override it."),
        encoder: Optional[str] = typer.Option(None, help="Encoder directory or short name (default minilm-l6)."),
        style: Optional[str] = typer.Option(None, help="Entity markers: typed (special tokens around the arguments) or mask (@CHEMICAL$)."),
        epochs: Optional[int] = typer.Option(None),
        lr: Optional[float] = typer.Option(None),
        batch_size: Optional[int] = typer.Option(None),
        max_length: Optional[int] = typer.Option(None, help="Sub-words per input (longer inputs are cut around the arguments)."),
        negative_fraction: Optional[float] = typer.Option(None, help="Share of negative pairs drawn per epoch (all positives are kept)."),
        train_limit: Optional[int] = typer.Option(None, help="Train on a seeded random subset of this many pairs."),
        devel_limit: Optional[int] = typer.Option(None, help="Select on a seeded random subset of this many devel pairs."),
        window: Optional[int] = typer.Option(None, help="Sentences per candidate pair for document corpora."),
        max_steps: Optional[int] = typer.Option(None),
        seed: Optional[int] = typer.Option(None),
        threads: Optional[int] = typer.Option(None),
        device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    ) -> None:
        """Fine-tune a relation classifier (entity markers + sequence classification)."""
        from biotag.cli import _fail
        from biotag.relations.training import RelationTrainConfig, train_relations as run

        options = {
            "dataset": dataset, "output_dir": None if output is None else str(output), "encoder": encoder, "style": style,
            "epochs": epochs, "lr": lr, "batch_size": batch_size, "max_length": max_length,
            "negative_fraction": negative_fraction, "train_limit": train_limit, "devel_limit": devel_limit,
            "window": window, "max_steps": max_steps, "seed": seed, "threads": threads, "device": device,
        }
        options = {k: v for k, v in options.items() if v is not None}
        try:
            if config is not None:
                cfg = RelationTrainConfig.from_json(config)
                cfg = RelationTrainConfig.from_dict({**cfg.to_dict(), **options})
            else:
                cfg = RelationTrainConfig.from_dict(options)
            model_dir = run(cfg, resume=resume)
        except BiotagError as error:
            _fail(error)
        summary = json.loads((model_dir.parent / "summary.json").read_text(encoding="utf-8"))
        typer.echo(f"best devel micro-F1 {summary['best_f1']:.4f} at step {summary['best_step']}; model: {model_dir}")

    @app.command("evaluate-relations")
    def evaluate_relations(
        model: List[Path] = typer.Option(..., "--model", "-m", help="Relation model directory; repeat to compare several in one run."),
        dataset: str = typer.Option(..., "--dataset", "-d", help="chemprot, ddi, biored, or a corpus folder with relations."),
        split: str = typer.Option("test", help="train, devel or test."),
        level: str = typer.Option("pairs", help="pairs (BLURB micro-F1 over the dataset's pairs) or documents (relations found in documents vs gold)."),
        backend: str = typer.Option("auto", help="auto, onnx or torch."),
        threads: Optional[int] = typer.Option(None, help="CPU threads."),
        batch_size: int = typer.Option(64, help="Pairs per forward pass."),
        window: int = typer.Option(1, help="Sentences per candidate pair for document corpora."),
        limit: Optional[int] = typer.Option(None, help="Score a seeded random subset of this many pairs."),
        output_json: Optional[Path] = typer.Option(None, "--json", help="Also write the full results as JSON."),
        annotate_steps: Optional[str] = typer.Option(None, "--annotate", help="Documents level, end to end: find the entities with these pipeline steps (e.g. ner,linking) in the text instead of using the gold ones."),
        ner_model: Optional[Path] = typer.Option(None, "--ner-model", help="NER model for --annotate (default: the bundled model)."),
    ) -> None:
        """Score relation models: BLURB micro-F1 + per-class table, pairs/s; or document level."""
        from biotag.cli import _fail
        from biotag.relations.evaluate import evaluate_documents, evaluate_pairs
        from biotag.relations.onnx import load_relation_model

        if level not in ("pairs", "documents"):
            _fail(BiotagError(f"--level must be pairs or documents, got {level!r}"))
        if annotate_steps and level != "documents":
            _fail(BiotagError("--annotate (end to end) needs --level documents"))
        results = []
        try:
            annotate = None
            if annotate_steps:
                from biotag.api import load

                nlp = load(ner_model, steps=annotate_steps, threads=threads)
                annotate = lambda docs: list(nlp.pipe(docs))  # noqa: E731
            for path in model:
                predictor = load_relation_model(path, backend=backend, threads=threads)
                kind = "onnx" if hasattr(predictor, "session") else "torch"
                if level == "pairs":
                    result = evaluate_pairs(predictor, dataset, split, window=window, limit=limit, batch_size=batch_size)
                    report = result.pop("report")
                    typer.echo(f"\n## {path} ({kind}) on {dataset} {split}: {result['pairs']} pairs, {result['pairs_per_second']} pairs/s\n")
                    typer.echo(report.table())
                    result["scores"] = report.to_dict()
                else:
                    result = evaluate_documents(predictor, dataset, split, window=window, batch_size=batch_size, annotate=annotate)
                    typer.echo(f"\n## {path} ({kind}) on {dataset} {split}: {result['documents']} documents, {result['level']} level, {result['entities']} entities")
                    typer.echo(f"recall ceiling (window {window}): {result['recall_ceiling']}")
                    if annotate is not None:
                        typer.echo(f"recall ceiling with the entities of {annotate_steps}: {result['recall_ceiling_predicted_entities']}")
                    for name in ("pair", "typed"):
                        s = result[name]
                        typer.echo(f"{name:6s} P {100 * s['precision']:.2f}  R {100 * s['recall']:.2f}  F1 {100 * s['f1']:.2f}")
                result.update({"model": str(path), "backend": kind})
                results.append(result)
        except BiotagError as error:
            _fail(error)
        if len(results) > 1 and level == "pairs":
            typer.echo("\n| model | backend | micro-F1 | pairs/s |\n|---|---|---:|---:|")
            for r in results:
                typer.echo(f"| {r['model']} | {r['backend']} | {100 * r['scores']['micro']['f1']:.2f} | {r['pairs_per_second']} |")
        if output_json is not None:
            output_json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
