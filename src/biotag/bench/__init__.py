"""``biotag bench``: speed, memory, size and F1 of models side by side, in one run.

:func:`run_benchmark` plans the configurations (:mod:`biotag.bench.run`), measures each
in a fresh subprocess (:mod:`biotag.bench.worker`) and writes JSON, a markdown table and
a plot of F1 against tokens/s (:mod:`biotag.bench.report`). Speed is a benchmark, never a
test: compare ratios measured in the same run, since the CPU may be shared.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from biotag.bench import report
from biotag.bench.run import plan, run_all

__all__ = ["run_benchmark"]


def run_benchmark(
    models: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    data: str | os.PathLike,
    limit: int | None = None,
    threads: int = 2,
    hf_pipeline: bool = True,
    exports: Sequence[str] = ("fp32", "int8"),
    calibration_words=None,
    eval_corpora: Sequence[str] = (),
    eval_split: str = "devel",
    latency_docs: int = 100,
    hf_batch_size: int = 1,
    timeout: float | None = None,
    command: str = "",
    docs_file: str | os.PathLike | None = None,
    docs_key: str = "ner-speed",
) -> dict[str, Any]:
    """Run the benchmark; returns ``{"meta", "results", "paths"}``."""
    from biotag.errors import InputError

    out_dir, data = Path(out_dir), Path(data)
    if not data.is_file():
        raise InputError("benchmark text not found", path=str(data), field="data")
    configs = plan(models, out_dir, hf_pipeline=hf_pipeline, exports=exports, calibration_words=calibration_words, threads=threads)
    load_before = report.load_average()
    results = run_all(
        configs, out_dir, data=data, limit=limit, threads=threads, latency_docs=latency_docs,
        eval_corpora=eval_corpora, eval_split=eval_split, hf_batch_size=hf_batch_size, timeout=timeout,
    )  # fmt: skip
    docs = next((r["docs"] for r in results if "docs" in r), 0)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "data": str(data),
        "docs": docs,
        "limit": limit,
        "threads": threads,
        "latency_docs": latency_docs,
        "eval_corpora": list(eval_corpora),
        "eval_split": eval_split,
        "hf_batch_size": hf_batch_size,
        "hardware": report.hardware(),
        "load_before": load_before,
        "load_after": report.load_average(),
    }
    paths = report.write_outputs(results, meta, out_dir)
    if docs_file is not None:
        docs_file = Path(docs_file)
        image_dir = docs_file.parent / "img"
        image = f"img/{docs_key}.png"
        plot_copy = out_dir / f"{docs_key}.png"
        plot_copy.write_bytes(paths["plot"].read_bytes())
        report.update_docs(docs_file, docs_key, report.section(results, meta, image), plot_copy, image_dir)
        paths["docs"] = docs_file
    return {"meta": meta, "results": results, "paths": paths}
