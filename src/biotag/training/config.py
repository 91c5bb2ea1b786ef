"""The training configuration: one JSON-serialisable dataclass."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biotag.errors import FormatError, InputError
from biotag.labels import SCHEMES


@dataclass
class TrainConfig:
    """Everything a training run depends on; a run is reproducible from this alone.

    ``corpora`` are names from :mod:`biotag.corpora` or folders holding
    ``<split>.<ext>`` files that :func:`biotag.io.read` understands (``train.jsonl``,
    ``devel.tsv``...). ``types`` restricts (and orders) the entity types the model
    predicts; by default it is every type the corpora annotate. With ``unify_types``
    corpus labels are mapped onto biotag's unified types first (see
    :mod:`biotag.entity_types`), so that corpora naming a type differently train one
    output. Steps are optimizer steps (one per ``grad_accum`` batches);
    ``eval_every``/``checkpoint_every`` of 0 mean "at the end of each epoch only".
    ``patience`` counts evaluations without a better devel F1 (0: never stop early).
    ``temperature`` is the corpus sampling exponent: corpus ``c`` gives a share of each
    epoch proportional to ``size_c ** temperature`` (1: proportional to size, 0: equal).
    """

    corpora: list[str]
    output_dir: str
    encoder: str = "minilm-l6"
    scheme: str = "multilabel"
    types: list[str] | None = None
    unify_types: bool = True
    train_split: str = "train"
    devel_split: str = "devel"
    epochs: int = 10
    lr: float = 5e-5
    batch_size: int = 32
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    max_length: int = 256
    seed: int = 13
    patience: int = 3
    max_steps: int | None = None
    eval_every: int = 0
    checkpoint_every: int = 500
    temperature: float = 0.5
    # type -> types whose gold spans exclude it, used on corpora that do not annotate the
    # first type, e.g. {"chemical": ["gene", "species"]}: see training.data.document_examples
    negative_evidence: dict[str, list[str]] = field(default_factory=dict)
    eval_batch_size: int = 64
    threads: int | None = None
    # knowledge levers (docs/features.md): dictionary matches per word (true: the shared
    # dictionaries, cached; or a folder saved by biotag.features.DictionaryMatcher), the
    # word's shape from the cased text, the chance of hiding a match in training, and the
    # decoder (viterbi: BIO-constrained, greedy: argmax, crf: a CRF layer trained along)
    dictionary_features: bool | str = False
    shape_features: bool = False
    feature_dropout: float = 0.1
    decoder: str = "viterbi"
    card: dict[str, Any] = field(default_factory=dict)  # extra model-card fields

    def __post_init__(self) -> None:
        if isinstance(self.corpora, str):
            self.corpora = [self.corpora]
        self.corpora = [str(c) for c in self.corpora]
        if not self.corpora:
            raise InputError("at least one corpus is needed", field="corpora")
        if self.types is not None:
            self.types = [str(t) for t in self.types]
        if self.scheme not in SCHEMES:
            raise InputError(f"unknown tag scheme {self.scheme!r}; expected one of {SCHEMES}", field="scheme")
        positive = ("epochs", "batch_size", "grad_accum", "max_length", "eval_batch_size")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"must be a positive integer, got {getattr(self, name)!r}", field=name)
        for name in ("patience", "eval_every", "checkpoint_every", "seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise InputError(f"must be a non-negative integer, got {getattr(self, name)!r}", field=name)
        for name in ("max_steps", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"must be a positive integer or null, got {value!r}", field=name)
        if not self.lr > 0:
            raise InputError(f"must be positive, got {self.lr!r}", field="lr")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"must be in [0, 1), got {self.warmup_ratio!r}", field="warmup_ratio")
        if not 0 <= self.dropout < 1:
            raise InputError(f"must be in [0, 1), got {self.dropout!r}", field="dropout")
        if not self.temperature >= 0:
            raise InputError(f"must be >= 0, got {self.temperature!r}", field="temperature")
        if not isinstance(self.dictionary_features, (bool, str)):
            raise InputError(f"must be true, false or a dictionary folder, got {self.dictionary_features!r}", field="dictionary_features")
        if not isinstance(self.shape_features, bool):
            raise InputError(f"must be true or false, got {self.shape_features!r}", field="shape_features")
        if not 0 <= self.feature_dropout < 1:
            raise InputError(f"must be in [0, 1), got {self.feature_dropout!r}", field="feature_dropout")
        if self.decoder not in ("greedy", "viterbi", "crf"):
            raise InputError(f"must be greedy, viterbi or crf, got {self.decoder!r}", field="decoder")
        rules = self.negative_evidence
        if not isinstance(rules, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v) for k, v in rules.items()
        ):
            raise InputError(f"must map a type to a list of types, got {rules!r}", field="negative_evidence")

    # -- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str | None = None) -> "TrainConfig":
        if not isinstance(data, dict):
            raise FormatError(f"expected a JSON object, got {type(data).__name__}", path=path)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise InputError(f"unknown setting; known settings: {', '.join(sorted(known))}", path=path, field=key)
        for key in ("corpora", "output_dir"):
            if key not in data:
                raise InputError("required setting is missing", path=path, field=key)
        try:
            return cls(**data)
        except InputError as error:
            raise error.located(path=path) from None
        except TypeError as error:
            raise InputError(str(error), path=path) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """Read a config file written by :meth:`save` (or by hand)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read the config: {error.strerror or error}", path=str(path)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise FormatError(f"not valid JSON: {error.msg}", path=str(path), line=error.lineno) from None
        return cls.from_dict(data, path=str(path))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some settings changed (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def differences(self, other: "TrainConfig", *, ignore: tuple[str, ...] = ("threads", "output_dir")) -> list[str]:
        """Names of the settings that differ (those in ``ignore`` do not change results)."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ignore and a[k] != b[k]]
