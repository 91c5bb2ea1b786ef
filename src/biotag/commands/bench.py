"""``biotag bench``: models side by side (HF pipeline, PyTorch, ONNX Runtime fp32/int8,
students) on one text file: tokens/s, documents/s, latency, peak RSS, size, F1."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer

from biotag.errors import BiotagError

DEFAULT_DATA = "text/bern2-benchmark-1k.jsonl"


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        model: List[Path] = typer.Option(..., "--model", "-m", help="Model directory (repeatable): PyTorch (also exported to ONNX) or an ONNX export."),
        output: Path = typer.Option(..., "--output", "-o", help="Folder for results.json, results.md, frontier.png and the exports."),
        data: Optional[Path] = typer.Option(None, "--data", help=f"Texts (.jsonl with text or title+abstract, or .txt; default: $BIOTAG_DATA/{DEFAULT_DATA})."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N documents."),
        threads: int = typer.Option(2, "--threads", min=1, help="Inference threads of every configuration."),
        hf_pipeline: bool = typer.Option(True, "--hf-pipeline/--no-hf-pipeline", help="Also run the Hugging Face token-classification pipeline on the first PyTorch model (the reference of the ratios)."),
        export: str = typer.Option("fp32,int8", "--export", help="ONNX exports of each PyTorch model to measure: some of fp32, int8, int8-fp32-embeddings, static; int8-full-range and int8-fp32-embeddings-full-range export with --full-range (comma separated; empty for none)."),
        calibration: Optional[Path] = typer.Option(None, "--calibration", help="Documents for a static int8 export's calibration."),
        calibration_sentences: int = typer.Option(256, "--calibration-sentences", min=1),
        eval_corpus: Optional[List[str]] = typer.Option(None, "--eval-corpus", help="Corpus name or file to report F1 on (repeatable)."),
        eval_split: str = typer.Option("devel", "--eval-split", help="Split of --eval-corpus."),
        latency_docs: int = typer.Option(100, "--latency-docs", min=1, help="Documents annotated one per call for p50/p95 latency."),
        hf_batch_size: int = typer.Option(1, "--hf-batch-size", min=1, help="batch_size of the HF pipeline call (1: its default)."),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds one configuration may take."),
        update_docs: Optional[Path] = typer.Option(None, "--update-docs", help="Write the table and plot into this markdown file (e.g. docs/benchmarks.md)."),
        docs_key: str = typer.Option("ner-speed", "--docs-key", help="Name of the section --update-docs replaces."),
    ) -> None:
        """Benchmark models side by side in one run; ratios are against the HF pipeline."""
        from biotag.bench import run_benchmark
        from biotag.cli import _fail

        try:
            if data is None:
                from biotag.paths import data_root

                data = data_root() / DEFAULT_DATA
            words = None
            if calibration is not None:
                from biotag.commands.export import calibration_sentences as read_calibration

                words = read_calibration(calibration, calibration_sentences)
            outcome = run_benchmark(
                model, output, data=data, limit=limit, threads=threads, hf_pipeline=hf_pipeline,
                exports=[e.strip() for e in export.split(",") if e.strip()], calibration_words=words,
                eval_corpora=eval_corpus or [], eval_split=eval_split, latency_docs=latency_docs,
                hf_batch_size=hf_batch_size, timeout=timeout, command=_command_line(locals()),
                docs_file=update_docs, docs_key=docs_key,
            )  # fmt: skip
        except BiotagError as error:
            _fail(error)
        typer.echo(outcome["paths"]["markdown"].read_text(encoding="utf-8"))
        failed = [r["name"] for r in outcome["results"] if "error" in r]
        for name, path in outcome["paths"].items():
            typer.echo(f"{name}: {path}")
        if failed:
            typer.echo(f"failed: {', '.join(failed)} (see {output / 'runs'})", err=True)
            raise typer.Exit(1)


def _command_line(params: dict) -> str:
    """The command as given, for the record in the results and the docs (rebuilt from the
    parameters, so that it is the same from a shell, a script or a test runner)."""
    parts = ["biotag", "bench"]
    for model in params["model"]:
        parts += ["-m", str(model)]
    flags = {
        "data": "--data", "limit": "--limit", "threads": "--threads", "export": "--export", "calibration": "--calibration",
        "calibration_sentences": "--calibration-sentences", "eval_split": "--eval-split", "latency_docs": "--latency-docs",
        "hf_batch_size": "--hf-batch-size", "timeout": "--timeout", "update_docs": "--update-docs", "docs_key": "--docs-key",
    }  # fmt: skip
    defaults = {"threads": 2, "export": "fp32,int8", "calibration_sentences": 256, "eval_split": "devel", "latency_docs": 100,
                "hf_batch_size": 1, "docs_key": "ner-speed"}  # fmt: skip
    for corpus in params.get("eval_corpus") or []:
        parts += ["--eval-corpus", corpus]
    for name, flag in flags.items():
        value = params.get(name)
        if value is not None and value != defaults.get(name):
            parts += [flag, str(value)]
    if not params["hf_pipeline"]:
        parts.append("--no-hf-pipeline")
    parts += ["-o", str(params["output"])]
    return shlex.join(parts)
