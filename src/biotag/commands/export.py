"""``biotag export``: a trained model directory -> an ONNX Runtime model directory."""

from __future__ import annotations

from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, List, Optional

import typer

from biotag.errors import BiotagError

FULL_RANGE_HELP = (
    "8-bit int8 weights instead of ONNX Runtime's 7-bit reduce_range: more accurate, for CPUs "
    "with VNNI/AMX int8 instructions (avx512_vnni, avx_vnni) or ARM; on older x86 CPUs the "
    "u8s8 kernels can saturate, which reduce_range avoids"
)


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


@contextmanager
def _compressed(model: Path, keep: Optional[Path], *, heads, ffn, layers, width, sparsity, vocab, vocab_text, importance) -> Iterator[Path]:
    """The model directory to export: ``model`` itself, or a compressed copy (in ``keep``
    or a temporary folder) after layer/head/FFN pruning, vocabulary pruning and sparsity."""
    import tempfile

    from biotag.errors import InputError

    if not (heads or ffn or layers.strip() or width or sparsity or vocab):
        yield model
        return
    try:
        drop = [int(x) for x in layers.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--drop-layers takes layer numbers separated by commas, got {layers!r}", field="drop_layers") from None
    with tempfile.TemporaryDirectory(prefix="biotag-compress-") as work:
        source, step = model, 0

        def target() -> Path:
            nonlocal step
            step += 1
            return Path(work) / f"step{step}"

        if heads or ffn or drop or width:
            from biotag.compress.structured import prune_structured

            source = prune_structured(source, target(), heads=heads, ffn=ffn, drop_layers=drop, width=width, word_lists=importance)
        if vocab:
            from biotag.compress.vocab import biomedical_texts, prune_vocabulary
            from biotag.pretrain.data import read_text_file

            texts = (d.text for f in vocab_text for d in read_text_file(f)) if vocab_text else biomedical_texts()
            source = prune_vocabulary(source, target(), texts)
        if sparsity:
            from biotag.compress.sparsity import magnitude_prune

            source = magnitude_prune(source, target(), sparsity=sparsity)
        if keep is not None:
            import shutil

            if keep.exists():
                raise InputError("exists; choose a new directory for --save-pytorch", path=str(keep), field="save_pytorch")
            shutil.copytree(source, keep)
        yield source


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        model: Path = typer.Argument(..., help="Trained biotag model directory (PyTorch weights)."),
        output: Path = typer.Option(..., "--output", "-o", help="New model directory for the ONNX export."),
        quantize: str = typer.Option("int8", help="int8 (dynamic), int8-fp32-embeddings (dynamic, embedding tables in float), static (calibrated int8, needs --calibration) or none (fp32)."),
        optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Apply ONNX Runtime's transformer graph fusions."),
        calibration: Optional[Path] = typer.Option(None, "--calibration", help="Documents of typical text (any input format) for static quantization."),
        calibration_sentences_count: int = typer.Option(256, "--calibration-sentences", min=1, help="Sentences of --calibration to use."),
        opset: int = typer.Option(17, help="ONNX opset."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory at --output."),
        full_range: bool = typer.Option(False, "--full-range", help=FULL_RANGE_HELP + "."),
        prune_heads: float = typer.Option(0.0, "--prune-heads", min=0.0, max=0.99, help="Share of attention heads to remove, least important first (BERT-style encoders)."),
        prune_ffn: float = typer.Option(0.0, "--prune-ffn", min=0.0, max=0.99, help="Share of each layer's FFN neurons to remove."),
        drop_layers: str = typer.Option("", "--drop-layers", help="Encoder layers to remove, e.g. 1,3,5."),
        width: Optional[int] = typer.Option(None, "--width", min=1, help="Cut the hidden size to this (a multiple of the head size; the strongest dimensions and heads stay)."),
        importance_text: Optional[Path] = typer.Option(None, "--importance-text", help="Documents whose activations rank heads/neurons (default: --calibration, else weight magnitude)."),
        prune_vocab: bool = typer.Option(False, "--prune-vocab", help="Drop embedding rows of WordPiece tokens never seen in biomedical text."),
        vocab_text: Optional[List[Path]] = typer.Option(None, "--vocab-text", help="Text for --prune-vocab (.jsonl/.txt, repeatable; default: shared PubMed abstracts outside test splits + NER training text)."),
        sparsity: float = typer.Option(0.0, "--sparsity", min=0.0, max=0.99, help="Zero this share of the encoder's smallest weights (unstructured; measured not to speed up ONNX Runtime)."),
        save_pytorch: Optional[Path] = typer.Option(None, "--save-pytorch", help="Also keep the compressed PyTorch model directory here (for fine-tuning or distillation)."),
    ) -> None:
        """Export a model (NER or relations) to ONNX (graph fusions, int8 quantization) for the fast CPU runtime."""
        from biotag.cli import _fail
        from biotag.runtime.export import export_onnx

        try:
            from biotag.errors import InputError
            from biotag.relations.model import is_relation_model

            if is_relation_model(model):
                from biotag.relations.onnx import export_relation_model

                ner_only = {"--calibration": calibration, "--prune-heads": prune_heads, "--prune-ffn": prune_ffn, "--drop-layers": drop_layers,
                            "--width": width, "--prune-vocab": prune_vocab, "--sparsity": sparsity, "--save-pytorch": save_pytorch}  # fmt: skip
                given = [name for name, value in ner_only.items() if value]
                if given:  # refused rather than silently ignored
                    raise InputError(f"{', '.join(given)} apply to NER models only; {model} is a relation model", field=given[0].lstrip("-"))
                out = export_relation_model(model, output, quantize=quantize, optimize=optimize, opset=opset, overwrite=overwrite, full_range=full_range)
            else:
                words = calibration_sentences(calibration, calibration_sentences_count) if calibration else None
                options = dict(
                    heads=prune_heads, ffn=prune_ffn, layers=drop_layers, width=width, sparsity=sparsity, vocab=prune_vocab, vocab_text=vocab_text,
                    importance=calibration_sentences(importance_text, calibration_sentences_count) if importance_text else words,
                )  # fmt: skip
                with _compressed(model, save_pytorch, **options) as source:
                    out = export_onnx(
                        source, output, quantize=quantize, optimize=optimize, calibration_words=words, opset=opset, overwrite=overwrite, full_range=full_range
                    )
        except BiotagError as error:
            _fail(error)
        size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        typer.echo(f"exported {model} -> {out} ({quantize}, {size / 1e6:.1f} MB)")

    @app.command("rebuild-pytorch")
    def rebuild_pytorch(
        model: Path = typer.Argument(..., help="ONNX model directory written by biotag export (float32 or dynamic int8)."),
        output: Path = typer.Option(..., "--output", "-o", help="New PyTorch model directory."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory at --output."),
    ) -> None:
        """Rebuild a PyTorch model directory from an ONNX export (int8 weights dequantised), to distil or fine-tune it."""
        from biotag.cli import _fail
        from biotag.runtime.recover import recover_torch

        try:
            out, difference = recover_torch(model, output, overwrite=overwrite)
        except BiotagError as error:
            _fail(error)
        typer.echo(f"rebuilt {model} -> {out} (largest logit difference from the export on a sample: {difference:.4f})")
