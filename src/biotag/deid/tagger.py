"""The PHI tagger: a token-classification model and the rule recognisers together.

The model is any biotag word-level predictor (PyTorch or the ONNX Runtime engine, see
:func:`biotag.api.load_predictor`) trained on PHI spans by ``biotag train``. Instead of
its Viterbi decoding, which aims at F1, a word is PHI when the model gives it a PHI
probability (one minus that of ``O``) of at least ``threshold``: lowering it trades
precision for the recall de-identification needs. Consecutive PHI words form one span
unless the model says a word begins a new one (``B`` more likely than ``I``).

Model spans and rule spans are merged by union (:func:`~biotag.deid.spans.merge_spans`),
and every other whole-word occurrence of a detected string is added
(:func:`~biotag.deid.redact.propagate`), as the output will replace those too.

A model directory may hold ``deid.json`` (written by ``biotag evaluate-deid
--tune-threshold``): the threshold chosen on the devel split and the rule kinds, used
when the caller does not say otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from biotag.deid.redact import propagate
from biotag.deid.rules import RuleRecogniser
from biotag.deid.spans import UNTYPED, PhiSpan, merge_spans
from biotag.document import Document
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.ner import WordPredictor, sentence_word_offsets

DEID_CONFIG = "deid.json"
DEFAULT_THRESHOLD = 0.5


@dataclass
class WordScores:
    """One document's words with the model's PHI probability, whether each word would
    begin a span, and the most likely PHI type."""

    starts: np.ndarray
    ends: np.ndarray
    phi: np.ndarray  # P(not O)
    begins: np.ndarray  # P(B) >= P(I) for the word's most likely type
    types: list[str]

    def spans(self, threshold: float) -> list[PhiSpan]:
        out: list[PhiSpan] = []
        start = end = -1
        kind, score = UNTYPED, 0.0
        for i in range(len(self.phi)):
            inside = self.phi[i] >= threshold
            if start >= 0 and (not inside or self.begins[i]):
                out.append(PhiSpan(start, end, kind, "model", score))
                start = -1
            if inside:
                if start < 0:
                    start, kind, score = int(self.starts[i]), self.types[i], 0.0
                end, score = int(self.ends[i]), max(score, float(self.phi[i]))
        if start >= 0:
            out.append(PhiSpan(start, end, kind, "model", score))
        return out


def word_probabilities(schema: LabelSchema, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(PHI), begins, type index) per word from a model's raw scores."""
    n = scores.shape[0]
    if schema.scheme == "bio":
        logits = scores.astype(np.float64)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        b, i = p[:, 1::2], p[:, 2::2]  # [n, types]
        best = (b + i).argmax(-1)
        rows = np.arange(n)
        return 1.0 - p[:, 0], b[rows, best] >= i[rows, best], best
    logits = scores.reshape(n, len(schema.types), 3).astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    inside = 1.0 - p[:, :, 0]
    best = inside.argmax(-1)
    rows = np.arange(n)
    return inside[rows, best], p[rows, best, 1] >= p[rows, best, 2], best


class ModelRecogniser:
    """PHI probabilities per word from a word-level predictor."""

    def __init__(self, predictor: WordPredictor, *, batch_size: int = 32) -> None:
        self.predictor = predictor
        self.batch_size = batch_size

    def score(self, docs: Sequence[Document]) -> list[WordScores]:
        units = [(d, words) for d, doc in enumerate(docs) for words in sentence_word_offsets(doc) if words]
        word_lists = [[docs[d].text[a:b] for a, b in words] for d, words in units]
        scores = self.predictor.predict_words(word_lists, batch_size=self.batch_size) if word_lists else []
        schema = self.predictor.schema
        names = [UNTYPED if t.upper() == UNTYPED else t.upper() for t in schema.types]
        per_doc: list[list[tuple]] = [[] for _ in docs]
        for (d, words), sent in zip(units, scores):
            phi, begins, best = word_probabilities(schema, np.asarray(sent))
            per_doc[d].append((np.array(words, dtype=np.int64).reshape(-1, 2), phi, begins, best))
        out = []
        for parts in per_doc:
            if not parts:
                out.append(WordScores(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), []))
                continue
            offsets = np.concatenate([p[0] for p in parts])
            best = np.concatenate([p[3] for p in parts])
            out.append(
                WordScores(
                    offsets[:, 0], offsets[:, 1], np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]), [names[k] for k in best],
                )
            )
        return out


class PhiTagger:
    """Finds PHI spans in notes with a model, the rules, or both."""

    def __init__(
        self,
        model: ModelRecogniser | None = None,
        rules: RuleRecogniser | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        propagate: bool = True,
    ) -> None:
        if model is None and rules is None:
            raise InputError("a PHI tagger needs a model, rules or both", field="model")
        if not 0.0 < threshold <= 1.0:
            raise InputError(f"threshold must be in (0, 1], got {threshold}", field="threshold")
        self.model = model
        self.rules = rules
        self.threshold = threshold
        self.propagate = propagate

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None,
        *,
        use_rules: bool = True,
        rule_kinds: Sequence[str] | None = None,
        threshold: float | None = None,
        backend: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
    ) -> "PhiTagger":
        """A tagger from a model directory (its ``deid.json`` gives the defaults) and/or the rules."""
        settings: dict = {}
        model = None
        if model_dir is not None:
            from biotag.api import load_predictor

            model = ModelRecogniser(load_predictor(model_dir, threads=threads, backend=backend), batch_size=batch_size)
            settings = read_settings(model_dir)
        kinds = rule_kinds if rule_kinds is not None else settings.get("rules")
        rules = RuleRecogniser(kinds) if use_rules else None
        return cls(model, rules, threshold=threshold if threshold is not None else settings.get("threshold", DEFAULT_THRESHOLD))

    def find(self, docs: Sequence[Document], *, scores: Sequence[WordScores] | None = None) -> list[list[PhiSpan]]:
        """PHI spans per document; ``scores`` reuses model outputs (threshold sweeps)."""
        if self.model is not None and scores is None:
            scores = self.model.score(docs)
        out = []
        for i, doc in enumerate(docs):
            spans = list(scores[i].spans(self.threshold)) if scores is not None else []
            if self.rules is not None:
                spans += self.rules.find(doc.text)
            spans = merge_spans(spans)
            out.append(propagate(doc.text, spans) if self.propagate else spans)
        return out


def read_settings(model_dir: str | Path) -> dict:
    path = Path(model_dir) / DEID_CONFIG
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", path=str(path)) from None


def write_settings(model_dir: str | Path, settings: dict) -> Path:
    path = Path(model_dir) / DEID_CONFIG
    path.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    return path
