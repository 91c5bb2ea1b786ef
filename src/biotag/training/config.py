"""The training configuration: one JSON-serialisable dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from biotag.errors import InputError
from biotag.json_config import JsonConfig
from biotag.labels import SCHEMES


@dataclass
class TrainConfig(JsonConfig):
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

    REQUIRED: ClassVar[tuple[str, ...]] = ("corpora", "output_dir")

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
    # type -> types whose gold spans may hide it on corpora annotating both, e.g.
    # {"gene": ["dna", "rna"]} for JNLPBA: see training.data.document_examples
    uncertain_inside: dict[str, list[str]] = field(default_factory=dict)
    eval_batch_size: int = 64
    threads: int | None = None
    # where the model trains: cpu, cuda (cuda:N) or auto (cuda when torch sees a GPU);
    # CPU-only machines need nothing else, a GPU just makes the same run faster
    device: str = "cpu"
    # knowledge levers (docs/features.md): dictionary matches per word (true: the shared
    # dictionaries, cached; or a folder saved by biotag.features.DictionaryMatcher), the
    # word's shape from the cased text, the chance of hiding a match in training, and the
    # decoder (crf: a CRF layer trained along; viterbi: BIO-constrained; greedy: argmax).
    # Dictionary + shape + CRF is the default because it raised test F1 on every corpus of
    # the ablation in docs/results.md (issue 9)
    dictionary_features: bool | str = True
    shape_features: bool = True
    feature_dropout: float = 0.1
    decoder: str = "crf"
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
        self._require_int("epochs", "batch_size", "grad_accum", "max_length", "eval_batch_size", minimum=1)
        self._require_int("patience", "eval_every", "checkpoint_every", "seed", minimum=0)
        self._require_int("max_steps", "threads", minimum=1, optional=True)
        self._require_in("lr", "(0, inf)")
        for name in ("warmup_ratio", "dropout", "feature_dropout"):
            self._require_in(name, "[0, 1)")
        self._require_in("temperature", "[0, inf)")
        if not isinstance(self.dictionary_features, (bool, str)):
            raise InputError(f"must be true, false or a dictionary folder, got {self.dictionary_features!r}", field="dictionary_features")
        if not isinstance(self.shape_features, bool):
            raise InputError(f"must be true or false, got {self.shape_features!r}", field="shape_features")
        self._require_device()
        if self.decoder not in ("greedy", "viterbi", "crf"):
            raise InputError(f"must be greedy, viterbi or crf, got {self.decoder!r}", field="decoder")
        for name in ("negative_evidence", "uncertain_inside"):
            rules = getattr(self, name)
            if not isinstance(rules, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v) for k, v in rules.items()
            ):
                raise InputError(f"must map a type to a list of types, got {rules!r}", field=name)
