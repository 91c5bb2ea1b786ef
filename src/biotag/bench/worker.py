"""Measure one benchmark configuration in this process (run by :mod:`biotag.bench.run`
in a fresh subprocess per configuration, so that peak RSS and warm caches are its own).

``python -m biotag.bench.worker SPEC.json RESULT.json``: ``SPEC`` says what to run
(``kind`` ``hf`` = the Hugging Face ``pipeline("token-classification",
aggregation_strategy="simple")``, given single-label BIO scores when the model has a
multilabel head: :func:`hf_pipeline`; or ``biotag`` with ``backend`` ``torch`` / ``onnx``), on
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
        from biotag.evaluation import corpus_scoring, evaluate_tagger
        from biotag.ner import NerTagger

        types, type_map = corpus_scoring(corpus, annotator.tagger.predictor.schema.types)
        report = evaluate_tagger(NerTagger(annotator.tagger.predictor), read_corpus(corpus, split), types=types, type_map=type_map)
        return _f1(report)

    return tag_many, tag_one, evaluate


def _f1(report) -> float:
    """Micro F1 over the corpus's types, in percent."""
    return round(100 * report.micro.f1, 2)


# -- Hugging Face pipeline --------------------------------------------------------------
def multilabel_to_bio_logits(logits, n_types: int):
    """A ``multilabel`` head's logits (an O/B/I triple per type, each its own softmax;
    shape ``[..., 3 * n_types]``) as log-scores of the ``1 + 2 * n_types`` single-label
    outcomes of a ``bio`` head (``O``, ``B-t``, ``I-t`` in :class:`LabelSchema` order):
    ``O`` is every type O, ``B-t`` / ``I-t`` is type t B / I and every other type O -- their
    joint probability under the head's independent per-type softmaxes. The pipeline's own
    softmax over these renormalises them, so its argmax is the most probable labelling with
    at most one type per token (the pipeline's output cannot hold overlapping types)."""
    import torch

    log_p = torch.log_softmax(logits.unflatten(-1, (n_types, 3)).float(), dim=-1)  # [..., type, O/B/I]
    all_o = log_p[..., 0].sum(-1, keepdim=True)
    others_o = all_o - log_p[..., 0]  # every type but this one O
    b_and_i = log_p[..., 1:] + others_o.unsqueeze(-1)  # [..., type, B/I]
    return torch.cat([all_o, b_and_i.flatten(-2)], dim=-1)


def hf_pipeline(model, tokenizer, schema, *, stride: int):
    """``pipeline("token-classification", aggregation_strategy="simple")`` over a biotag
    model. A ``bio`` head is what the pipeline expects; a ``multilabel`` one is not (a
    softmax over all its outputs mixes independent per-type decisions, and F1 collapses to
    a few points), so its logits are rewritten by
    :func:`multilabel_to_bio_logits` in the pipeline's forward step -- the ten lines a user
    of such a model must add -- and the model is given the matching ``bio`` label names."""
    from transformers import TokenClassificationPipeline, pipeline

    from biotag.labels import LabelSchema

    kind = TokenClassificationPipeline
    if schema.scheme == "multilabel":
        n_types = len(schema.types)

        class MultilabelTokenClassificationPipeline(TokenClassificationPipeline):
            def _forward(self, model_inputs):
                outputs = super()._forward(model_inputs)
                outputs["logits"] = multilabel_to_bio_logits(outputs["logits"], n_types)
                return outputs

        kind = MultilabelTokenClassificationPipeline
    names = LabelSchema(schema.types, "bio").output_names
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}
    return pipeline(
        "token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple", device=-1, stride=stride,
        pipeline_class=kind,
    )  # fmt: skip


def _hf_runner(spec: dict[str, Any]):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from biotag.models.metadata import read_metadata

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(spec["threads"])
    directory = Path(spec["model_dir"])
    _, schema = read_metadata(directory)
    model = AutoModelForTokenClassification.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    # abstracts longer than the encoder's 512 positions are cut into overlapping windows
    # (without `stride` the pipeline fails on them)
    stride = min(spec.get("hf_stride", 128), tokenizer.model_max_length // 4)
    ner = hf_pipeline(model, tokenizer, schema, stride=stride)
    batch_size = spec.get("hf_batch_size", 1)

    def tag_many(texts):
        return ner(list(texts), batch_size=batch_size) if texts else []

    def tag_one(text):
        return ner(text)

    def evaluate(corpus: str, split: str) -> float:
        from biotag.corpora import read_corpus
        from biotag.evaluation import corpus_scoring, strip_entities
        from biotag.metrics import score_documents

        types, type_map = corpus_scoring(corpus, schema.types)
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
