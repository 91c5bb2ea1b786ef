"""Gradual magnitude pruning during training (Zhu & Gupta 2017).

Every ``every`` steps between ``start`` and ``end`` the masks of the encoder's ``Linear``
weights are recomputed: each matrix keeps its ``1 - s(t)`` largest-magnitude entries,
``s(t)`` being the cubic schedule of :func:`biotag.distill.schedule.cubic_sparsity`.
After every optimizer step the masks are applied again (the optimizer would otherwise
revive pruned weights), so pruned weights are exactly zero in every checkpoint and
saved model; that is also how the masks come back after a restart (the zeros *are* the
mask). Embeddings and the classifier stay dense, as in :mod:`biotag.compress.sparsity`
(the one-shot version). Each matrix reaches the target itself, so no layer is emptied.
"""

from __future__ import annotations

import torch

from biotag.distill.schedule import cubic_sparsity
from biotag.errors import InputError


def encoder_linear_weights(network: torch.nn.Module) -> list[torch.nn.Parameter]:
    encoder = getattr(network.base_model, "encoder", network.base_model)
    weights = [m.weight for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    if not weights:
        raise InputError("no Linear layers in the student's encoder to prune", field="prune_sparsity")
    return weights


class GradualPruner:
    def __init__(self, network: torch.nn.Module, target: float, start: int, end: int, every: int) -> None:
        if not 0.0 < target < 1.0:
            raise InputError(f"must be in (0, 1), got {target}", field="prune_sparsity")
        self.weights = encoder_linear_weights(network)
        self.target, self.start, self.end, self.every = target, start, max(end, start + 1), max(every, 1)
        self.masks = [torch.ones_like(w, dtype=torch.bool) for w in self.weights]
        self.level = 0.0  # sparsity of the current masks

    def restore(self) -> None:
        """Masks from the weights of a restored checkpoint (pruned ones are zero)."""
        with torch.no_grad():
            self.masks = [w != 0 for w in self.weights]
        total = sum(m.numel() for m in self.masks)
        self.level = 1.0 - sum(int(m.sum()) for m in self.masks) / total

    def done(self, step: int) -> bool:
        """Whether the masks have reached the target after ``step`` optimizer steps."""
        return step >= self.end

    def after_step(self, step: int) -> bool:
        """Update the masks when ``step`` (just taken) is a pruning step, then apply them;
        returns True when this step reached the target sparsity."""
        due = self.start <= step and ((step - self.start) % self.every == 0 or step == self.end)
        reached = False
        if due:
            sparsity = cubic_sparsity(step, self.target, self.start, self.end)
            if sparsity > self.level:
                self._mask_smallest(sparsity)
                reached = step >= self.end
        with torch.no_grad():
            for w, m in zip(self.weights, self.masks):
                w.mul_(m)
        return reached

    def _mask_smallest(self, sparsity: float) -> None:
        with torch.no_grad():
            for i, w in enumerate(self.weights):
                k = int(round(sparsity * w.numel()))
                order = w.abs().flatten().argsort(stable=True)  # pruned (zero) weights come first
                mask = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
                mask[order[:k]] = False
                self.masks[i] = mask.view_as(w)
        self.level = sparsity

    def measured(self) -> float:
        """Share of zeros in the pruned matrices."""
        zeros = sum(int((w == 0).sum()) for w in self.weights)
        return zeros / sum(w.numel() for w in self.weights)
