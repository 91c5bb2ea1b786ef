"""Outputs of ``biotag bench``: ``results.json``, ``results.md`` (a table), ``frontier.png``
(F1 against WordPiece tokens/s) and, optionally, a section of ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any, Sequence

SECTION_START = "<!-- biotag-bench:{key}:start -->"
SECTION_END = "<!-- biotag-bench:{key}:end -->"


def hardware() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def mean_f1(result: dict[str, Any]) -> float | None:
    values = [v for v in (result.get("f1") or {}).values() if v is not None]
    return round(sum(values) / len(values), 2) if values else None


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(results: Sequence[dict[str, Any]], corpora: Sequence[str]) -> str:
    head = ["configuration", "size (MB)", "tokens/s", "docs/s", "p50 (ms)", "p95 (ms)", "peak RSS (MB)"]
    head += [f"F1 {c}" for c in corpora] + ["speed ×", "RSS ×", "size ×", "load 1m"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | {_fmt(r['size_mb'], 1)} | failed: {r['error'][:80]} |" + " |" * (len(head) - 3))
            continue
        ratios = r.get("vs_reference") or {}
        cells = [
            r["name"], _fmt(r["size_mb"], 1), _fmt(r["tokens_per_s"]), _fmt(r["docs_per_s"], 1),
            _fmt(r["latency_p50_ms"], 1), _fmt(r["latency_p95_ms"], 1), _fmt(r["peak_rss_mb"]),
        ]  # fmt: skip
        cells += [_fmt((r.get("f1") or {}).get(c), 2) for c in corpora]
        cells += [_fmt(ratios.get(k), 2) for k in ("tokens_per_s", "peak_rss", "size")]
        load = r.get("load_1m")
        cells.append(f"{load[0]:.1f}→{load[1]:.1f}" if load else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """F1 (mean over the evaluated corpora) against tokens/s, log scale; without F1, the
    model size stands on the y axis instead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "error" not in r]
    with_f1 = any(mean_f1(r) is not None for r in ok)
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for number, r in enumerate(ok, 1):
        y = mean_f1(r) if with_f1 else r["size_mb"]
        if y is None:
            continue
        marker = "s" if r["kind"] == "hf" else ("o" if r["backend"] == "onnx" else "^")
        ax.scatter(r["tokens_per_s"], y, marker=marker, s=50, label=f"{number}. {r['name']}")
        # numbers beside the points, names in the legend: names of close points would overlap
        ax.annotate(str(number), (r["tokens_per_s"], y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if str(int(x))[0] in "25" else ""))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xlabel("WordPiece tokens/s, text in, entities out (log scale)")
    ax.set_ylabel("mean F1 (%) over the evaluated corpora" if with_f1 else "model size (MB)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_outputs(results: list[dict[str, Any]], meta: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    corpora = meta.get("eval_corpora", [])
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md", "plot": out_dir / "frontier.png"}
    paths["json"].write_text(json.dumps({"meta": meta, "results": results}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown_table(results, corpora), encoding="utf-8")
    title = f"biotag bench {meta['date']} · {meta['docs']} docs · {meta['threads']} threads · {meta['hardware']['cpu']}"
    plot(results, paths["plot"], title)
    return paths


def section(results: list[dict[str, Any]], meta: dict[str, Any], image: str) -> str:
    hw = meta["hardware"]
    corpora = meta.get("eval_corpora", [])
    lines = [
        f"### {meta['date']} · {meta['docs']} documents of `{Path(meta['data']).name}`",
        "",
        f"- Command: `{meta['command']}`",
        f"- Hardware: {hw['cpu']}, {hw['cores']} cores, {hw['memory_gib']} GiB; Python {hw['python']}, {hw['os']}; "
        f"{meta['threads']} inference threads; 1-min load average {meta['load_before']} before, {meta['load_after']} after",
        f"- Speed: WordPiece tokens (the model's own tokenizer, no special tokens) per second of text in, entities out, "
        f"after a warm-up; p50/p95: one document per call over the first {meta['latency_docs']} documents; "
        f"peak RSS of the configuration's own process over loading and annotating (before F1); size: the weights file",
    ]
    if corpora:
        lines.append(f"- F1: strict micro F1 (%) on the {meta['eval_split']} split, each corpus on the types it annotates")
    reference = next((r.get("reference") for r in results if r.get("reference")), None)
    if reference:
        lines.append(f"- ×: ratio against `{reference}` measured in the same run; load 1m: the machine's 1-minute load "
                     "average before → after each configuration (above the inference threads: other work was running)")
    lines += ["", markdown_table(results, corpora), f"![F1 against tokens/s]({image})", ""]
    return "\n".join(lines)


def update_docs(doc: Path, key: str, text: str, plot_file: Path, image_dir: Path) -> None:
    """Put ``text`` between this key's markers in ``doc`` (replacing what was there, else
    appended) and copy the plot beside it."""
    image_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plot_file, image_dir / plot_file.name)
    start, end = SECTION_START.format(key=key), SECTION_END.format(key=key)
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    current = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        updated = before + block + ("\n" + after if after else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    doc.write_text(updated, encoding="utf-8")
