"""``biotag train-reranker``: the learned linking re-ranker (:mod:`biotag.linking.rerank`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer

from biotag.errors import BiotagError


def register(app: typer.Typer) -> None:
    @app.command("train-reranker")
    def train_reranker(
        out: Path = typer.Option(..., "--out", "-o", help="Re-ranker directory to write (a run there is resumed)."),
        encoder: str = typer.Option("minilm-l3", help="Encoder directory or short name under $BIOTAG_ENCODERS."),
        indexes: Optional[Path] = typer.Option(None, "--indexes", help="Index folder (default: $BIOTAG_INDEXES or ~/.cache/biotag/indexes)."),
        ontology: Optional[List[str]] = typer.Option(None, "--ontology", help="Index whose synonyms to train on (repeatable; default medic and mesh)."),
        benchmark: Optional[List[str]] = typer.Option(None, "--benchmark", help="Linking benchmark whose train-split mentions to add (repeatable; default ncbi-disease, bc5cdr-disease, bc5cdr-chem)."),
        no_mentions: bool = typer.Option(False, "--no-mentions", help="Train on dictionary synonyms only."),
        steps: int = typer.Option(2000, min=1, help="Optimizer steps."),
        batch_size: int = typer.Option(32, min=2, help="Queries per batch."),
        max_concepts: int = typer.Option(30000, min=1, help="Concepts sampled per ontology."),
        threads: int = typer.Option(1, min=1, help="PyTorch threads."),
        max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.0, help="Stop at a checkpoint after this long; run the same command again to go on."),
        tune: bool = typer.Option(True, "--tune/--no-tune", help="Once trained, choose weight, pool and names on the benchmarks' devel splits."),
    ) -> None:
        """Train a SapBERT-style bi-encoder on the dictionaries' synonyms (CPU, checkpointed)."""
        from biotag.cli import _fail
        from biotag.linking.rerank_train import DEFAULT_BENCHMARKS, RerankTrainConfig, train_reranker as run, tune_reranker

        logging.getLogger("biotag").setLevel(logging.INFO)
        benchmarks = () if no_mentions else tuple(benchmark or DEFAULT_BENCHMARKS)
        config = RerankTrainConfig(
            encoder=encoder,
            index_dir=str(indexes) if indexes else None,
            ontologies=tuple(ontology or ("medic", "mesh")),
            benchmarks=benchmarks,
            steps=steps,
            batch_size=batch_size,
            max_concepts=max_concepts,
            threads=threads,
        )
        try:
            finished = run(out, config, max_seconds=None if max_minutes is None else 60.0 * max_minutes)
            if not finished:
                typer.echo(f"time is up: checkpoint in {out}/checkpoint; run the same command again to go on")
                raise typer.Exit(3)
            if tune:
                result = tune_reranker(out, benchmarks or DEFAULT_BENCHMARKS, index_dir=indexes)
                typer.echo(json.dumps({k: v for k, v in result.items() if k != "grid"}, indent=2))
        except BiotagError as error:
            _fail(error)
        typer.echo(f"re-ranker written to {out}")
