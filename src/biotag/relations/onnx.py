"""ONNX export of relation models and their ONNX Runtime engine.

:func:`export_relation_model` runs the same steps as :func:`biotag.runtime.export.export_onnx`
for NER models -- TorchScript export with eager attention, ONNX Runtime's transformer
fusions (dropped when they change results), dynamic int8 quantisation -- with that
module's helpers; only the traced inputs (rendered relation examples) and the output
shape (``logits`` ``[batch, labels]``) differ. :class:`OnnxRelationClassifier` runs the
exported directory without PyTorch, with the same :class:`RelationEncoder` as the
PyTorch model (the tokenizer's ``tokenizer.json``, marker tokens included).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from biotag.errors import InputError
from biotag.relations.datasets import RelationTask
from biotag.relations.examples import Mention, RelationExample
from biotag.relations.model import (
    EncodedBatch,
    RelationEncoder,
    predict_batches,
    read_relation_metadata,
    softmax,
)

log = logging.getLogger(__name__)

QUANTIZE_MODES = ("none", "int8", "int8-fp32-embeddings")


def _samples(task: RelationTask) -> list[RelationExample]:
    """Examples of each argument type pair, for tracing and for checking the graphs."""
    text = "Treatment with compound X increased the expression of factor Y in patients with disease Z."
    out = []
    for i, (a, b) in enumerate(task.pairs[:3]):
        out.append(RelationExample(f"s{i}", text, Mention(15, 25, a), Mention(54, 62, b)))
    out.append(RelationExample("short", "X binds Y.", Mention(0, 1, task.pairs[0][0]), Mention(8, 9, task.pairs[0][1])))
    return out


def export_relation_model(model_dir: str | Path, out_dir: str | Path, *, quantize: str = "int8", optimize: bool = True, opset: int = 17, overwrite: bool = False, full_range: bool = False) -> Path:
    """Export the PyTorch relation model in ``model_dir`` to a new ONNX model directory
    (``full_range``: 8-bit int8 weights, as :func:`biotag.runtime.export.export_onnx`)."""
    import torch

    from biotag.relations.model import RelationClassifier
    from biotag.runtime.export import (
        MAX_OPSET,
        MIN_OPSET,
        ONNX_FILES,
        WEIGHT_FILES,
        _check_close,
        _check_target,
        _max_diff,
        _optimize,
        _quantize_dynamic,
        _write_companions,
        export_record,
        staged_directory,
    )
    from biotag.runtime.engine import INPUT_NAMES, OUTPUT_NAME

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown quantization {quantize!r} for a relation model; expected one of {', '.join(QUANTIZE_MODES)}", field="quantize")
    if not (isinstance(opset, int) and MIN_OPSET <= opset <= MAX_OPSET):
        raise InputError(f"opset must be an integer in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}", field="opset")
    meta = read_relation_metadata(model_dir)
    if meta.get("onnx") or not any((model_dir / n).is_file() for n in WEIGHT_FILES):
        raise InputError("no PyTorch weights: export from the trained model directory", path=str(model_dir), field="model")
    _check_target(model_dir, out_dir, overwrite)

    model = RelationClassifier.from_pretrained(model_dir)
    model.network.set_attn_implementation("eager")  # ORT fuses eager attention, not SDPA
    examples = _samples(model.task)
    rows = model.encoder.ids(examples)
    sample = model.encoder.collate(rows)
    trace = model.encoder.collate(rows[-2:])  # padded: the mask path is traced
    with torch.inference_mode():
        reference = model(torch.from_numpy(sample.input_ids), torch.from_numpy(sample.attention_mask)).numpy()

    with staged_directory(out_dir) as staging, tempfile.TemporaryDirectory(prefix="biotag-export-") as work:
        work = Path(work)
        exported = work / "exported.onnx"
        dynamic = {0: "batch", 1: "sequence"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings; the graph is checked on another shape
            torch.onnx.export(
                model.network,
                (torch.from_numpy(trace.input_ids),),
                str(exported),
                kwargs={"attention_mask": torch.from_numpy(trace.attention_mask)},
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes={**{name: dynamic for name in INPUT_NAMES}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        _check_close(exported, sample, reference, "the exported graph")
        graph, fusions = exported, None
        if optimize:
            graph, fusions = _optimize(exported, model.network.config, work / "optimized.onnx", sample, reference)
        target = staging / ONNX_FILES[quantize]
        if quantize == "none":
            shutil.copyfile(graph, target)
        else:
            _quantize_dynamic(graph, target, float_embeddings=quantize == "int8-fp32-embeddings", full_range=full_range)
        info = export_record(target, quantize, opset, fusions is not None, fusions, _max_diff(target, sample, reference), full_range=full_range)
        _write_companions(model, model_dir, staging, info)
    log.info("exported %s to %s", model_dir, out_dir / info["file"])
    return out_dir


class OnnxRelationClassifier:
    """Relation probabilities from an exported directory with ONNX Runtime on CPU."""

    def __init__(self, session, encoder: RelationEncoder, task: RelationTask, *, model_file: Path, metadata: dict[str, Any]) -> None:
        self.session, self.encoder, self.task = session, encoder, task
        self.model_file, self.metadata = model_file, metadata

    @property
    def labels(self) -> tuple[str, ...]:
        return self.task.all_labels

    @property
    def style(self) -> str:
        return self.encoder.style

    @classmethod
    def from_pretrained(cls, directory: str | Path, threads: int | None = None) -> "OnnxRelationClassifier":
        from tokenizers import Tokenizer

        from biotag.runtime.engine import TOKENIZER_FILE, _model_file, _session, _special_token_names

        directory = Path(directory)
        meta = read_relation_metadata(directory)
        model_file = _model_file(directory, meta, None)
        session = _session(model_file, threads, meta.get("onnx"))
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            raise InputError("no tokenizer.json: the ONNX engine needs a fast tokenizer file", path=str(path), field="tokenizer")
        backend = Tokenizer.from_file(str(path))
        pad = _special_token_names(directory).get("pad_token")
        pad_id = backend.token_to_id(pad) if pad is not None else None
        task = RelationTask.from_dict(meta["task"])
        encoder = RelationEncoder(backend, task, meta["style"], int(meta["max_length"]), pad_id or 0)
        return cls(session, encoder, task, model_file=model_file, metadata=meta)

    def _run(self, batch: EncodedBatch) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask})
        return logits

    def predict_logits(self, examples: Sequence[RelationExample], *, batch_size: int = 64) -> np.ndarray:
        return predict_batches(self.encoder, self._run, examples, batch_size, len(self.labels))

    def predict_proba(self, examples: Sequence[RelationExample], *, batch_size: int = 64) -> np.ndarray:
        return softmax(self.predict_logits(examples, batch_size=batch_size))


def load_relation_model(path: str | Path, *, backend: str = "auto", threads: int | None = None):
    """A relation model directory: the ONNX Runtime engine when it holds an export
    (``backend="auto"`` or ``"onnx"``), else the PyTorch model."""
    directory = Path(path)
    read_relation_metadata(directory)
    has_onnx = any(directory.glob("*.onnx"))
    if backend == "onnx" or (backend == "auto" and has_onnx):
        return OnnxRelationClassifier.from_pretrained(directory, threads=threads)
    if backend not in ("auto", "torch"):
        raise InputError(f"unknown backend {backend!r}; expected auto, onnx or torch", field="backend")
    if not (directory / "model.safetensors").is_file():
        raise InputError("no PyTorch weights in this model directory; use backend='onnx'", path=str(directory), field="backend")
    import torch

    from biotag.relations.model import RelationClassifier

    if threads:
        torch.set_num_threads(threads)
    return RelationClassifier.from_pretrained(directory)
