"""Word features combined with the encoder's output before the classifier.

Each word's features are embedded (a 3-way O/B/I embedding per dictionary type, summed,
plus a linear map of the shape flags), and added to the encoder's hidden state of the
word through a gate that reads both: ``h + sigmoid(W_g [h; e]) * W_p e``. The gate lets
the model trust a dictionary match in one context and not another; ``W_p`` starts at
zero, so a new model starts exactly as the plain one and learns how much the features
are worth. In training, each (word, type) dictionary feature is replaced by ``O`` with
probability ``dropout`` (feature dropout), so the model cannot lean on matches alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FeatureFusion(torch.nn.Module):
    def __init__(self, n_dictionary: int, n_shape: int, hidden_size: int, *, dim: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        if n_dictionary + n_shape == 0:
            raise ValueError("no features to fuse")
        self.n_dictionary, self.n_shape, self.dropout = n_dictionary, n_shape, float(dropout)
        self.dictionary = torch.nn.Embedding(3 * n_dictionary, dim) if n_dictionary else None
        self.shape = torch.nn.Linear(n_shape, dim) if n_shape else None
        self.project = torch.nn.Linear(dim, hidden_size)
        self.gate = torch.nn.Linear(hidden_size + dim, hidden_size)
        torch.nn.init.zeros_(self.project.weight)
        torch.nn.init.zeros_(self.project.bias)
        self.register_buffer("offsets", 3 * torch.arange(max(n_dictionary, 1)), persistent=False)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        features = features.long()
        parts = []
        if self.dictionary is not None:
            states = features[..., : self.n_dictionary]
            if self.training and self.dropout > 0:
                states = states.masked_fill(torch.rand(states.shape) < self.dropout, 0)
            parts.append(self.dictionary(states + self.offsets[: self.n_dictionary]).sum(-2))
        if self.shape is not None:
            parts.append(self.shape(features[..., self.n_dictionary :].float()))
        return F.gelu(parts[0] if len(parts) == 1 else parts[0] + parts[1])

    def forward(self, hidden: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``hidden [..., H]`` and ``features [..., n_dictionary + n_shape]`` (any
        leading shape: words of a batch, or every sub-word position in the ONNX graph)."""
        e = self.embed(features)
        gate = torch.sigmoid(self.gate(torch.cat([hidden, e], dim=-1)))
        return hidden + gate * self.project(e)
