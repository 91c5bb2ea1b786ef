"""Export a biotag model directory to a self-contained ONNX model directory.

``export_onnx(model_dir, out_dir)`` writes a directory that :func:`biotag.load` runs with
ONNX Runtime (:mod:`biotag.runtime.engine`) and without PyTorch: one ONNX graph
(``input_ids``, ``attention_mask`` int64 ``[batch, sequence]`` -> ``logits`` float32
``[batch, sequence, num_outputs]``), the tokenizer, ``config.json``, ``biotag.json`` with
an ``onnx`` entry, and the model card with an export section, but no PyTorch weights.

Steps (float32 graphs must reproduce PyTorch's logits on a sample batch of another shape
than the one traced; a quantized graph's largest difference is recorded in ``biotag.json``):

1. *export* with the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): it
   works offline with what biotag depends on, whereas the dynamo exporter needs
   ``onnxscript``. Attention is switched to the *eager* implementation first, because
   ONNX Runtime's fusion recognises eager attention (MiniLM: 6 fused ``Attention`` nodes)
   and not the SDPA subgraph (none).
2. *optimise* with ``onnxruntime.transformers.optimizer`` (``model_type="bert"``, no
   hardware-specific ORT passes, so the file stays portable): embedding/attention/GELU/
   layer-norm fusion for BERT-like encoders, but not skip-layer-norm fusion, whose CPU
   kernel is slower than the two operators it fuses (:mod:`biotag.runtime.layernorm`); for
   MPNet (relative attention bias) only the GELU and layer-norm fusions apply. A fused graph that does not reproduce the
   exported one is dropped, with a warning.
3. *quantise*: ``none`` keeps float32 (``model.onnx``); ``int8`` (``model.int8.onnx``)
   is dynamic quantisation (int8 weights, per output channel, 7-bit range so that
   AVX2 machines without VNNI cannot saturate; activations quantised at run time), the
   fast and accurate choice on CPU; ``static`` (``model.static.onnx``) calibrates
   activation ranges on ``calibration_words`` (MinMax) and writes QDQ pairs around the
   weight matrix products and the embedding lookups of the unfused graph (fused
   operators would keep their activations in float). On MiniLM-L6 static was about as
   fast as dynamic and three times further from float32 (mean logit difference), so
   ``int8`` is the default.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from biotag.errors import BiotagError, InputError
from biotag.models.metadata import BIOTAG_FILE, read_metadata
from biotag.runtime.engine import OUTPUT_NAME, feeds
from biotag.text.subwords import SubwordBatch, SubwordEncoder

log = logging.getLogger(__name__)

# int8-fp32-embeddings: dynamic int8 for the matrix products, the embedding tables left in float
# (measured: it keeps F1 that int8 embeddings lose on narrow models; the file grows by 3 bytes/weight)
QUANTIZE_MODES = ("none", "int8", "int8-fp32-embeddings", "static")
ONNX_FILES = {"none": "model.onnx", "int8": "model.int8.onnx", "int8-fp32-embeddings": "model.int8.onnx", "static": "model.static.onnx"}
# opsets tried: 11 to 20 (the TorchScript exporter's newest) export, fuse and quantize
MIN_OPSET, MAX_OPSET = 11, 20
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
CALIBRATION_BATCH = 8  # windows per calibration run
# sentences for tracing and for checking every step against PyTorch
SAMPLE_WORDS = [
    ["The", "BRCA1", "gene", "is", "mutated", "in", "hereditary", "breast", "cancer", "."],
    ["Aspirin", "."],
    ["IL-2", "induces", "T-cell", "proliferation", "in", "mice", "given", "0.5", "mg/kg", "dexamethasone", "."],
]
FLOAT_TOLERANCE = 1e-3  # of the logits' scale: float32 graphs differ only by rounding


def export_onnx(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    quantize: str = "int8",
    optimize: bool = True,
    calibration_words: Sequence[Sequence[str]] | None = None,
    opset: int = 17,
    overwrite: bool = False,
    full_range: bool = False,
) -> Path:
    """Export the PyTorch model in ``model_dir`` to a new ONNX model directory ``out_dir``
    (``overwrite`` replaces an existing biotag model directory there); returns ``out_dir``.

    ``quantize`` is ``"none"``, ``"int8"`` (dynamic), ``"int8-fp32-embeddings"`` (dynamic,
    embedding tables kept in float) or ``"static"`` (which needs ``calibration_words``, word
    lists of typical text); ``optimize`` applies ONNX
    Runtime's transformer fusions; ``opset`` is the ONNX opset to export to. int8 weights
    use 7 bits (ONNX Runtime's ``reduce_range``, safe on every x86 CPU) unless ``full_range``:
    8 bits are more accurate but need VNNI/AMX int8 instructions on x86, where the older
    u8s8 kernels can saturate (:func:`biotag.runtime.engine.warn_if_saturating` says so)."""
    import torch

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    _check_options(quantize, calibration_words, opset)
    _check_source(model_dir)
    _check_target(model_dir, out_dir, overwrite)

    from biotag.models.token_classifier import TokenClassifier

    model = TokenClassifier.from_pretrained(model_dir)
    if model.fusion is not None and quantize == "static":
        raise InputError("static quantization of a model with word features is not supported; use int8 or none", field="quantize")
    model.network.set_attn_implementation("eager")
    calibration = _calibration_batches(model.encoder, calibration_words or []) if quantize == "static" else []
    sample = _sample_batch(model, SAMPLE_WORDS)
    with torch.inference_mode():
        reference = _graph_module(model)(*(torch.from_numpy(x) for x in feeds(sample).values())).numpy()

    with staged_directory(out_dir) as staging, tempfile.TemporaryDirectory(prefix="biotag-export-") as work:
        work = Path(work)
        exported = _export_graph(model, work / "exported.onnx", opset)
        _check_close(exported, sample, reference, "the exported graph")
        graph, fusions = exported, None
        if optimize and quantize != "static":
            graph, fusions = _optimize(exported, model.network.config, work / "optimized.onnx", sample, reference)
        target = staging / ONNX_FILES[quantize]
        if quantize == "none":
            shutil.copyfile(graph, target)
        elif quantize in ("int8", "int8-fp32-embeddings"):
            _quantize_dynamic(graph, target, float_embeddings=quantize == "int8-fp32-embeddings", full_range=full_range)
        else:
            _quantize_static(exported, target, calibration, work, optimize=optimize, full_range=full_range)
        optimized = fusions is not None or (quantize == "static" and optimize)
        info = export_record(target, quantize, opset, optimized, fusions, _max_diff(target, sample, reference), full_range=full_range)
        _write_companions(model, model_dir, staging, info)
    log.info("exported %s to %s (%.1f MB)", model_dir, out_dir / info["file"], (out_dir / info["file"]).stat().st_size / 1e6)
    return out_dir


# -- shared by the exporters (token classifier here, relation classifier in relations.onnx)
@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """An empty folder beside ``out_dir`` that replaces it in one rename when the block
    succeeds and is removed when it fails, so a failed export never leaves a half-written
    model directory (callers check beforehand that ``out_dir`` may be replaced)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def export_record(target: Path, quantize: str, opset: int, optimized: bool, fusions, max_diff: float, *, full_range: bool = False) -> dict:
    """What the model card and ``biotag.json`` say about an ONNX export."""
    import torch

    return {
        "file": target.name,
        "quantize": quantize,
        "weight_bits": None if quantize == "none" else 8 if full_range else 7,
        "opset": opset,
        "optimized": optimized,
        "exporter": f"torch.onnx TorchScript exporter (torch {torch.__version__})",
        "fusions": fusions,
        "max_abs_diff_vs_pytorch": round(max_diff, 6),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


# -- checks -------------------------------------------------------------------
def _check_options(quantize: str, calibration_words, opset: int) -> None:
    if quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown quantization {quantize!r}; expected one of {', '.join(QUANTIZE_MODES)}", field="quantize")
    if quantize == "static" and not calibration_words:
        raise InputError("static quantization needs calibration_words (word lists of typical text)", field="calibration_words")
    if not (isinstance(opset, int) and MIN_OPSET <= opset <= MAX_OPSET):
        raise InputError(f"opset must be an integer in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}", field="opset")


def _check_source(model_dir: Path) -> None:
    metadata, _ = read_metadata(model_dir)
    if metadata.get("onnx"):
        raise InputError(
            "this is already an ONNX export; export from the PyTorch model directory it was made from",
            path=str(model_dir),
            field="model",
        )
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        raise InputError(f"no PyTorch weights ({' or '.join(WEIGHT_FILES[::2])})", path=str(model_dir), field="model")


def _check_target(model_dir: Path, out_dir: Path, overwrite: bool) -> None:
    if out_dir.resolve() == model_dir.resolve():
        raise InputError("the output directory must differ from the model directory", path=str(out_dir), field="out_dir")
    if out_dir.exists() and (out_dir.is_file() or any(out_dir.iterdir())):
        if not overwrite:
            raise InputError(
                "exists and is not empty; choose a new directory or overwrite it", path=str(out_dir), field="out_dir"
            )
        if not (out_dir / BIOTAG_FILE).is_file():
            raise InputError("refusing to overwrite: not a biotag model directory", path=str(out_dir), field="out_dir")


def _scores(model_file: Path, sample: SubwordBatch) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: not ORT's notes on unused initializers
    session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    (logits,) = session.run([OUTPUT_NAME], feeds(sample))
    return logits


def _max_diff(model_file: Path, sample: SubwordBatch, reference: np.ndarray) -> float:
    """Largest absolute logit difference from PyTorch over the sample's real tokens (over
    every row for a sequence classifier, whose logits are ``[batch, labels]``)."""
    scores = _scores(model_file, sample)
    if scores.ndim == 2:
        return float(np.abs(scores - reference).max())
    real = sample.attention_mask.astype(bool)
    return float(np.abs(scores[real] - reference[real]).max())


def _check_close(model_file: Path, sample: SubwordBatch, reference: np.ndarray, what: str) -> None:
    diff = _max_diff(model_file, sample, reference)
    scale = max(1.0, float(np.abs(reference).max()))
    if diff > FLOAT_TOLERANCE * scale:
        raise BiotagError(f"{what} does not reproduce the PyTorch model (max |logit difference| {diff:.3g})")


# -- steps ----------------------------------------------------------------------
def _export_graph(model, path: Path, opset: int) -> Path:
    import torch

    # a padded batch of two, so that the attention-mask path is traced
    trace = feeds(_sample_batch(model, SAMPLE_WORDS[:2]))
    names = list(trace)
    dynamic = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        # TracerWarnings about Python branches on shapes in transformers' code: the
        # result is checked on a batch of another shape instead
        warnings.simplefilter("ignore")
        if model.fusion is None:  # the network itself, as it always was exported
            module, args, kwargs = model.network, (torch.from_numpy(trace["input_ids"]),), {"attention_mask": torch.from_numpy(trace["attention_mask"])}
        else:
            module, args, kwargs = _graph_module(model), tuple(torch.from_numpy(trace[name]) for name in names), None
        torch.onnx.export(
            module,
            args,
            str(path),
            kwargs=kwargs,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={name: dynamic for name in (*names, OUTPUT_NAME)},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def _sample_batch(model, word_lists) -> SubwordBatch:
    """A padded batch of sample sentences, with word features for a model that uses them."""
    from dataclasses import replace

    encoding = model.encoder.encode(word_lists)
    batch = model.encoder.collate(encoding.windows)
    if getattr(model, "features", None) is not None:  # relation models have none
        rows = [model.features(word_lists[w.sequence])[w.words] for w in encoding.windows]
        batch = replace(batch, word_features=np.concatenate(rows))
    return batch


def _graph_module(model):
    """What the ONNX graph computes: the network's logits at every position, through the
    feature fusion layer for a model with word features (features at a word's first
    sub-word, zeros elsewhere; only those positions are read)."""
    import torch

    if model.fusion is None:
        class Plain(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.network = model.network

            def forward(self, input_ids, attention_mask):
                return self.network(input_ids=input_ids, attention_mask=attention_mask).logits

        return Plain().eval()

    class WithFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network, self.fusion = model.network, model.fusion

        def forward(self, input_ids, attention_mask, word_features):
            hidden = self.network.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.network.classifier(self.network.dropout(self.fusion(hidden, word_features)))

    return WithFeatures().eval()


def _optimize(
    graph: Path, config, path: Path, sample: SubwordBatch, reference: np.ndarray
) -> tuple[Path, dict[str, int] | None]:
    """Transformer fusions; the unfused graph (and ``None``) when they fail or change results."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    # residual Add + LayerNormalization stay two operators: ORT's fused CPU kernel is slower
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False  # (runtime/layernorm.py)
    try:
        with _quiet_onnxruntime_tools():
            optimized = optimizer.optimize_model(
                str(graph),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
                optimization_options=options,
                opt_level=0,  # fusions only: ORT's own passes run when the model loads, for its CPU
            )
            optimized.save_model_to_file(str(path))
        _check_close(path, sample, reference, "the optimized graph")
    except Exception as error:  # noqa: BLE001 - any failure leaves a valid unfused graph
        log.warning("graph optimization skipped (%s); exporting the unfused graph", error)
        return graph, None
    return path, {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}


def _quantize_dynamic(graph: Path, target: Path, *, float_embeddings: bool = False, full_range: bool = False) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the default set also quantizes Gather and EmbedLayerNormalization (the embedding tables)
    kinds = {"op_types_to_quantize": ["MatMul", "Attention"]} if float_embeddings else {}
    with _quiet_onnxruntime_tools():
        quantize_dynamic(
            graph,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=not full_range,
            # outputs of fused contrib operators have no ONNX-inferable type: they are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            **kinds,
        )


def _calibration_batches(encoder: SubwordEncoder, word_lists: Sequence[Sequence[str]]) -> list[SubwordBatch]:
    windows = encoder.encode([list(words) for words in word_lists]).windows
    if not windows:
        raise InputError("calibration_words holds no words", field="calibration_words")
    windows = sorted(windows, key=len)
    return [encoder.collate(windows[i : i + CALIBRATION_BATCH]) for i in range(0, len(windows), CALIBRATION_BATCH)]


def _quantize_static(graph: Path, target: Path, batches: list[SubwordBatch], work: Path, *, optimize: bool, full_range: bool = False) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds: Iterator[dict[str, np.ndarray]] = (
                {"input_ids": b.input_ids, "attention_mask": b.attention_mask} for b in batches
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    prepared = work / "prepared.onnx"
    # ONNX shape inference and ORT's portable basic optimisation (constant folding...);
    # symbolic shape inference is skipped: it cannot resolve the exported mask arithmetic
    with _quiet_onnxruntime_tools():
        quant_pre_process(graph, prepared, skip_optimization=not optimize, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gather"],
            per_channel=True,
            reduce_range=not full_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # histogram calibrators need batches of one shape; MinMax takes any
            calibrate_method=CalibrationMethod.MinMax,
            # weight products only, as dynamic quantization does: attention's activation x
            # activation products stay in float
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextmanager
def _quiet_onnxruntime_tools() -> Iterator[None]:
    """Mute ORT's fusion and quantization tools, which log every step at INFO (on the
    root logger, too) and advise a pre-processing that the fused graph must skip; their
    failures still raise."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


# -- companion files --------------------------------------------------------------
def _write_companions(model, model_dir: Path, out_dir: Path, info: dict) -> None:
    """Tokenizer (as the PyTorch model used it), config.json, biotag.json + onnx entry,
    the word-feature files of a model that has them, card."""
    model.tokenizer.save_pretrained(out_dir)
    if getattr(model, "features", None) is not None:
        model.features.save(out_dir)
    shutil.copyfile(model_dir / "config.json", out_dir / "config.json")
    metadata = json.loads((model_dir / BIOTAG_FILE).read_text(encoding="utf-8"))
    metadata["onnx"] = info
    (out_dir / BIOTAG_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    card_path = model_dir / "README.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else model.model_card()
    (out_dir / "README.md").write_text(card.rstrip("\n") + "\n\n" + _card_section(out_dir, info), encoding="utf-8")


def _card_section(out_dir: Path, info: dict) -> str:
    import onnxruntime

    size_mb = (out_dir / info["file"]).stat().st_size / 1e6
    quantization = {
        "none": "none (float32)",
        "int8": "dynamic int8 (weights per output channel, activations at run time)",
        "int8-fp32-embeddings": "dynamic int8 of the matrix products (weights per output channel), embedding tables in float32",
        "static": "static int8 QDQ, calibrated (MinMax)",
    }[info["quantize"]]
    if info.get("weight_bits"):
        quantization += f"; {info['weight_bits']}-bit weights" + (" (needs VNNI/AMX on x86)" if info["weight_bits"] == 8 else " (reduce_range)")
    fusions = ", ".join(f"{op} x{n}" for op, n in (info["fusions"] or {}).items()) or "none"
    lines = [
        "## ONNX export",
        "",
        f"- file: `{info['file']}` ({size_mb:.1f} MB), opset {info['opset']}, exported {info['date']}",
        f"- quantization: {quantization}",
        f"- graph optimization: {'yes' if info['optimized'] else 'no'} (fused operators: {fusions})",
        f"- max |logit difference| from PyTorch on a sample batch: {info['max_abs_diff_vs_pytorch']:.3g}",
        f"- exporter: {info['exporter']}; built with onnxruntime {onnxruntime.__version__}",
        "",
        "This directory holds no PyTorch weights: `biotag.load(dir)` runs it with ONNX Runtime "
        "(PyTorch not needed).",
    ]
    return "\n".join(lines) + "\n"
