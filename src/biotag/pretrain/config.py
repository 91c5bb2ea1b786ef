"""The pretraining configuration: one JSON-serialisable dataclass, validated like
:class:`biotag.training.TrainConfig`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biotag.errors import FormatError, InputError

# the biomedical text in the shared data that pretraining reads by default (see
# biotag.pretrain.data.shared_texts): abstracts and more text not in any test split, and
# the training and devel text of the sentence-level NER corpora
DEFAULT_SOURCES = ("abstracts", "more-text", "ner-corpora")


@dataclass
class PretrainConfig:
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

    def __post_init__(self) -> None:
        self.sources = [str(s) for s in ([self.sources] if isinstance(self.sources, str) else self.sources)]
        self.text_files = [str(s) for s in ([self.text_files] if isinstance(self.text_files, str) else self.text_files)]
        unknown = [s for s in self.sources if s not in DEFAULT_SOURCES]
        if unknown:
            raise InputError(f"unknown text source {unknown[0]!r}; known: {', '.join(DEFAULT_SOURCES)}", field="sources")
        if not self.sources and not self.text_files:
            raise InputError("no text to pretrain on: give sources or text_files", field="sources")
        for name in ("max_length", "batch_size", "max_steps", "eval_sequences", "min_word_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"must be a positive integer, got {value!r}", field=name)
        for name in ("head_warmup_steps", "eval_every", "checkpoint_every", "extend_vocab", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(f"must be a non-negative integer, got {value!r}", field=name)
        if self.max_length < 8:
            raise InputError(f"must be at least 8, got {self.max_length}", field="max_length")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise InputError(f"must be a positive integer or null, got {self.threads!r}", field="threads")
        for name in ("lr", "head_lr"):
            if not getattr(self, name) > 0:
                raise InputError(f"must be positive, got {getattr(self, name)!r}", field=name)
        if not 0 < self.mask_prob < 1:
            raise InputError(f"must be in (0, 1), got {self.mask_prob!r}", field="mask_prob")
        if not 0 < self.heldout_fraction < 0.5:
            raise InputError(f"must be in (0, 0.5), got {self.heldout_fraction!r}", field="heldout_fraction")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"must be in [0, 1), got {self.warmup_ratio!r}", field="warmup_ratio")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise InputError(f"must be positive or null, got {self.max_minutes!r}", field="max_minutes")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | None = None) -> "PretrainConfig":
        if not isinstance(data, dict):
            raise FormatError(f"expected a JSON object, got {type(data).__name__}", path=path)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise InputError(f"unknown setting; known settings: {', '.join(sorted(known))}", path=path, field=key)
        for key in ("encoder", "output_dir"):
            if key not in data:
                raise InputError("required setting is missing", path=path, field=key)
        try:
            return cls(**data)
        except InputError as error:
            raise error.located(path=path) from None
        except TypeError as error:
            raise InputError(str(error), path=path) from None

    @classmethod
    def from_json(cls, path: str | Path) -> "PretrainConfig":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read the config: {error.strerror or error}", path=str(path)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise FormatError(f"not valid JSON: {error.msg}", path=str(path), line=error.lineno) from None
        return cls.from_dict(data, path=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def differences(self, other: "PretrainConfig", *, ignore: tuple[str, ...] = ("threads", "output_dir", "max_minutes")) -> list[str]:
        """Settings that differ (a time budget or thread count does not change the run's
        steps, so a run may resume with another)."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ignore and a[k] != b[k]]
