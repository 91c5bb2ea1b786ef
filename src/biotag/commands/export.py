"""``biotag export``: a trained model directory -> an ONNX Runtime model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import typer

from biotag.errors import BiotagError


def calibration_sentences(path: Path, limit: int) -> list[list[str]]:
    """Word lists of the first ``limit`` sentences of any readable document file."""
    from biotag import io
    from biotag.text import sentence_words

    def sentences() -> Iterator[list[str]]:
        for doc in io.read(path):
            for sentence in sentence_words(doc):
                if sentence:
                    yield [doc.text[start:end] for start, end in sentence]

    out: list[list[str]] = []
    for words in sentences():
        out.append(words)
        if len(out) >= limit:
            break
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        model: Path = typer.Argument(..., help="Trained biotag model directory (PyTorch weights)."),
        output: Path = typer.Option(..., "--output", "-o", help="New model directory for the ONNX export."),
        quantize: str = typer.Option("int8", help="int8 (dynamic), static (calibrated int8, needs --calibration) or none (fp32)."),
        optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Apply ONNX Runtime's transformer graph fusions."),
        calibration: Optional[Path] = typer.Option(None, "--calibration", help="Documents of typical text (any input format) for static quantization."),
        calibration_sentences_count: int = typer.Option(256, "--calibration-sentences", min=1, help="Sentences of --calibration to use."),
        opset: int = typer.Option(17, help="ONNX opset."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory at --output."),
    ) -> None:
        """Export a model (NER or relations) to ONNX (graph fusions, int8 quantization) for the fast CPU runtime."""
        from biotag.cli import _fail
        from biotag.runtime.export import export_onnx

        try:
            from biotag.relations.model import is_relation_model

            if is_relation_model(model):
                from biotag.relations.onnx import export_relation_model

                out = export_relation_model(model, output, quantize=quantize, optimize=optimize, opset=opset, overwrite=overwrite)
            else:
                words = calibration_sentences(calibration, calibration_sentences_count) if calibration else None
                out = export_onnx(
                    model, output, quantize=quantize, optimize=optimize, calibration_words=words, opset=opset, overwrite=overwrite
                )
        except BiotagError as error:
            _fail(error)
        size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        typer.echo(f"exported {model} -> {out} ({quantize}, {size / 1e6:.1f} MB)")
