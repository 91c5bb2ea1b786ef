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


def _stacked_chain_scores(schema: LabelSchema, crf: CrfParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every chain's :func:`_chain_scores` stacked: ``[C, S, S]``, ``[C, S]``, ``[C, S]``."""
    allowed = allowed_transitions(schema)
    chains, _ = chain_layout(schema)
    return tuple(np.stack(part) for part in zip(*(_chain_scores(crf, c, allowed) for c in range(chains))))


def crf_viterbi(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return viterbi(emissions, np.vstack([trans, start[None]]), end)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def crf_log_marginals(emissions: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``[n, C, S]`` log marginal probability of each label at each word, for ``C``
    independent chains at once (forward-backward): emissions ``[n, C, S]``, transitions
    ``[C, S, S]`` (from, to), start and end ``[C, S]``."""
    return _batched_log_marginals(emissions[None], np.array([emissions.shape[0]]), trans, start, end)[0]


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
        trans, start, end = _stacked_chain_scores(schema, crf)
        out = crf_log_marginals(x, trans, start, end)
    return np.maximum(out, LOG_FLOOR).reshape(n, schema.num_outputs).astype(np.float32)


DECODE_GROUP = 256  # sentences of similar length decoded together by decode_many


def decode_many(
    schema: LabelSchema, score_list: list[np.ndarray], decoder: str = "viterbi", crf: CrfParams | None = None, *, constrained: bool = True
) -> list[list[tuple[TokenSpan, float]]]:
    """:func:`decode_scores` of many sentences, with the same results. A CRF decodes
    sentences of similar length together (Viterbi and forward-backward vectorised over
    sentences and chains, loops over word positions only): one sentence at a time, NumPy
    call overhead on ``[3, 3]`` arrays costs more than a small model's forward pass."""
    if decoder != "crf" or not constrained:
        return [decode_scores(schema, s, decoder, crf, constrained=constrained) for s in score_list]
    if crf is None:
        raise ValueError("the crf decoder needs the CRF's parameters")
    out: list[list[tuple[TokenSpan, float]]] = [[] for _ in score_list]
    lengths = np.array([len(s) for s in score_list], dtype=np.int64)
    order = [i for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    chains, states = chain_layout(schema)
    trans, start, end = _stacked_chain_scores(schema, crf)
    for first in range(0, len(order), DECODE_GROUP):
        group = order[first : first + DECODE_GROUP]
        size = lengths[group]
        emissions = np.zeros((len(group), int(size.max()), chains, states))
        for row, i in enumerate(group):
            emissions[row, : size[row]] = np.asarray(score_list[i], dtype=np.float64).reshape(size[row], chains, states)
        paths = _batched_viterbi(emissions, size, trans, start, end)
        marginals = _batched_marginals(emissions, size, trans, start, end)
        for row, i in enumerate(group):
            out[i] = _spans_with_confidence(schema, paths[row, : size[row]], marginals[row, : size[row]])
    return out


def _batched_viterbi(emissions: np.ndarray, lengths: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Best paths ``[B, T, C]`` of emissions ``[B, T, C, S]`` (rows padded past their
    length: scores there are carried unchanged and back-pointers point to themselves)."""
    b, t, c, s = emissions.shape
    score = start[None] + emissions[:, 0]
    back = np.empty((t, b, c, s), dtype=np.int64)
    stay = np.broadcast_to(np.arange(s), (b, c, s))
    for i in range(1, t):
        cand = score[..., :, None] + trans[None]  # [B, C, from, to]
        live = (i < lengths)[:, None, None]
        back[i] = np.where(live, cand.argmax(2), stay)
        score = np.where(live, cand.max(2) + emissions[:, i], score)
    path = np.empty((b, t, c), dtype=np.int64)
    path[:, -1] = (score + end[None]).argmax(-1)
    for i in range(t - 1, 0, -1):
        path[:, i - 1] = np.take_along_axis(back[i], path[:, i, :, None], -1)[..., 0]
    return path


def _batched_log_marginals(emissions: np.ndarray, lengths: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`crf_log_marginals` of padded rows ``[B, T, C, S]`` at once."""
    b, t, c, s = emissions.shape
    alpha = np.empty(emissions.shape)
    beta = np.empty(emissions.shape)
    alpha[:, 0] = start[None] + emissions[:, 0]
    for i in range(1, t):
        live = (i < lengths)[:, None, None]
        alpha[:, i] = np.where(live, _logsumexp(alpha[:, i - 1][..., :, None] + trans[None], 2) + emissions[:, i], alpha[:, i - 1])
    beta[:, -1] = end[None]
    for i in range(t - 2, -1, -1):
        live = (i + 1 < lengths)[:, None, None]
        step = _logsumexp(trans[None] + (emissions[:, i + 1] + beta[:, i + 1])[..., None, :], 3)
        beta[:, i] = np.where(live, step, end[None])
    log_z = _logsumexp(alpha[:, -1] + end[None], 2)  # [B, C]
    return alpha + beta - log_z[:, None, :, None]


def _batched_marginals(emissions: np.ndarray, lengths: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``exp`` of :func:`_batched_log_marginals`, computed in probability space with each
    position's forward and backward vectors rescaled to sum to one (Rabiner's scaling): one
    small matrix product per position instead of a log-sum-exp, about half the time. In
    float64 it is as exact for a confidence; the distillation's log-probabilities keep
    the log-space version, which this one falls back to when a vector underflows."""
    with np.errstate(all="ignore"):  # an underflow shows as NaN below and takes the fallback
        marginals = _scaled_forward_backward(emissions, lengths, trans, start, end)
    if not np.isfinite(marginals).all():  # emission gaps of ~700 nats
        return np.exp(_batched_log_marginals(emissions, lengths, trans, start, end))
    return marginals


def _scaled_forward_backward(emissions: np.ndarray, lengths: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    b, t, c, s = emissions.shape
    weights = np.exp(trans)[None]  # [1, C, from, to]; forbidden transitions are exp(-1e9) = 0
    # each position's emissions shifted so their largest is 0: exp cannot overflow
    potentials = np.exp(emissions - emissions.max(axis=3, keepdims=True))
    alpha = np.empty(emissions.shape)
    beta = np.empty(emissions.shape)
    first = np.exp(start - start.max(axis=1, keepdims=True))[None] * potentials[:, 0]
    alpha[:, 0] = first / first.sum(axis=2, keepdims=True)
    for i in range(1, t):
        step = (alpha[:, i - 1][..., None, :] @ weights)[..., 0, :] * potentials[:, i]
        step /= step.sum(axis=2, keepdims=True)
        alpha[:, i] = np.where((i < lengths)[:, None, None], step, alpha[:, i - 1])
    final = np.broadcast_to(np.exp(end - end.max(axis=1, keepdims=True))[None], (b, c, s))
    beta[:, -1] = final
    for i in range(t - 2, -1, -1):
        step = (weights @ (potentials[:, i + 1] * beta[:, i + 1])[..., :, None])[..., 0]
        step /= step.sum(axis=2, keepdims=True)
        beta[:, i] = np.where((i + 1 < lengths)[:, None, None], step, final)
    joint = alpha * beta
    return joint / joint.sum(axis=3, keepdims=True)


def _spans_with_confidence(schema: LabelSchema, path: np.ndarray, marginals: np.ndarray) -> list[tuple[TokenSpan, float]]:
    """Spans of one sentence's CRF paths ``[n, C]`` with the mean marginal ``[n, C, S]``
    of their labels."""
    n = path.shape[0]
    out: list[tuple[TokenSpan, float]] = []
    for c in range(path.shape[1]):
        chain = path[:, c]
        if schema.scheme == "multilabel" and not chain.any():
            continue
        probs = marginals[np.arange(n), c, chain]
        if schema.scheme == "multilabel":
            spans = _spans_from_ids(chain, schema.types[c])
        else:
            names = schema.output_names
            spans = spans_from_tags([names[i] for i in chain])
        out.extend((sp, float(probs[sp.start : sp.end].mean())) for sp in spans)
    out.sort(key=lambda x: (x[0].start, -x[0].end, x[0].type))
    return out


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
    paths, marginals = np.empty((n, chains), dtype=np.int64), np.empty((n, chains, states))
    for c in range(chains):
        trans, start, end = _chain_scores(crf, c, allowed)
        paths[:, c] = crf_viterbi(emissions[:, c], trans, start, end)
        marginals[:, c] = crf_marginals(emissions[:, c], trans, start, end)
    return _spans_with_confidence(schema, paths, marginals)
