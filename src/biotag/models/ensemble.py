"""Several trained NER models used as one predictor.

Each member hands over its own label distribution at each word (``word_distributions`` of the
PyTorch model or the ONNX Runtime engine: a CRF model's marginals, others the softmax of their
scores); the ensemble's distribution is the mean of the members', and its spans are the
BIO-constrained Viterbi path through the mean. Members meet on words, so they may use different encoders,
tokenizers, backends (PyTorch or an ONNX export) and decoders, but they must predict the same
types with the same scheme. This is the averaged soft label that an ensemble of teachers
gives a student (:mod:`biotag.distill.teachers`), used here to predict and to be evaluated.

The mean of CRF marginals carries no transition scores, so an ensemble decodes with
``viterbi`` (or ``greedy``), never ``crf``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from biotag.errors import InputError
from biotag.labels import LabelSchema, TokenSpan
from biotag.models.decoding import LOG_FLOOR, decode_scores

ENSEMBLE_DECODERS = ("viterbi", "greedy")


def mean_distribution(log_probs: np.ndarray) -> np.ndarray:
    """The mean of the members' distributions (axis 0, as log-probabilities), floored."""
    return np.maximum(np.log(np.mean(np.exp(log_probs), axis=0)), LOG_FLOOR).astype(np.float32)


class EnsemblePredictor:
    """A word-level predictor (:class:`~biotag.ner.WordPredictor`) whose scores are the mean
    of its members' word distributions (log-probabilities)."""

    def __init__(self, members: Sequence, *, names: Sequence[str] | None = None, decoder: str = "viterbi") -> None:
        if len(members) < 2:
            raise InputError(f"an ensemble needs at least two models, got {len(members)}", field="model")
        names = list(names) if names is not None else [repr(m) for m in members]
        schema = members[0].schema
        for name, member in zip(names[1:], members[1:]):
            if member.schema != schema:
                raise InputError(
                    f"an ensemble's models must predict the same types with the same scheme: {member.schema.scheme} "
                    f"{list(member.schema.types)}, not {schema.scheme} {list(schema.types)} as the first model",
                    path=name,
                    field="model",
                )
        self.members = list(members)
        self.names = names
        self.schema: LabelSchema = schema
        self.decoder = decoder

    @property
    def decoder(self) -> str:
        return self._decoder

    @decoder.setter
    def decoder(self, value: str) -> None:
        if value not in ENSEMBLE_DECODERS:
            raise InputError(
                f"an ensemble decodes the mean of its models' distributions, which has no CRF transitions: "
                f"use one of {', '.join(ENSEMBLE_DECODERS)}, not {value!r}",
                field="decoder",
            )
        self._decoder = value

    def __repr__(self) -> str:
        return f"EnsemblePredictor({self.names!r}, types={list(self.schema.types)}, scheme={self.schema.scheme!r})"

    def predict_words(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per word list, float32 ``[n_words, num_outputs]``: the members' mean distribution as
        log-probabilities, in input order."""
        outputs = [m.word_distributions(word_lists, batch_size=batch_size) for m in self.members]
        return [mean_distribution(np.stack(rows)) for rows in zip(*outputs)]

    def decode(self, scores: np.ndarray, *, constrained: bool = True) -> list[tuple[TokenSpan, float]]:
        return decode_scores(self.schema, scores, self.decoder, constrained=constrained)
