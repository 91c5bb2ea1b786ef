"""Domain-adaptive pretraining (``biotag pretrain``): continued masked-LM training of a
local encoder with whole-word masking on biomedical text that is in no test split,
with checkpoint/resume, optional vocabulary extension and held-back perplexity."""

from biotag.pretrain.config import DEFAULT_SOURCES, PretrainConfig
from biotag.pretrain.trainer import pretrain

__all__ = ["DEFAULT_SOURCES", "PretrainConfig", "pretrain"]
