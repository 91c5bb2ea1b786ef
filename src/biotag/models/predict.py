"""The windowed batching loop every word-level predictor shares (PyTorch, ONNX Runtime).

Only the forward pass differs between backends: ``run_batch`` takes a
:class:`~biotag.text.subwords.SubwordBatch` and returns float32 scores
``[n_owned_words, width]`` read at each owned word's first sub-word. This module needs
numpy only, so the ONNX engine can use it without importing PyTorch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from biotag.text.subwords import SubwordBatch, SubwordEncoder, scatter_words

BatchRunner = Callable[[SubwordBatch], np.ndarray]


def predict_windows(
    encoder: SubwordEncoder,
    run_batch: BatchRunner,
    word_lists: Sequence[Sequence[str]],
    width: int,
    batch_size: int = 32,
    features: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Per-word scores, float32 ``[n_words, width]`` per word list, in input order.

    Windows are batched shortest first so that each batch pads as little as possible;
    the scores of the words each window owns are scattered back into their sequences.
    ``features`` (a word list -> per-word feature rows) fills each batch's
    ``word_features`` from the whole sentence, whichever window owns the word.
    """
    encoding = encoder.encode(word_lists)
    windows = encoding.windows
    per_sequence = [features(words) for words in word_lists] if features is not None else None
    order = sorted(range(len(windows)), key=lambda k: len(windows[k]))
    outputs: list[np.ndarray] = [np.empty((0, width), np.float32)] * len(windows)
    for i in range(0, len(order), batch_size):
        chunk = order[i : i + batch_size]
        batch = encoder.collate([windows[k] for k in chunk])
        if per_sequence is not None:
            rows = [per_sequence[windows[k].sequence][windows[k].words] for k in chunk]
            batch = replace(batch, word_features=np.concatenate(rows))
        scores = np.asarray(run_batch(batch), dtype=np.float32)
        bounds = np.cumsum([len(windows[k].words) for k in chunk])[:-1]
        for k, rows in zip(chunk, np.split(scores, bounds)):
            outputs[k] = rows
    return scatter_words(windows, outputs, encoding.n_words, width)
