"""Unstructured magnitude sparsity: zero the smallest weights of the encoder's matrices.

:func:`magnitude_prune` applies ``torch.nn.utils.prune`` L1 masks (one global threshold
over every ``Linear`` weight of the encoder, or per matrix) and bakes the zeros into the
weights, so the result is an ordinary model directory that ``biotag export`` turns into
ONNX. Zeros keep their place in dense tensors: neither the file nor ONNX Runtime's dense
CPU kernels get smaller or faster by it (see docs/benchmarks.md for the measurement);
the masks pay off only on a sparse runtime (DeepSparse, as in Sparse BioBERT) or once
whole rows are removed (:mod:`biotag.compress.structured`). Gradual pruning during
training belongs to distillation; this is the one-shot version, for measuring.
"""

from __future__ import annotations

from pathlib import Path

from biotag.errors import InputError


def magnitude_prune(model_dir: str | Path, out_dir: str | Path, *, sparsity: float, scope: str = "global") -> Path:
    """Write a copy of ``model_dir`` whose encoder ``Linear`` weights have the share
    ``sparsity`` of smallest-magnitude entries set to zero (``scope`` ``global``: one
    threshold over all of them; ``layer``: the share in each matrix). Embeddings and the
    classifier are kept dense."""
    import torch
    from torch.nn.utils import prune

    from biotag.models.token_classifier import TokenClassifier

    if not 0.0 < sparsity < 1.0:
        raise InputError(f"sparsity must be in (0, 1), got {sparsity}", field="sparsity")
    if scope not in ("global", "layer"):
        raise InputError(f"scope must be global or layer, got {scope!r}", field="scope")
    model = TokenClassifier.from_pretrained(model_dir)
    encoder = getattr(model.network.base_model, "encoder", model.network.base_model)
    targets = [(m, "weight") for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    if not targets:
        raise InputError("no Linear layers in the encoder to prune", path=str(model_dir), field="model")
    if scope == "global":
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for module, name in targets:
            prune.l1_unstructured(module, name, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)  # the mask becomes plain zeros in the weight
    zeros = sum(int((m.weight == 0).sum()) for m, _ in targets)
    total = sum(m.weight.numel() for m, _ in targets)
    summary = {"method": "magnitude sparsity", "scope": scope, "sparsity": round(zeros / total, 4), "pruned_matrices": len(targets)}
    card = {**model.card, "compression": [*model.card.get("compression", []), summary]}
    return model.save_pretrained(Path(out_dir), card=card)
