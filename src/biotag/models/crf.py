"""A linear-chain CRF over per-word scores, trained with partial labels.

Why not a CRF library: pytorch-crf (``torchcrf``, last release 2019) takes one complete
label per position, but biotag trains on corpora that annotate only some types, so a
word's label is often a *set* (``O`` may hide a gene in a disease corpus; a type the
corpus does not annotate is unknown everywhere). The loss here is the partial-label CRF
likelihood (Tsuboi et al. 2008): ``log Z(all paths) - log Z(paths consistent with what is
known)``, which is the ordinary CRF loss when every label is known. BIO-forbidden
transitions (``O -> I``, ``I-x -> I-y``, a start with ``I``) are excluded in training and
decoding alike. Decoding (Viterbi, marginals) is NumPy code in
:mod:`biotag.models.decoding`, shared with the ONNX engine.

Layout: ``multilabel`` has one 3-state (O/B/I) chain per entity type with its own
transitions; ``bio`` one chain over all labels.
"""

from __future__ import annotations

import torch

from biotag.labels import IGNORE, LabelSchema
from biotag.models.decoding import CrfParams, allowed_transitions, chain_layout

_NEG = -1e4  # "impossible" score; finite so that fully masked rows stay NaN-free


class CRF(torch.nn.Module):
    def __init__(self, schema: LabelSchema) -> None:
        super().__init__()
        self.schema = schema
        self.chains, self.states = chain_layout(schema)
        self.transitions = torch.nn.Parameter(torch.zeros(self.chains, self.states, self.states))
        self.start = torch.nn.Parameter(torch.zeros(self.chains, self.states))
        self.end = torch.nn.Parameter(torch.zeros(self.chains, self.states))
        self.register_buffer("allowed", torch.from_numpy(allowed_transitions(schema)), persistent=False)

    def params(self) -> CrfParams:
        return CrfParams(*(p.detach().cpu().double().numpy().copy() for p in (self.transitions, self.start, self.end)))

    def load_params(self, params: CrfParams) -> None:
        with torch.no_grad():
            for p, value in zip((self.transitions, self.start, self.end), (params.transitions, params.start, params.end)):
                p.copy_(torch.as_tensor(value, dtype=p.dtype))

    # -- training -----------------------------------------------------------------
    def allowed_labels(self, labels: torch.Tensor, type_mask: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        """bool ``[n, chains, states]``: the labels each word may have, and the number of
        (word, chain) units whose label is constrained at all."""
        n, s = labels.shape[0], self.states
        if self.schema.scheme == "multilabel":
            labels = labels.reshape(n, self.chains)
            if type_mask is not None:
                labels = labels.masked_fill(~type_mask.bool(), IGNORE)
            known = labels != IGNORE
            allowed = torch.nn.functional.one_hot(labels.clamp(min=0), s).bool()
            allowed[~known] = True
            return allowed, int(known.sum())
        known = labels != IGNORE
        allowed = torch.nn.functional.one_hot(labels.clamp(min=0), s).bool()
        if type_mask is not None and not bool(type_mask.all()):
            unannotated = ~type_mask.bool()
            is_o = (labels == 0)[:, None]
            allowed[:, 1::2] |= unannotated & is_o
            allowed[:, 2::2] |= unannotated & is_o
        allowed[~known] = True
        return allowed[:, None, :], int(known.sum())

    def loss(self, scores: torch.Tensor, labels: torch.Tensor, type_mask: torch.Tensor | None, word_rows: torch.Tensor) -> torch.Tensor:
        """Mean partial-label negative log-likelihood per constrained (word, chain) unit.
        ``word_rows`` says which window each word belongs to (a window's words are
        consecutive and in order, as :meth:`SubwordEncoder.collate` lays them out)."""
        allowed, units = self.allowed_labels(labels, type_mask)
        if not units:
            return scores.sum() * 0.0
        chains_first, mask = self._layout(word_rows, scores.device)
        e = chains_first(scores.reshape(scores.shape[0], self.chains, self.states))
        constrained = e.masked_fill(~chains_first(allowed), _NEG)
        trans, start, end = self._scores(e.shape[0] // self.chains)
        nll = _log_partition(e, trans, start, end, mask) - _log_partition(constrained, trans, start, end, mask)
        return nll.sum() / units

    def soft_loss(self, scores: torch.Tensor, teacher: torch.Tensor, word_rows: torch.Tensor) -> torch.Tensor:
        """Knowledge distillation into a CRF: the cross-entropy of the CRF's distribution
        against a teacher's per-word label distributions ``q`` (``teacher``: log-probabilities
        or logits ``[n, num_outputs]``, one distribution per chain), per (word, chain) unit.
        A sequence's expected score under ``q`` needs ``q``'s pairwise marginals, which the
        teacher cache does not keep; they are taken as products of the per-word ones
        (mean field), over BIO-allowed transitions only:

            log Z - sum_i q_i . e_i - sum_i q_{i-1}' T q_i - q_0 . start - q_last . end

        Its gradient with respect to the emissions is ``p_i - q_i`` (``p``: the CRF's own
        marginals), so it moves the CRF's marginals, not its raw emission scores, towards
        the teacher's: what a KL on the emission softmax gets wrong for a CRF student."""
        n = scores.shape[0]
        if n == 0:
            return scores.sum() * 0.0
        chains_first, mask = self._layout(word_rows, scores.device)
        e = chains_first(scores.reshape(n, self.chains, self.states))
        q = chains_first(torch.softmax(teacher.to(scores.dtype).reshape(n, self.chains, self.states), dim=-1))
        q = q * mask[:, :, None]
        windows = e.shape[0] // self.chains
        log_z = _log_partition(e, *self._scores(windows), mask)
        # the expected score counts allowed transitions only (forbidden ones score 0, not -inf:
        # the product of two marginals can put mass on a pair the teacher never takes)
        trans, start, end = self._scores(windows, forbidden=0.0)
        last = mask.sum(1) - 1
        expected = (
            (q * e).sum((1, 2))
            + torch.einsum("nla,nab,nlb->n", q[:, :-1], trans, q[:, 1:])
            + (q[:, 0] * start).sum(1)
            + (q[torch.arange(e.shape[0], device=e.device), last] * end).sum(1)
        )
        return (log_z - expected).sum() / (n * self.chains)

    def _layout(self, word_rows: torch.Tensor, device: torch.device):
        """``(chains_first, mask)``: a function taking per-word ``[n, chains, S]`` tensors to
        padded chains ``[rows * chains, L, S]``, and the mask of real positions ``[rows * chains, L]``."""
        _, counts = torch.unique_consecutive(word_rows, return_counts=True)
        lengths = counts.tolist()
        length = max(lengths)
        index = torch.zeros(len(lengths), length, dtype=torch.long)
        mask = torch.zeros(len(lengths), length, dtype=torch.bool)
        offset = 0
        for r, m in enumerate(lengths):
            index[r, :m] = torch.arange(offset, offset + m)
            mask[r, :m] = True
            offset += m
        index, mask = index.to(device), mask.to(device)

        def chains_first(x: torch.Tensor) -> torch.Tensor:
            return x[index].permute(0, 2, 1, 3).reshape(-1, length, self.states)

        return chains_first, mask.repeat_interleave(self.chains, dim=0)

    def _scores(self, rows: int, forbidden: float = _NEG) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transition, start and end scores repeated for ``rows`` windows, forbidden ones set to ``forbidden``."""
        trans = self.transitions.masked_fill(~self.allowed[: self.states], forbidden).repeat(rows, 1, 1)
        start = self.start.masked_fill(~self.allowed[self.states], forbidden).repeat(rows, 1)
        return trans, start, self.end.repeat(rows, 1)

    def forward(self, *args, **kwargs) -> torch.Tensor:  # a module's call is its loss
        return self.loss(*args, **kwargs)


def _log_partition(e: torch.Tensor, trans: torch.Tensor, start: torch.Tensor, end: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log Z of each chain: ``e [N, L, S]``, ``trans [N, S, S]``, ``start``/``end [N, S]``,
    ``mask [N, L]`` (True on real positions, which come first)."""
    alpha = start + e[:, 0]
    for t in range(1, e.shape[1]):
        step = torch.logsumexp(alpha[:, :, None] + trans, dim=1) + e[:, t]
        alpha = torch.where(mask[:, t, None], step, alpha)
    return torch.logsumexp(alpha + end, dim=1)
