"""The teacher side of distillation: one trained model, or an ensemble of several whose
soft labels are averaged.

A teacher hands its student each word's label distribution
(:meth:`TokenClassifier.word_distributions`: CRF marginals for a CRF model, the softmax
of the scores otherwise). An ensemble's soft label is the arithmetic mean of its members'
distributions, per softmax group: the usual "averaged soft labels", which keeps a word
uncertain where the members disagree. Members may use different encoders and tokenizers
(they meet on words) and different decoders, but must predict the same types with the same
scheme. The first member is the primary teacher: the student's decoder, the layers kept by
``student_layers`` and hidden-state or attention transfer come from it.

A teacher may also be an ONNX export (``biotag export``; the bundled model is one): it hands
over the same distributions, computed by ONNX Runtime, but has no PyTorch network, so it
cannot give a student its layers or inner states.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from biotag.distill.soft_labels import teacher_fingerprint
from biotag.errors import InputError
from biotag.models.token_classifier import TokenClassifier

CRF_FORM = "crf-marginals"  # in the fingerprint: a CRF teacher's cache holds marginals, not its raw scores


class Teachers:
    """Trained teacher models loaded from ``dirs`` (the first is the primary one)."""

    def __init__(self, dirs: Sequence[str | Path]) -> None:
        if not dirs:
            raise InputError("a teacher model directory is needed", field="teacher")
        self.dirs = [str(d) for d in dirs]
        self.models = [load_teacher(d) for d in self.dirs]
        schema = self.models[0].schema
        for path, model in zip(self.dirs[1:], self.models[1:]):
            if model.schema != schema:
                raise InputError(
                    f"an ensemble's teachers must share types and scheme: {model.schema.scheme} {list(model.schema.types)}, "
                    f"not {schema.scheme} {list(schema.types)} as the first teacher",
                    path=path, field="teacher",
                )

    @property
    def primary(self) -> "TokenClassifier | OnnxTeacher":
        return self.models[0]

    def to(self, device: torch.device) -> "Teachers":
        for model in self.models:
            model.to(device)
        return self

    def fingerprint(self) -> str:
        """What decides the soft labels: each member's weights and files, and whether its
        distribution comes from a CRF. A single teacher without a CRF keeps the bare
        :func:`teacher_fingerprint`, so caches written before ensembles existed stay valid;
        the members' order does not matter."""
        parts = sorted(
            teacher_fingerprint(path) + (f"+{CRF_FORM}" if model.crf is not None else "") for path, model in zip(self.dirs, self.models)
        )
        if len(parts) == 1 and self.primary.crf is None:
            return parts[0]
        return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()

    def word_log_probs(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per sentence, float32 ``[n_words, num_outputs]``: the (mean) distribution of the
        teachers at each word, as log-probabilities."""
        outputs = [model.word_distributions(word_lists, batch_size=batch_size) for model in self.models]
        if len(outputs) == 1:
            return outputs[0]
        # each member's groups are normalised, so their mean is too; each row is >= the floor
        return [np.log(np.mean(np.exp(np.stack(rows)), axis=0)).astype(np.float32) for rows in zip(*outputs)]


def load_teacher(directory: str | Path) -> "TokenClassifier | OnnxTeacher":
    """A PyTorch model directory as a :class:`TokenClassifier`; an ONNX export (no PyTorch
    weights) as an :class:`OnnxTeacher`."""
    from biotag.models.metadata import read_metadata

    metadata, _ = read_metadata(directory)
    if metadata.get("onnx") and not (Path(directory) / "model.safetensors").is_file():
        return OnnxTeacher(directory)
    return TokenClassifier.from_pretrained(directory)


class OnnxTeacher:
    """An exported model as a teacher: the parts of :class:`TokenClassifier` a teacher's
    soft labels need (schema, decoder and CRF, card, encoder, ``word_distributions``);
    ``network`` is None."""

    network = None

    def __init__(self, directory: str | Path) -> None:
        from biotag.runtime.engine import OnnxTokenClassifier

        self.engine = OnnxTokenClassifier.from_pretrained(directory)
        self.schema = self.engine.schema
        self.decoder = self.engine.decoder
        self.crf = self.engine.crf
        self.encoder = self.engine.encoder
        self.encoder_name = self.engine.metadata.get("encoder", "")
        self.card = self.engine.metadata.get("training") or {}

    def to(self, device) -> "OnnxTeacher":  # ONNX Runtime runs on the CPU
        return self

    def eval(self) -> "OnnxTeacher":
        return self

    def word_distributions(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        from biotag.models.decoding import word_log_probs

        return [word_log_probs(self.schema, s, self.crf) for s in self.engine.predict_words(word_lists, batch_size=batch_size)]
