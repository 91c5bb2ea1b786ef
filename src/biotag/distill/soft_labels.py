"""The teacher-output cache: the teacher runs once over the training text, not each epoch.

Per word the cache keeps the teacher's label distribution as log-probabilities (read at
the word's first sub-word with the teacher's own tokenizer and windows; CRF marginals for a
CRF teacher, the mean over an ensemble: :mod:`biotag.distill.teachers`), so the student can
read them whatever tokenizer it has: the two models meet on words. Two compact forms:

* ``top_k = 0``: the fp16 log-probabilities (``num_outputs`` values per word; any
  logits of the same distribution would do);
* ``top_k = k``: per softmax group (one for ``bio``, one O/B/I group per type for
  ``multilabel``) the k largest probabilities in fp16 and their class ids (uint16);
  the rest of the group's probability mass is spread evenly over its other classes
  when restored. Restored scores are log-probabilities: as logits they give the same
  softmax at any temperature.

A cache lives in ``<root>/<teacher fingerprint>/`` (a hash of the teacher's weights and
label files, so a retrained teacher never reads stale outputs) as plain NumPy files,
read memory-mapped: ``keys.npy`` (uint8 ``[n, 16]``: a BLAKE2b hash of each sentence's words),
``offsets.npy`` (each sentence's first row; one more entry for the end),
``values.npy`` (fp16 rows) and, for top-k, ``indices.npy``, plus ``meta.json``. New
sentences are added by rewriting the folder atomically, at least every ``FLUSH_SECONDS`` while
a teacher runs; a run that is killed leaves the last complete cache and resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.training.checkpoint import existing_dir, replacing_dir

log = logging.getLogger(__name__)

KEY_BYTES = 16
FINGERPRINT_FILES = ("model.safetensors", "biotag.json", "config.json", "tokenizer.json", "biotag_heads.safetensors")
PREDICT_CHUNK = 4096  # sentences per teacher call, so progress shows in the log
FLUSH_SECONDS = 600.0  # a slow teacher's outputs are written at least this often, so a killed run keeps them


def text_key(words: Sequence[str], context: str = "") -> bytes:
    """The cache key of a sentence: a hash of its words (with a separator no word has), and
    of its ``context`` when the soft labels depend on more than the words (the corpus the
    sentence comes from, for corpus-aware type teachers)."""
    text = "\x1f".join(words)
    if context:
        text = f"{context}\x1e{text}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest()


def teacher_fingerprint(model_dir: str | Path) -> str:
    """A hash of the files that decide the teacher's outputs."""
    digest = hashlib.blake2b(digest_size=8)
    onnx = sorted(p.name for p in Path(model_dir).glob("*.onnx"))  # an exported teacher's weights
    for name in (*FINGERPRINT_FILES, *onnx):
        path = Path(model_dir) / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


# -- compact forms ----------------------------------------------------------------------
def _group_probs(scores: np.ndarray, schema: LabelSchema) -> np.ndarray:
    groups = len(schema.types) if schema.scheme == "multilabel" else 1
    x = scores.reshape(len(scores), groups, -1).astype(np.float64)
    x = np.exp(x - x.max(-1, keepdims=True))
    return x / x.sum(-1, keepdims=True)


def compress_scores(scores: np.ndarray, schema: LabelSchema, top_k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, indices)`` to store for float scores ``[n, num_outputs]``."""
    if top_k == 0:
        return scores.astype(np.float16), None
    probs = _group_probs(scores, schema)  # [n, groups, classes]
    top = np.argsort(-probs, axis=-1, kind="stable")[..., :top_k]
    values = np.take_along_axis(probs, top, axis=-1)
    return values.reshape(len(scores), -1).astype(np.float16), top.reshape(len(scores), -1).astype(np.uint16)


def restore_scores(values: np.ndarray, indices: np.ndarray | None, schema: LabelSchema, top_k: int) -> np.ndarray:
    """Float32 scores ``[n, num_outputs]`` from stored rows: the logits, or for top-k the
    log of the restored probabilities."""
    if top_k == 0:
        return values.astype(np.float32)
    n = len(values)
    groups = len(schema.types) if schema.scheme == "multilabel" else 1
    classes = schema.num_outputs // groups
    top_p = values.reshape(n, groups, top_k).astype(np.float64)
    top = indices.reshape(n, groups, top_k).astype(np.int64)
    rest = classes - top_k
    # the mass outside the top k, shared by the other classes (none when k covers all)
    left = np.clip(1.0 - top_p.sum(-1, keepdims=True), 0.0, None) / max(rest, 1)
    probs = np.broadcast_to(left, (n, groups, classes)).copy()
    np.put_along_axis(probs, top, top_p, axis=-1)
    probs /= probs.sum(-1, keepdims=True)
    return np.log(np.maximum(probs, 1e-8)).reshape(n, -1).astype(np.float32)


# -- the cache ----------------------------------------------------------------------------
class SoftLabelCache:
    """Teacher scores per word of the sentences it has seen, keyed by :func:`text_key`."""

    def __init__(self, root: str | Path, fingerprint: str, schema: LabelSchema, top_k: int = 0) -> None:
        groups = len(schema.types) if schema.scheme == "multilabel" else 1
        if not 0 <= top_k <= schema.num_outputs // groups:
            raise InputError(f"top-k must be in 0..{schema.num_outputs // groups} (0: fp16 logits), got {top_k}", field="soft_top_k")
        self.schema, self.top_k = schema, top_k
        self.folder = Path(root) / f"{fingerprint}-{'logits' if top_k == 0 else f'top{top_k}'}"
        self.meta = {"fingerprint": fingerprint, "schema": schema.to_dict(), "top_k": top_k}
        self._load()

    def _load(self) -> None:
        folder = existing_dir(self.folder)
        self.keys: dict[bytes, int] = {}
        self.offsets = np.zeros(1, dtype=np.int64)
        groups = len(self.schema.types) if self.schema.scheme == "multilabel" else 1
        self.values = np.zeros((0, self.schema.num_outputs if self.top_k == 0 else groups * self.top_k), dtype=np.float16)
        self.indices = None if self.top_k == 0 else np.zeros((0, groups * self.top_k), dtype=np.uint16)
        if folder is None:
            return
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if {k: meta.get(k) for k in self.meta} != self.meta:
            raise InputError(f"the cache was written for {meta}, not {self.meta}", path=str(folder))
        keys = np.load(folder / "keys.npy")  # uint8 [n, 16]: NumPy's bytes type would drop trailing zero bytes
        self.keys = {k.tobytes(): i for i, k in enumerate(keys)}
        self.offsets = np.load(folder / "offsets.npy")
        self.values = np.load(folder / "values.npy", mmap_mode="r")
        if self.top_k:
            self.indices = np.load(folder / "indices.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.keys)

    def add(
        self, word_lists: Sequence[Sequence[str]], predict: Callable[..., list[np.ndarray]], contexts: Sequence[str] | None = None
    ) -> int:
        """Run ``predict`` (word lists -> float scores ``[n_words, num_outputs]`` each; with
        ``contexts``, one per sentence and part of its key, ``predict(lists, contexts)``) over
        the sentences not cached yet and store its outputs; returns how many."""
        missing: dict[bytes, tuple[list[str], str]] = {}
        for i, words in enumerate(word_lists):
            context = contexts[i] if contexts is not None else ""
            key = text_key(words, context)
            if key not in self.keys and key not in missing:
                missing[key] = (list(words), context)
        if not missing:
            return 0
        keys = list(missing)
        lists, sentence_contexts = [w for w, _ in missing.values()], [c for _, c in missing.values()]
        done, flushed, last_flush = 0, 0, time.monotonic()
        values, indices = [], []
        for start in range(0, len(lists), PREDICT_CHUNK):
            chunk = lists[start : start + PREDICT_CHUNK]
            scores = predict(chunk) if contexts is None else predict(chunk, sentence_contexts[start : start + PREDICT_CHUNK])
            for words, s in zip(chunk, scores):
                if s.shape != (len(words), self.schema.num_outputs):
                    raise InputError(f"the teacher gave scores of shape {s.shape} for {len(words)} words", field="teacher")
            v, ix = compress_scores(np.concatenate(scores), self.schema, self.top_k)
            values.append(v)
            indices.append(ix)
            done = min(start + PREDICT_CHUNK, len(lists))
            log.info("teacher outputs: %d of %d new sentences", done, len(lists))
            if done == len(lists) or time.monotonic() - last_flush >= FLUSH_SECONDS:
                lengths = np.array([len(w) for w in lists[flushed:done]], dtype=np.int64)
                self._write(keys[flushed:done], lengths, np.concatenate(values), None if self.top_k == 0 else np.concatenate(indices))
                values, indices, flushed, last_flush = [], [], done, time.monotonic()
        return len(keys)

    def _write(self, keys: list[bytes], lengths: np.ndarray, values: np.ndarray, indices: np.ndarray | None) -> None:
        old_keys = sorted(self.keys, key=self.keys.get)
        all_keys = np.frombuffer(b"".join(old_keys + keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        with replacing_dir(self.folder) as tmp:
            np.save(tmp / "keys.npy", all_keys)
            np.save(tmp / "offsets.npy", offsets)
            np.save(tmp / "values.npy", np.concatenate([np.asarray(self.values), values]))
            if indices is not None:
                np.save(tmp / "indices.npy", np.concatenate([np.asarray(self.indices), indices]))
            meta = {**self.meta, "sentences": len(all_keys), "words": int(offsets[-1])}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        self._load()

    def starts(self, word_lists: Sequence[Sequence[str]], contexts: Sequence[str] | None = None) -> np.ndarray:
        """The first cache row of each sentence (all must be cached)."""
        out = np.empty(len(word_lists), dtype=np.int64)
        for i, words in enumerate(word_lists):
            index = self.keys.get(text_key(words, contexts[i] if contexts is not None else ""))
            if index is None:
                raise InputError(f"sentence {i} is not in the teacher cache {self.folder}", field="soft_cache")
            out[i] = self.offsets[index]
        return out

    def sentence_scores(self, word_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Float32 scores ``[n_words, num_outputs]`` of each (cached) sentence."""
        return [self.scores(start + np.arange(len(words))) for start, words in zip(self.starts(word_lists), word_lists)]

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Float32 teacher scores ``[len(rows), num_outputs]`` of the given cache rows."""
        values = self.values[rows]
        return restore_scores(values, None if self.indices is None else self.indices[rows], self.schema, self.top_k)
