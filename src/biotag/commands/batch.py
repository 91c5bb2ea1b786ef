"""``biotag batch``: annotate files, folders or glob patterns on Ray (local or a cluster),
resumably, with every document in the output or in failures.jsonl (docs/batch.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from biotag.errors import BiotagError


def register(app: typer.Typer) -> None:
    @app.command()
    def batch(
        inputs: List[str] = typer.Argument(..., help="Input files, folders or glob patterns ('data/*.xml', 'corpus/**/*.jsonl') in any biotag format."),
        output: Path = typer.Option(..., "--output", "-o", help="Output folder: shards, manifest.json, failures.jsonl. Run again to resume."),
        input_format: Optional[str] = typer.Option(None, "--input-format", help="Format of the inputs (guessed per file if omitted)."),
        output_format: str = typer.Option("jsonl", "--output-format", "-f", help="jsonl, parquet or pubtator."),
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model directory (default: the bundled model); must exist at this path on every node."),
        steps: Optional[str] = typer.Option(None, "--steps", help="Comma-separated pipeline steps, e.g. ner,abbreviations (default: the default pipeline)."),
        pipeline: Optional[Path] = typer.Option(None, "--pipeline", help="Pipeline config JSON (see biotag.pipeline.config)."),
        backend: str = typer.Option("auto", help="auto, onnx or torch."),
        workers: int = typer.Option(2, "--workers", "-w", min=1, help="Ray actors, each with its own copy of the pipeline."),
        threads: int = typer.Option(1, "--threads", min=1, help="CPU threads (Ray CPUs) per worker."),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per task sent to a worker."),
        shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Documents per output shard (a resumed job redoes at most the shard in progress)."),
        commit_seconds: float = typer.Option(60.0, "--commit-seconds", min=0.0, help="Also close a shard after this many seconds."),
        max_worker_rss_mb: Optional[float] = typer.Option(None, "--max-worker-rss-mb", min=1.0, help="Recycle a worker before its resident memory passes this (MiB)."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (e.g. 10.0.0.1:6379 or 'auto'); default: start a local Ray."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Report malformed input records in failures.jsonl and go on."),
        imports: Optional[List[str]] = typer.Option(None, "--import", help="Python module registering custom steps, imported in every worker (repeatable)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (documents/s, ETA)."),
    ) -> None:
        """Annotate large inputs on Ray: sharded output, resumable, no lost documents."""
        from biotag.batch import BatchOptions, run_batch
        from biotag.cli import _fail

        options = BatchOptions(
            inputs=inputs, outdir=output, input_format=input_format, output_format=output_format, model=model,
            steps=steps, pipeline=pipeline, backend=backend, workers=workers, threads=threads, batch_size=batch_size,
            shard_size=shard_size, commit_seconds=commit_seconds, max_worker_rss_mb=max_worker_rss_mb, address=address,
            skip_bad=skip_bad, imports=imports or (), progress=progress,
        )
        try:
            summary = run_batch(options)
        except BiotagError as error:
            _fail(error)
        parts = [f"{summary.documents} documents annotated", f"{summary.failures} to failures.jsonl"]
        if summary.skipped:
            parts.append(f"{summary.skipped} already done")
        if summary.crashes or summary.recycled:
            parts.append(f"{summary.crashes} worker crashes, {summary.recycled} recycled")
        if len(summary.nodes) > 1:
            parts.append(f"workers on {len(summary.nodes)} nodes")
        typer.secho(
            f"{', '.join(parts)} in {summary.seconds:.1f} s ({summary.docs_per_second:.1f} docs/s); "
            f"{output}: {summary.total_documents} documents, {summary.total_failures} failures",
            err=True,
        )
