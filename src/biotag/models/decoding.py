"""Per-word scores -> entity spans, by the decoder a model was trained for (NumPy only,
so the ONNX engine decodes exactly as PyTorch does).

``greedy``   each word takes its best label; a stray ``I`` starts an entity.
``viterbi``  the best label sequence that obeys BIO (:meth:`LabelSchema.decode`), with
             every allowed transition equally likely: the default, and what models
             without a ``decoder`` setting have always used.
``crf``      Viterbi under the transition, start and end scores a CRF layer learned
             (:mod:`biotag.models.crf`), BIO-forbidden transitions excluded; the
             confidence of a span is the mean CRF marginal probability of its labels.

A CRF runs one chain per entity type over O/B/I in the ``multilabel`` scheme (types are
independent there) and one chain over all ``1 + 2 * n_types`` labels in ``bio``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biotag.labels import LabelSchema, TokenSpan, _bio_transitions, _spans_from_ids, spans_from_tags, viterbi

DECODERS = ("greedy", "viterbi", "crf")


def chain_layout(schema: LabelSchema) -> tuple[int, int]:
    """``(chains, states per chain)`` of a schema's CRF."""
    return (len(schema.types), 3) if schema.scheme == "multilabel" else (1, schema.num_outputs)


def allowed_transitions(schema: LabelSchema) -> np.ndarray:
    """bool ``[states + 1, states]``: BIO-allowed transitions of one chain; the last row
    holds the allowed first labels."""
    n_types = 1 if schema.scheme == "multilabel" else len(schema.types)
    return np.isfinite(_bio_transitions(n_types))


@dataclass(frozen=True)
class CrfParams:
    """A trained CRF's scores: ``transitions [chains, S, S]`` (from, to), ``start`` and
    ``end`` ``[chains, S]``."""

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def to_dict(self) -> dict:
        return {k: np.round(getattr(self, k).astype(np.float64), 6).tolist() for k in ("transitions", "start", "end")}

    @classmethod
    def from_dict(cls, data: dict) -> "CrfParams":
        return cls(*(np.asarray(data[k], dtype=np.float64) for k in ("transitions", "start", "end")))


def _chain_scores(params: CrfParams, chain: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = allowed.shape[1]
    neg = -1e9
    trans = np.where(allowed[:s], params.transitions[chain], neg)
    start = np.where(allowed[s], params.start[chain], neg)
    return trans, start, params.end[chain]


def crf_viterbi(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return viterbi(emissions, np.vstack([trans, start[None]]), end)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def crf_log_marginals(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``[n, C, S]`` log marginal probability of each label at each word, for ``C``
    independent chains at once (forward-backward): emissions ``[n, C, S]``, transitions
    ``[C, S, S]`` (from, to), start and end ``[C, S]``."""
    n = emissions.shape[0]
    alpha = np.empty(emissions.shape)
    beta = np.zeros(emissions.shape)
    alpha[0] = start + emissions[0]
    for i in range(1, n):
        alpha[i] = _logsumexp(alpha[i - 1][:, :, None] + trans, 1) + emissions[i]
    beta[-1] = end
    for i in range(n - 2, -1, -1):
        beta[i] = _logsumexp(trans + (emissions[i + 1] + beta[i + 1])[:, None, :], 2)
    log_z = _logsumexp(alpha[-1] + end, 1)  # [C]
    return alpha + beta - log_z[None, :, None]


def crf_marginals(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``[n, S]`` marginal probability of each label at each word of one chain."""
    return np.exp(crf_log_marginals(emissions[:, None], trans[None], start[None], end[None])[:, 0])


LOG_FLOOR = -20.0  # log-probability given to labels a model rules out: finite in fp16 caches and in a KL


def word_log_probs(schema: LabelSchema, scores: np.ndarray, crf: CrfParams | None = None) -> np.ndarray:
    """A model's own label distribution at each word as log-probabilities, float32
    ``[n, num_outputs]``, one distribution per softmax group of the scheme (the CRF's
    chains): with a CRF, its marginals (BIO-forbidden transitions excluded), since a CRF's
    emission scores alone are not its distribution; otherwise the log-softmax of the
    scores. Floored at :data:`LOG_FLOOR`. This is what a teacher hands its students."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    chains, states = chain_layout(schema)
    x = scores.reshape(n, chains, states)
    if crf is None:
        out = x - _logsumexp(x, 2)[..., None]
    elif n == 0:
        out = x
    else:
        allowed = allowed_transitions(schema)
        trans, start, end = (np.stack(part) for part in zip(*(_chain_scores(crf, c, allowed) for c in range(chains))))
        out = crf_log_marginals(x, trans, start, end)
    return np.maximum(out, LOG_FLOOR).reshape(n, schema.num_outputs).astype(np.float32)


def decode_scores(
    schema: LabelSchema, scores: np.ndarray, decoder: str = "viterbi", crf: CrfParams | None = None, *, constrained: bool = True
) -> list[tuple[TokenSpan, float]]:
    """Spans with confidences from per-word scores ``[n, num_outputs]``. ``constrained``
    False asks for greedy decoding whatever the model's decoder (as before)."""
    if decoder == "greedy" or not constrained:
        return schema.decode(scores, constrained=False)
    if decoder != "crf":
        return schema.decode(scores, constrained=True)
    if crf is None:
        raise ValueError("the crf decoder needs the CRF's parameters")
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if n == 0:
        return []
    chains, states = chain_layout(schema)
    allowed = allowed_transitions(schema)
    emissions = scores.reshape(n, chains, states)
    out: list[tuple[TokenSpan, float]] = []
    for c in range(chains):
        trans, start, end = _chain_scores(crf, c, allowed)
        path = crf_viterbi(emissions[:, c], trans, start, end)
        if schema.scheme == "multilabel" and not path.any():
            continue
        probs = crf_marginals(emissions[:, c], trans, start, end)[np.arange(n), path]
        if schema.scheme == "multilabel":
            spans = _spans_from_ids(path, schema.types[c])
        else:
            names = schema.output_names
            spans = spans_from_tags([names[i] for i in path])
        out.extend((s, float(probs[s.start : s.end].mean())) for s in spans)
    out.sort(key=lambda x: (x[0].start, -x[0].end, x[0].type))
    return out
