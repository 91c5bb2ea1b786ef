"""Structured pruning of BERT-family biotag models: attention heads, FFN neurons, layers,
and the hidden width.

Whole rows and columns leave the weight matrices, so the model really gets smaller and
its matrix products shorter (unlike unstructured sparsity, see
:mod:`biotag.compress.sparsity`). The result is an ordinary biotag model directory with
the same label schema; it needs recovery training (fine-tuning or ``biotag distill``
from the unpruned teacher) to win back F1.

Importance (what is removed first):

* with ``word_lists`` of typical text, *activation* importance: a head's mean norm of
  its contribution to the attention output (its context vectors through its slice of
  the output projection), a neuron's mean absolute activation times the norm of its
  output weights, over the real tokens of those sentences;
* without, *magnitude*: a head's ``‖W_V,h‖·‖W_O,h‖``, a neuron's ``‖w_in‖·‖w_out‖``.

Heads are ranked over all layers at once (at least one stays per layer); FFN neurons
are removed in the same number from every layer, because Hugging Face configs hold one
``intermediate_size``. Layers are dropped by index.

The *width* cut (weight subcloning, Samragh et al. 2023) keeps the same subset of hidden
dimensions everywhere — embeddings, every layer's inputs, outputs and layer norms, the
classifier — and in each layer the ``width / head size`` most important heads, so the result
is a stock config (``hidden_size = heads × head size``). Hidden dimensions are ranked by
their mean absolute value in every layer's output over ``word_lists`` (activation), or by
the summed absolute layer-norm gains (magnitude). A head-pruned model no longer fits a
stock transformers config (the head width is ``hidden / heads``), so its config records
the removed heads as ``biotag_pruned_heads`` and :func:`load_network` rebuilds it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from biotag.errors import InputError

PRUNED_HEADS = "biotag_pruned_heads"  # config.json: {layer: [original head indices removed]}
WEIGHT_FILE = "model.safetensors"


# -- loading -----------------------------------------------------------------------------
def load_network(directory: str | Path):
    """The token-classification network of a model directory, head-pruned or not."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    directory = Path(directory)
    config = AutoConfig.from_pretrained(directory)
    removed = getattr(config, PRUNED_HEADS, None)
    if not removed:
        return AutoModelForTokenClassification.from_pretrained(directory)
    from safetensors.torch import load_file

    network = AutoModelForTokenClassification.from_config(config)
    layers = _layers(network)
    for layer, heads in removed.items():
        _remove_heads(layers[int(layer)].attention, sorted(heads))  # the fresh module has every head
    if not (directory / WEIGHT_FILE).is_file():
        raise InputError(f"a head-pruned model needs {WEIGHT_FILE}", path=str(directory), field="model")
    state = load_file(str(directory / WEIGHT_FILE))
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise InputError(f"weights do not fit the pruned model (missing {missing[:3]}, unexpected {unexpected[:3]})", path=str(directory))
    return network.eval()


# -- pruning -------------------------------------------------------------------------------
def prune_structured(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    heads: float = 0.0,
    ffn: float = 0.0,
    drop_layers: Sequence[int] = (),
    width: int | None = None,
    word_lists: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Write a pruned copy of ``model_dir`` to ``out_dir``: ``drop_layers`` (indices) go
    first, then the share ``heads`` of all attention heads and the share ``ffn`` of each
    layer's FFN neurons with the lowest importance (activation importance on
    ``word_lists`` when given, else weight magnitude), then the hidden size is cut to
    ``width`` (a multiple of the head size, which stays)."""
    from biotag.models.token_classifier import TokenClassifier

    for name, share in (("heads", heads), ("ffn", ffn)):
        if not 0.0 <= share < 1.0:
            raise InputError(f"{name} must be a share in [0, 1), got {share}", field=name)
    model = TokenClassifier.from_pretrained(model_dir)
    network = model.network
    layers = _layers(network)
    config = network.config
    if width is not None:
        _check_width(model, width, heads)
    drop = sorted(set(drop_layers))
    if any(not 0 <= i < len(layers) for i in drop) or len(drop) >= len(layers):
        raise InputError(f"drop_layers {drop} must name some, not all, of layers 0..{len(layers) - 1}", field="drop_layers")
    summary: dict[str, Any] = {"method": "structured pruning", "importance": "activation" if word_lists else "magnitude"}
    removed = {int(k): set(v) for k, v in (getattr(config, PRUNED_HEADS, None) or {}).items()}
    if drop:
        keep = [i for i in range(len(layers)) if i not in drop]
        keep_layers(network, keep)
        removed = {new: removed[old] for new, old in enumerate(keep) if old in removed}
        summary["dropped_layers"] = drop
        layers = _layers(network)
    if heads or ffn:
        head_scores, neuron_scores = _importance(model, word_lists)
        if heads:
            plan = _heads_to_remove(head_scores, heads)
            for i, local in plan.items():
                attention = layers[i].attention
                original = _remaining_heads(config.num_attention_heads, removed.get(i, set()))
                removed.setdefault(i, set()).update(original[h] for h in local)
                _remove_heads(attention, local)
            summary["removed_heads"] = {str(i): len(v) for i, v in plan.items() if v}
        if ffn:
            summary["intermediate_size"] = cut_ffn(network, ffn, neuron_scores)
    if width is not None and width != config.hidden_size:
        summary["hidden_size"] = [config.hidden_size, width]
        _cut_width(model, width, word_lists)
    if removed and any(removed.values()):
        setattr(config, PRUNED_HEADS, {str(i): sorted(v) for i, v in sorted(removed.items()) if v})
    summary["parameters"] = sum(p.numel() for p in network.parameters())
    card = {**model.card, "compression": [*model.card.get("compression", []), summary]}
    return model.save_pretrained(Path(out_dir), card=card)


def keep_layers(network, keep: Sequence[int]) -> None:
    """Keep only the encoder layers ``keep`` (indices, in order) of a BERT-style network."""
    layers = _layers(network)
    if not keep or any(not 0 <= i < len(layers) for i in keep):
        raise InputError(f"layers {list(keep)} must be some of layers 0..{len(layers) - 1}", field="student_layers")
    _encoder(network).layer = torch.nn.ModuleList([layers[i] for i in keep])
    network.config.num_hidden_layers = len(keep)


def cut_ffn(network, share: float, neuron_scores: list[np.ndarray] | None = None) -> list[int]:
    """Remove the share ``share`` of each layer's FFN neurons of a BERT-style network, the
    lowest-scoring first (by weight magnitude unless ``neuron_scores`` are given); returns
    ``[old, new]`` intermediate sizes."""
    layers = _layers(network)
    if neuron_scores is None:
        neuron_scores = _magnitude_importance(layers)[1]
    neurons = layers[0].intermediate.dense.out_features
    keep_n = max(1, int(round(neurons * (1 - share))))
    for layer, scores in zip(layers, neuron_scores):
        _keep_neurons(layer, np.sort(np.argsort(-scores, kind="stable")[:keep_n]))
    network.config.intermediate_size = keep_n
    return [neurons, keep_n]


def _check_width(model, width: int, heads: float) -> None:
    config = model.network.config
    check_width(config, width)
    if heads or getattr(config, PRUNED_HEADS, None):
        raise InputError("the width cut chooses each layer's heads itself: do not combine it with head pruning", field="width")
    if model.fusion is not None:
        raise InputError("the width cut does not support models with word features", field="width")


def check_width(config, width: int) -> None:
    """``width`` must be a multiple of the head size, up to the hidden size."""
    size = config.hidden_size // config.num_attention_heads
    if isinstance(width, bool) or not isinstance(width, int) or not 0 < width <= config.hidden_size or width % size:
        raise InputError(f"width must be a multiple of the head size {size} up to {config.hidden_size}, got {width!r}", field="width")


def _cut_width(model, width: int, word_lists: Sequence[Sequence[str]] | None) -> None:
    head_scores, _ = _importance(model, word_lists)
    cut_width(model.network, width, head_scores=head_scores, dimension_scores=_dimension_importance(model, word_lists))


def cut_width(network, width: int, *, head_scores: list[np.ndarray] | None = None, dimension_scores: np.ndarray | None = None) -> None:
    """Keep ``width`` hidden dimensions and ``width / head size`` heads per layer of a
    BERT-style network with a ``classifier`` (token or sequence classification; a pooler
    is cut too), ranked by the given scores, else by weight magnitude."""
    config = network.config
    check_width(config, width)
    layers = _layers(network)
    size = config.hidden_size // config.num_attention_heads
    if head_scores is None:
        head_scores = _magnitude_importance(layers)[0]
    if dimension_scores is None:
        dimension_scores = _norm_gains(network)
    keep_heads = width // size
    for layer, scores in zip(layers, head_scores):
        local = np.argsort(-scores, kind="stable")[keep_heads:]
        _remove_heads(layer.attention, sorted(int(h) for h in local))
    dims = torch.from_numpy(np.sort(np.argsort(-dimension_scores, kind="stable")[:width]))
    embeddings = network.base_model.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        old = getattr(embeddings, name, None)
        if old is not None:
            new = torch.nn.Embedding(old.num_embeddings, width, padding_idx=old.padding_idx)
            new.weight.data.copy_(old.weight.detach().index_select(1, dims))
            setattr(embeddings, name, new)
    embeddings.LayerNorm = _slice_norm(embeddings.LayerNorm, dims)
    for layer in layers:
        attention = layer.attention.self
        for name in ("query", "key", "value"):
            setattr(attention, name, _slice_linear(getattr(attention, name), dims, 1))
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, dims, 0)
        layer.attention.output.LayerNorm = _slice_norm(layer.attention.output.LayerNorm, dims)
        layer.intermediate.dense = _slice_linear(layer.intermediate.dense, dims, 1)
        layer.output.dense = _slice_linear(layer.output.dense, dims, 0)
        layer.output.LayerNorm = _slice_norm(layer.output.LayerNorm, dims)
    pooler = getattr(network.base_model, "pooler", None)
    if pooler is not None:
        pooler.dense = _slice_linear(_slice_linear(pooler.dense, dims, 1), dims, 0)
    network.classifier = _slice_linear(network.classifier, dims, 1)
    config.hidden_size, config.num_attention_heads = width, keep_heads


def _slice_norm(norm: torch.nn.LayerNorm, index: torch.Tensor) -> torch.nn.LayerNorm:
    out = torch.nn.LayerNorm(len(index), eps=norm.eps)
    out.weight.data.copy_(norm.weight.detach().index_select(0, index))
    out.bias.data.copy_(norm.bias.detach().index_select(0, index))
    return out


@torch.inference_mode()
def _dimension_importance(model, word_lists: Sequence[Sequence[str]] | None) -> np.ndarray:
    """Per hidden dimension: the summed mean absolute value in the embedding and every
    layer output over the real tokens of ``word_lists``, else the summed absolute gains of
    every layer norm."""
    network = model.network
    if not word_lists:
        return _norm_gains(network)
    network.eval()
    total, count = torch.zeros(network.config.hidden_size), 0
    for input_ids, mask in _batches(model, word_lists):
        states = network.base_model(input_ids=input_ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states
        total += sum(state[mask].abs().sum(0) for state in states)
        count += int(mask.sum())
    return (total / max(count, 1)).numpy()


def _norm_gains(network) -> np.ndarray:
    norms = [network.base_model.embeddings.LayerNorm] + [
        norm for layer in _layers(network) for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm)
    ]
    return sum(norm.weight.detach().abs() for norm in norms).numpy()


def _batches(model, word_lists: Sequence[Sequence[str]], size: int = 16):
    """``(input_ids, bool mask)`` tensors over the windows of ``word_lists``, shortest first."""
    encoding = model.encoder.encode([list(w) for w in word_lists])
    windows = sorted(encoding.windows, key=len)
    for start in range(0, len(windows), size):
        batch = model.encoder.collate(windows[start : start + size])
        yield torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask).bool()


def _encoder(network):
    base = network.base_model
    encoder = getattr(base, "encoder", None)
    if encoder is None or not hasattr(encoder, "layer") or not hasattr(encoder.layer[0].attention, "self"):
        raise InputError(
            f"structured pruning supports BERT-style encoders (BERT, MiniLM), not {network.config.model_type}", field="model"
        )
    return encoder


def _layers(network) -> torch.nn.ModuleList:
    return _encoder(network).layer


def _remaining_heads(total: int, removed: set[int]) -> list[int]:
    return [h for h in range(total) if h not in removed]


def _slice_linear(linear: torch.nn.Linear, index: torch.Tensor, dim: int) -> torch.nn.Linear:
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias.detach().clone() if linear.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias.index_select(0, index)
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    out.weight.data.copy_(weight)
    if bias is not None:
        out.bias.data.copy_(bias)
    return out


def _remove_heads(attention, heads: Sequence[int]) -> None:
    """Remove ``heads`` (indices among the module's current heads) from one BertAttention."""
    self_attention = attention.self
    size, count = self_attention.attention_head_size, self_attention.num_attention_heads
    gone = set(heads)
    keep = [h for h in range(count) if h not in gone]
    if not keep:
        raise InputError("cannot remove every head of a layer; drop the layer instead", field="heads")
    index = torch.cat([torch.arange(h * size, (h + 1) * size) for h in keep])
    for name in ("query", "key", "value"):
        setattr(self_attention, name, _slice_linear(getattr(self_attention, name), index, 0))
    attention.output.dense = _slice_linear(attention.output.dense, index, 1)
    self_attention.num_attention_heads = len(keep)
    self_attention.all_head_size = len(keep) * size


def _keep_neurons(layer, keep: np.ndarray) -> None:
    index = torch.from_numpy(keep.astype(np.int64))
    layer.intermediate.dense = _slice_linear(layer.intermediate.dense, index, 0)
    layer.output.dense = _slice_linear(layer.output.dense, index, 1)


def _heads_to_remove(scores: list[np.ndarray], share: float) -> dict[int, list[int]]:
    """The globally least important heads (scores normalised per layer, as in Michel et
    al. 2019, so that layers with larger activations do not keep all their heads), at
    least one head left in each layer."""
    total = sum(len(s) for s in scores)
    target = int(math.floor(total * share))
    ranked = sorted(
        ((float(s[h] / (np.linalg.norm(s) or 1.0)), i, h) for i, s in enumerate(scores) for h in range(len(s))),
    )
    left = {i: len(s) for i, s in enumerate(scores)}
    plan: dict[int, list[int]] = {i: [] for i in range(len(scores))}
    for _, i, h in ranked:
        if target == 0:
            break
        if left[i] > 1:
            plan[i].append(h)
            left[i] -= 1
            target -= 1
    return {i: sorted(v) for i, v in plan.items()}


@torch.inference_mode()
def _magnitude_importance(layers) -> tuple[list[np.ndarray], list[np.ndarray]]:
    heads, neurons = [], []
    for layer in layers:
        attention = layer.attention
        size = attention.self.attention_head_size
        value = attention.self.value.weight.reshape(-1, size, attention.self.value.weight.shape[1])
        out = attention.output.dense.weight.reshape(attention.output.dense.weight.shape[0], -1, size)
        heads.append((value.flatten(1).norm(dim=1) * out.transpose(0, 1).flatten(1).norm(dim=1)).numpy())
        neurons.append((layer.intermediate.dense.weight.norm(dim=1) * layer.output.dense.weight.norm(dim=0)).numpy())
    return heads, neurons


@torch.inference_mode()
def _importance(model, word_lists: Sequence[Sequence[str]] | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer: head scores ``[heads]`` and FFN neuron scores ``[intermediate]``."""
    layers = _layers(model.network)
    if not word_lists:
        return _magnitude_importance(layers)
    head_sums = [torch.zeros(layer.attention.self.num_attention_heads) for layer in layers]
    neuron_sums = [torch.zeros(layer.intermediate.dense.out_features) for layer in layers]
    mask_holder: dict[str, torch.Tensor] = {}
    hooks = []

    def real(x: torch.Tensor) -> torch.Tensor:  # [batch, seq, width] -> [real tokens, width]
        return x[mask_holder["mask"]]

    for i, layer in enumerate(layers):
        attention = layer.attention
        size = attention.self.attention_head_size

        def on_context(module, args, i=i, size=size):
            context = real(args[0])  # [n, heads * size]
            weight = module.weight.reshape(module.weight.shape[0], -1, size)  # [hidden, heads, size]
            contribution = torch.einsum("nhd,ohd->nho", context.reshape(context.shape[0], -1, size), weight)
            head_sums[i] += contribution.norm(dim=-1).sum(0)

        def on_ffn(module, args, i=i):
            neuron_sums[i] += real(args[0]).abs().sum(0) * module.weight.norm(dim=0)

        hooks.append(attention.output.dense.register_forward_pre_hook(on_context))
        hooks.append(layer.output.dense.register_forward_pre_hook(on_ffn))
    model.eval()
    try:
        for input_ids, mask in _batches(model, word_lists):
            mask_holder["mask"] = mask
            model.network(input_ids=input_ids, attention_mask=mask.long())
    finally:
        for hook in hooks:
            hook.remove()
    return [s.numpy() for s in head_sums], [s.numpy() for s in neuron_sums]
