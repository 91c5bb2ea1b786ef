"""The pretraining configuration: one JSON-serialisable dataclass, validated like
:class:`biotag.training.TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from biotag.errors import InputError
from biotag.json_config import JsonConfig

# the biomedical text in the shared data that pretraining reads by default (see
# biotag.pretrain.data.shared_texts): abstracts and more text not in any test split, and
# the training and devel text of the sentence-level NER corpora
DEFAULT_SOURCES = ("abstracts", "more-text", "ner-corpora")


@dataclass
class PretrainConfig(JsonConfig):
    """Continued masked-language-model training of an encoder on biomedical text.

    ``sources`` names shared text collections (:data:`DEFAULT_SOURCES`); ``text_files``
    adds the user's own (``.txt``: one document per non-empty line; ``.jsonl``: a
    ``text`` field, or ``title`` + ``abstract``; records with ``in_test_split`` true are
    skipped). A fixed ``heldout_fraction`` of documents (by a hash of their ids) is never
    trained on: perplexity is measured on it. ``head_warmup_steps`` first fit only the MLM
    head with the encoder frozen (the encoders here ship without one), so the "before"
    perplexity reads what the general encoder already knows. ``extend_vocab`` adds up to
    that many frequent words of the training text that the tokenizer splits into several
    sub-words (``min_word_count`` occurrences at least) as whole tokens.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("encoder", "output_dir")
    # a time budget or thread count does not change the run's steps: a run may resume with another
    RESULT_NEUTRAL: ClassVar[tuple[str, ...]] = ("threads", "output_dir", "max_minutes")

    encoder: str
    output_dir: str
    sources: list[str] = field(default_factory=lambda: list(DEFAULT_SOURCES))
    text_files: list[str] = field(default_factory=list)
    max_length: int = 128
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mask_prob: float = 0.15
    max_steps: int = 1000
    max_minutes: float | None = None  # stop (and save) after this much training time
    head_warmup_steps: int = 100
    heldout_fraction: float = 0.02
    eval_sequences: int = 256
    eval_every: int = 0  # 0: only before and after training
    checkpoint_every: int = 100
    extend_vocab: int = 0
    min_word_count: int = 20
    seed: int = 13
    threads: int | None = None
    # cpu, cuda (cuda:N) or auto (cuda when torch sees a GPU), as for biotag train
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.sources = [str(s) for s in ([self.sources] if isinstance(self.sources, str) else self.sources)]
        self.text_files = [str(s) for s in ([self.text_files] if isinstance(self.text_files, str) else self.text_files)]
        unknown = [s for s in self.sources if s not in DEFAULT_SOURCES]
        if unknown:
            raise InputError(f"unknown text source {unknown[0]!r}; known: {', '.join(DEFAULT_SOURCES)}", field="sources")
        if not self.sources and not self.text_files:
            raise InputError("no text to pretrain on: give sources or text_files", field="sources")
        self._require_int("max_length", "batch_size", "max_steps", "eval_sequences", "min_word_count", minimum=1)
        self._require_int("head_warmup_steps", "eval_every", "checkpoint_every", "extend_vocab", "seed", minimum=0)
        self._require_int("max_length", minimum=8)  # room for special tokens and a few words
        self._require_int("threads", minimum=1, optional=True)
        self._require_in("lr", "(0, inf)")
        self._require_in("head_lr", "(0, inf)")
        self._require_in("mask_prob", "(0, 1)")
        self._require_in("heldout_fraction", "(0, 0.5)")
        self._require_in("warmup_ratio", "[0, 1)")
        self._require_in("max_minutes", "(0, inf)", optional=True)
        self._require_device()
