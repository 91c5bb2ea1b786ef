"""Plan and run the configurations of one ``biotag bench``, each in a fresh subprocess.

For every PyTorch model directory given: the Hugging Face pipeline (the first PyTorch
model only, with ``hf_pipeline``), biotag on PyTorch fp32, and the ONNX exports asked
for (fp32, dynamic int8, static int8), made here under ``OUT/exports`` and reused by
later runs while they are newer than the weights. An ONNX model directory given (the
bundled default, a calibrated export, a student) is one configuration as it is.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from itertools import islice
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from biotag.errors import InputError

log = logging.getLogger(__name__)

# export kind -> variant (biotag export's --quantize); "-full-range" after an int8 kind adds --full-range
EXPORTS = {"fp32": "none", "int8": "int8", "int8-fp32-embeddings": "int8-fp32-embeddings", "static": "static"}
FULL_RANGE = "-full-range"
EXPORTS.update({f"{kind}{FULL_RANGE}": f"{kind}{FULL_RANGE}" for kind in ("int8", "int8-fp32-embeddings")})
BACKEND_LABELS = {"hf": "HF pipeline", "torch": "biotag torch fp32", "none": "ORT fp32", "int8": "ORT int8", "int8-fp32-embeddings": "ORT int8, fp32 embeddings", "static": "ORT static int8"}
BACKEND_LABELS.update({f"{v}{FULL_RANGE}": f"{BACKEND_LABELS[v]}, 8-bit weights" for v in ("int8", "int8-fp32-embeddings")})
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class Config:
    """One measured configuration."""

    name: str  # e.g. "all-types-l6 · ORT int8"
    model: str  # the model's short name
    kind: str  # "hf" or "biotag"
    backend: str  # "torch" or "onnx"
    model_dir: str
    variant: str  # "hf", "torch", or an EXPORTS variant
    file: str | None = None  # the ONNX file
    size_mb: float = 0.0
    source: str = ""  # the model directory given on the command line
    details: dict[str, Any] = field(default_factory=dict)


def model_name(directory: Path, taken: set[str]) -> str:
    from biotag.api import DEFAULT_MODEL

    if directory.resolve() == DEFAULT_MODEL.resolve():
        name = "default (bundled)"
    else:
        name = directory.parent.name if directory.name in ("model", "final", "best") else directory.name
    base, n = name, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def describe(directory: Path) -> dict[str, Any]:
    """Encoder shape and label schema of a model directory."""
    from biotag.models.metadata import read_metadata

    metadata, schema = read_metadata(directory)
    info: dict[str, Any] = {"types": list(schema.types), "scheme": schema.scheme}
    config_file = directory / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        info.update({k: config.get(k) for k in ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size")})
        if config.get("biotag_pruned_heads"):
            info["pruned_heads"] = sum(map(len, config["biotag_pruned_heads"].values()))
    if metadata.get("onnx"):
        info["quantize"] = metadata["onnx"].get("quantize")
    return info


def plan(
    models: Sequence[str | Path],
    out_dir: Path,
    *,
    hf_pipeline: bool = True,
    exports: Sequence[str] = ("fp32", "int8"),
    calibration_words: Sequence[Sequence[str]] | None = None,
    threads: int = 2,
) -> list[Config]:
    """The configurations for ``models``; exports missing under ``out_dir/exports`` are made now."""
    unknown = [e for e in exports if e not in EXPORTS]
    if unknown:
        raise InputError(f"unknown export {unknown[0]!r}; expected some of {', '.join(EXPORTS)}", field="export")
    if "static" in exports and not calibration_words:
        raise InputError("a static int8 export needs calibration text (--calibration)", field="calibration")
    configs: list[Config] = []
    taken: set[str] = set()
    hf_done = not hf_pipeline
    for given in models:
        directory = Path(given)
        if not (directory / "biotag.json").is_file():
            raise InputError("not a biotag model directory (no biotag.json)", path=str(directory), field="model")
        name = model_name(directory, taken)
        details = describe(directory)
        onnx = json.loads((directory / "biotag.json").read_text(encoding="utf-8")).get("onnx")
        if onnx:
            variant = onnx.get("quantize", "int8")
            variant = f"{variant}{FULL_RANGE}" if onnx.get("weight_bits") == 8 and f"{variant}{FULL_RANGE}" in EXPORTS else variant
            configs.append(
                Config(f"{name} · {BACKEND_LABELS.get(variant, variant)}", name, "biotag", "onnx", str(directory), variant,
                       onnx.get("file"), _size_mb(directory / onnx.get("file", "")), str(directory), details)  # fmt: skip
            )
            continue
        weights = next((directory / w for w in WEIGHT_FILES if (directory / w).is_file()), None)
        if weights is None:
            raise InputError("neither an ONNX export nor PyTorch weights", path=str(directory), field="model")
        size = _size_mb(weights)
        if not hf_done and not details.get("pruned_heads"):  # HF cannot load a head-pruned model
            configs.append(Config(f"{name} · HF pipeline", name, "hf", "torch", str(directory), "hf", None, size, str(directory), details))
            hf_done = True
        configs.append(Config(f"{name} · biotag torch fp32", name, "biotag", "torch", str(directory), "torch", None, size, str(directory), details))
        for export in exports:
            quantize = EXPORTS[export]
            target = out_dir / "exports" / f"{name}-{export}"
            _export(directory, weights, target, quantize, calibration_words, threads)
            file = json.loads((target / "biotag.json").read_text(encoding="utf-8"))["onnx"]["file"]
            configs.append(
                Config(f"{name} · {BACKEND_LABELS[quantize]}", name, "biotag", "onnx", str(target), quantize, file,
                       _size_mb(target / file), str(directory), details)  # fmt: skip
            )
    return configs


def _export(source: Path, weights: Path, target: Path, quantize: str, calibration_words, threads: int) -> None:
    marker = target / "biotag.json"
    if marker.is_file() and marker.stat().st_mtime >= weights.stat().st_mtime:
        log.info("reusing the export %s", target)
        return
    import torch

    from biotag.runtime.export import export_onnx

    torch.set_num_threads(threads)
    log.info("exporting %s -> %s (%s)", source, target, quantize)
    full_range = quantize.endswith(FULL_RANGE)
    export_onnx(
        source, target, quantize=quantize.removesuffix(FULL_RANGE), calibration_words=calibration_words if quantize == "static" else None,
        overwrite=True, full_range=full_range,
    )  # fmt: skip


def _size_mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 2) if path.is_file() else 0.0


def run_all(
    configs: Sequence[Config],
    out_dir: Path,
    *,
    data: Path,
    limit: int | None = None,
    threads: int = 2,
    latency_docs: int = 100,
    eval_corpora: Sequence[str] = (),
    eval_split: str = "devel",
    hf_batch_size: int = 1,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Measure every configuration in its own subprocess; a failure is recorded in its
    result (``error``) and the others still run."""
    from biotag.pretrain.data import read_text_file

    work = out_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    texts = [doc.text for doc in islice(read_text_file(data), limit)]
    if not texts:
        raise InputError("no documents to benchmark", path=str(data), field="data")
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    results = []
    for index, config in enumerate(configs):
        spec = {
            **asdict(config), "texts": str(texts_file), "threads": threads, "latency_docs": latency_docs,
            "eval_corpora": list(eval_corpora), "eval_split": eval_split, "hf_batch_size": hf_batch_size,
        }  # fmt: skip
        stem = f"{index:02d}"
        spec_file, result_file, log_file = work / f"{stem}.spec.json", work / f"{stem}.result.json", work / f"{stem}.log"
        spec_file.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        result_file.unlink(missing_ok=True)
        log.info("measuring %s", config.name)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        started = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
        with open(log_file, "w", encoding="utf-8") as log_handle:
            try:
                code = subprocess.run(
                    [sys.executable, "-m", "biotag.bench.worker", str(spec_file), str(result_file)],
                    stdout=log_handle, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False,
                ).returncode  # fmt: skip
            except subprocess.TimeoutExpired:
                code = "timeout"
        entry: dict[str, Any] = {**asdict(config)}
        if code == 0 and result_file.is_file():
            entry.update(json.loads(result_file.read_text(encoding="utf-8")))
        else:
            tail = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            entry["error"] = f"worker exit {code}: " + " | ".join(tail)
            log.error("%s failed: %s", config.name, entry["error"])
        entry["wall_s"] = round(time.perf_counter() - started, 1)
        # other work on the machine shows here: compare only configurations measured alike
        entry["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)] if load_before is not None else None
        results.append(entry)
    add_ratios(results)
    return results


def add_ratios(results: list[dict[str, Any]]) -> None:
    """``vs_reference``: speed, latency, memory and size against the HF pipeline (or, when
    it was not run, the first configuration measured)."""
    ok = [r for r in results if "error" not in r]
    reference = next((r for r in ok if r["kind"] == "hf"), ok[0] if ok else None)
    if reference is None:
        return
    for r in ok:
        r["reference"] = reference["name"]
        r["vs_reference"] = {
            "tokens_per_s": _ratio(r["tokens_per_s"], reference["tokens_per_s"]),
            "docs_per_s": _ratio(r["docs_per_s"], reference["docs_per_s"]),
            "latency_p50": _ratio(r["latency_p50_ms"], reference["latency_p50_ms"]),
            "peak_rss": _ratio(r["peak_rss_mb"], reference["peak_rss_mb"]),
            "size": _ratio(r["size_mb"], reference["size_mb"]),
        }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None
