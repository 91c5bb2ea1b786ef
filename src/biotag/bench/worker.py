"""Measure one benchmark configuration in this process (run by :mod:`biotag.bench.run`
in a fresh subprocess per configuration, so that peak RSS and warm caches are its own).

``python -m biotag.bench.worker SPEC.json RESULT.json``: ``SPEC`` says what to run
(``kind`` ``hf`` = the Hugging Face ``pipeline("token-classification",
aggregation_strategy="simple")``, or ``biotag`` with ``backend`` ``torch`` / ``onnx``), on
which texts (a JSON list the parent wrote) and corpora; ``RESULT`` receives speed, memory
and F1.

Timed: text in, entities out (the biotag pipeline's sentence splitting, windowing,
batching, decoding; the HF pipeline's tokenization, forward pass and aggregation) after
a warm-up of a few documents; loading is timed apart. Not timed: counting WordPiece
tokens (with the model's own tokenizer, special tokens left out) and F1.

Only the ``hf`` and ``torch`` kinds import PyTorch: an ONNX configuration's RSS is what a
PyTorch-free deployment would use.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

WARMUP_DOCS = 8


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    texts = json.loads(Path(spec["texts"]).read_text(encoding="utf-8"))
    start = time.perf_counter()
    runner = _hf_runner(spec) if spec["kind"] == "hf" else _biotag_runner(spec)
    load_s = time.perf_counter() - start
    tag_many, tag_one, evaluate = runner
    tag_many(texts[:WARMUP_DOCS])

    start = time.perf_counter()
    entities = sum(len(found) for found in tag_many(texts))
    seconds = time.perf_counter() - start
    latencies = []
    for text in texts[: spec.get("latency_docs", 100)]:
        t = time.perf_counter()
        tag_one(text)
        latencies.append(time.perf_counter() - t)
    peak_rss_mb = peak_rss() / 2**20  # of the benchmark itself, before the corpora are read for F1
    f1 = {corpus: evaluate(corpus, spec.get("eval_split", "devel")) for corpus in spec.get("eval_corpora", [])}
    tokens = count_wordpieces(Path(spec["model_dir"]), texts)
    return {
        "docs": len(texts),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "docs_per_s": round(len(texts) / seconds, 2),
        "latency_p50_ms": round(_percentile(latencies, 50) * 1000, 2),
        "latency_p95_ms": round(_percentile(latencies, 95) * 1000, 2),
        "latency_docs": len(latencies),
        "load_s": round(load_s, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "entities": entities,
        "f1": f1,
    }


def peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM of the process's own memory
    map, not ``ru_maxrss``, which on Linux carries the parent's peak across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB elsewhere too (not macOS)


def count_wordpieces(model_dir: Path, texts: Sequence[str]) -> int:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return sum(len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False))


def _percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


# -- biotag ----------------------------------------------------------------------------
def _biotag_runner(spec: dict[str, Any]):
    import biotag
    from biotag.document import Document

    annotator = biotag.load(
        spec["model_dir"], steps="sentences,ner", threads=spec["threads"], backend=spec["backend"], batch_size=spec.get("batch_size", 32)
    )
    if spec.get("file"):  # a chosen ONNX file of a directory holding several
        from biotag.runtime.engine import OnnxTokenClassifier

        annotator.tagger.predictor = OnnxTokenClassifier.from_pretrained(spec["model_dir"], threads=spec["threads"], file=spec["file"])

    def tag_many(texts):
        docs = annotator([Document(id=str(i), text=t) for i, t in enumerate(texts)])
        return [d.entities for d in docs]

    def tag_one(text):
        return annotator(text).entities

    def evaluate(corpus: str, split: str) -> float:
        from biotag.corpora import read_corpus
        from biotag.evaluation import evaluate_tagger
        from biotag.ner import NerTagger

        types, type_map = _scored_types(corpus)
        report = evaluate_tagger(NerTagger(annotator.tagger.predictor), read_corpus(corpus, split), types=types, type_map=type_map)
        return _f1(report)

    return tag_many, tag_one, evaluate


def _scored_types(corpus: str):
    """As ``biotag evaluate``: the corpus's types on biotag's unified inventory."""
    from biotag.corpora import resolve
    from biotag.entity_types import default_type_map

    spec, tmap = resolve(corpus), default_type_map()
    types = {tmap.unify(t) or t for t in spec.types} if getattr(spec, "types", None) else None
    return types, tmap.as_dict()


def _f1(report) -> float:
    """Micro F1 over the corpus's types, in percent."""
    return round(100 * report.micro.f1, 2)


# -- Hugging Face pipeline --------------------------------------------------------------
def hf_label_names(output_names: Sequence[str], scheme: str) -> dict[int, str]:
    """Labels the HF pipeline's decoding understands. A ``bio`` head's names already are
    (``O``, ``B-t``, ``I-t``). A ``multilabel`` head (an O/B/I triple per type, each a
    softmax of its own) is renamed ``t:B`` -> ``B-t``, ``t:I`` -> ``I-t``, ``t:O`` -> ``O``:
    the pipeline then takes the argmax over all outputs at once, which is what a user of
    the pipeline gets from such a model; the cost is the same, the F1 is lower than the
    head's own per-type decoding."""
    if scheme != "multilabel":
        return dict(enumerate(output_names))
    names = {}
    for i, name in enumerate(output_names):
        entity_type, _, tag = name.rpartition(":")
        names[i] = "O" if tag == "O" else f"{tag}-{entity_type}"
    return names


def _hf_runner(spec: dict[str, Any]):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from biotag.models.metadata import read_metadata

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(spec["threads"])
    directory = Path(spec["model_dir"])
    _, schema = read_metadata(directory)
    model = AutoModelForTokenClassification.from_pretrained(directory)
    model.config.id2label = hf_label_names(schema.output_names, schema.scheme)
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    tokenizer = AutoTokenizer.from_pretrained(directory)
    # abstracts longer than the encoder's 512 positions are cut into overlapping windows
    # (without `stride` the pipeline fails on them)
    stride = min(spec.get("hf_stride", 128), tokenizer.model_max_length // 4)
    ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device=-1, stride=stride)
    batch_size = spec.get("hf_batch_size", 1)

    def tag_many(texts):
        return ner(list(texts), batch_size=batch_size) if texts else []

    def tag_one(text):
        return ner(text)

    def evaluate(corpus: str, split: str) -> float:
        from biotag.corpora import read_corpus
        from biotag.evaluation import strip_entities
        from biotag.metrics import score_documents

        types, type_map = _scored_types(corpus)
        gold = list(read_corpus(corpus, split))
        predicted = [strip_entities(d) for d in gold]
        found = tag_many([d.text for d in predicted])
        for doc, entities in zip(predicted, found):
            add_hf_entities(doc, entities)
        return _f1(score_documents(gold, predicted, types=types, type_map=type_map))

    return tag_many, tag_one, evaluate


def add_hf_entities(doc, entities: list[dict[str, Any]]) -> None:
    """The pipeline's grouped entities as Document entities (offsets trimmed of the spaces
    the grouping may include)."""
    for e in entities:
        start, end = int(e["start"]), int(e["end"])
        while start < end and doc.text[start].isspace():
            start += 1
        while end > start and doc.text[end - 1].isspace():
            end -= 1
        if end > start:
            doc.add_entity(start, end, e["entity_group"], score=round(float(e["score"]), 4), source="hf-pipeline")


def main(argv: Sequence[str] | None = None, measure_fn: Callable[[dict], dict] = measure) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print("usage: python -m biotag.bench.worker SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = measure_fn(spec)
    Path(argv[1]).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
