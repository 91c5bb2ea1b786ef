"""Schedules of a distillation run: loss weights over training, and pruning sparsity.

**Loss weights.** The loss of a batch is ``w_hard·L_hard + w_soft·L_soft +
w_hidden·L_hidden + w_attention·L_attention``. With ``weighting="fixed"`` the weights
are the configured constants. With ``weighting="dynamic"`` (FastBioNER's dynamic
knowledge distillation) the soft-label weight falls from 1 to a floor while the
hard-label weight rises by the same amount, following the training progress
``p = step / total_steps``::

    d(p)      = 1 - p                  (shape "linear")
              = (1 + cos(pi * p)) / 2  (shape "cosine": flat at both ends)
    w_soft(p) = floor + (1 - floor) * d(p)
    w_hard(p) = 1 - w_soft(p)

so the student first imitates the teacher (whose soft labels are dense and easy to
follow) and ends learning mostly from the gold labels (which the teacher does not know
perfectly). The hidden-state and attention weights stay fixed.

**Sparsity.** Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune")
raises sparsity from 0 to the target ``s_f`` between steps ``t0`` and ``t1``::

    s(t) = s_f * (1 - (1 - (t - t0) / (t1 - t0)) ** 3)

fast at first, while the network has many redundant weights, and slowly near the end,
when each further weight matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHAPES = ("linear", "cosine")
WEIGHTINGS = ("fixed", "dynamic")


def decay(progress: float, shape: str = "linear") -> float:
    """1 at the start of training (``progress`` 0), 0 at its end (1)."""
    p = min(max(progress, 0.0), 1.0)
    if shape == "linear":
        return 1.0 - p
    if shape == "cosine":
        return (1.0 + math.cos(math.pi * p)) / 2.0
    raise ValueError(f"unknown schedule shape {shape!r}; expected one of {SHAPES}")


@dataclass(frozen=True)
class LossWeights:
    hard: float
    soft: float
    hidden: float = 0.0
    attention: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in self.__dict__.items()}


def loss_weights(
    progress: float,
    *,
    weighting: str,
    hard: float = 1.0,
    soft: float = 1.0,
    floor: float = 0.1,
    shape: str = "linear",
    hidden: float = 0.0,
    attention: float = 0.0,
) -> LossWeights:
    """The weights at ``progress`` (0..1): the constants ``hard``/``soft`` when
    ``weighting`` is ``fixed``, the schedule of the module docstring when ``dynamic``."""
    if weighting == "fixed":
        return LossWeights(hard, soft, hidden, attention)
    if weighting != "dynamic":
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    w_soft = floor + (1.0 - floor) * decay(progress, shape)
    return LossWeights(1.0 - w_soft, w_soft, hidden, attention)


def cubic_sparsity(step: int, target: float, start: int, end: int) -> float:
    """Zhu & Gupta's sparsity at ``step``: 0 before ``start``, ``target`` from ``end`` on."""
    if step < start:
        return 0.0
    if step >= end:
        return target
    return target * (1.0 - (1.0 - (step - start) / (end - start)) ** 3)
