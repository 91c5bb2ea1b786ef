"""A word-level token classifier over any local Hugging Face encoder (BERT, MPNet...).

The network is the encoder's own ``...ForTokenClassification`` head (dropout + linear
over every sub-word), so a saved model directory loads with
``transformers.AutoModelForTokenClassification.from_pretrained(dir)`` as it is. biotag
reads the logits at each word's first sub-word (see :mod:`biotag.text.subwords`), which
gives one score vector per word, ``schema.num_outputs`` wide.

A model directory holds the Hugging Face files (``config.json`` with
``id2label = schema.output_names``, ``model.safetensors``), the tokenizer files,
``biotag.json`` (label schema, window size, encoder name, training summary) and a model
card ``README.md``.
"""

from __future__ import annotations

import json
import logging
import platform
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from biotag.errors import InputError
from biotag.labels import IGNORE, LabelSchema, TokenSpan
from biotag.models.metadata import BIOTAG_FILE, read_metadata
from biotag.models.predict import predict_windows
from biotag.paths import find_encoder
from biotag.text.subwords import SubwordBatch, SubwordEncoder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# weights of the optional feature fusion and CRF layers (biotag's own, beside the HF files)
HEADS_FILE = "biotag_heads.safetensors"


class TokenClassifier(torch.nn.Module):
    """Encoder + linear head predicting per-word scores for a :class:`LabelSchema`."""

    def __init__(
        self,
        network: torch.nn.Module,
        tokenizer,
        schema: LabelSchema,
        *,
        max_length: int = 256,
        stride: int | None = None,
        encoder_name: str = "",
        card: dict[str, Any] | None = None,
        features=None,
        decoder: str = "viterbi",
        feature_dropout: float = 0.0,
    ) -> None:
        """``features`` (a :class:`biotag.features.FeatureExtractor`) adds dictionary
        and/or shape features through a :class:`~biotag.features.fusion.FeatureFusion`
        layer; ``decoder`` is ``viterbi`` (default), ``greedy`` or ``crf`` (adds a
        :class:`~biotag.models.crf.CRF` layer trained with the model)."""
        from biotag.models.decoding import DECODERS

        super().__init__()
        if decoder not in DECODERS:
            raise InputError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}", field="decoder")
        if network.config.num_labels != schema.num_outputs:
            raise InputError(
                f"the network has {network.config.num_labels} outputs but the {schema.scheme} schema "
                f"over {list(schema.types)} needs {schema.num_outputs}",
                field="num_labels",
            )
        self.network = network
        self.tokenizer = tokenizer
        self.schema = schema
        limit = _max_input_length(network.config, tokenizer)
        if max_length > limit:
            raise InputError(f"max_length {max_length} exceeds the encoder's limit of {limit} tokens", field="max_length")
        self.encoder = SubwordEncoder(tokenizer, max_length=max_length, stride=stride)
        self.encoder_name = encoder_name
        self.card: dict[str, Any] = dict(card or {})
        self.features = features
        self.decoder = decoder
        self.fusion = None
        self.crf = None
        if features is not None:
            from biotag.features.fusion import FeatureFusion

            self.fusion = FeatureFusion(
                len(features.dictionary_types), features.n_shape, network.config.hidden_size, dropout=feature_dropout
            )
        if decoder == "crf":
            from biotag.models.crf import CRF

            self.crf = CRF(schema)
        self.eval()  # like Hugging Face models: inference mode until a trainer says otherwise

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_encoder(
        cls,
        encoder_dir: str | Path,
        schema: LabelSchema,
        *,
        max_length: int = 256,
        dropout: float = 0.1,
        stride: int | None = None,
        features=None,
        decoder: str = "viterbi",
        feature_dropout: float = 0.0,
    ) -> "TokenClassifier":
        """A new classifier (random head) over a pretrained encoder directory or short
        name; ``dropout`` is the hidden-layer dropout, which the head uses too (for
        ``features``, ``decoder`` and ``feature_dropout`` see :meth:`__init__`)."""
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        path = find_encoder(encoder_dir)
        config = AutoConfig.from_pretrained(path)
        config.num_labels = schema.num_outputs
        config.id2label = dict(enumerate(schema.output_names))
        config.label2id = {name: i for i, name in enumerate(schema.output_names)}
        if hasattr(config, "hidden_dropout_prob"):
            config.hidden_dropout_prob = dropout
        if hasattr(config, "classifier_dropout"):
            config.classifier_dropout = None  # follow hidden_dropout_prob
        with _quiet_transformers():  # the missing head weights are expected: the head is new
            network = AutoModelForTokenClassification.from_pretrained(path, config=config)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(
            network, tokenizer, schema, max_length=max_length, stride=stride, encoder_name=str(encoder_dir),
            features=features, decoder=decoder, feature_dropout=feature_dropout,
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "TokenClassifier":
        """Load a directory written by :meth:`save_pretrained`."""
        from transformers import AutoTokenizer

        directory = Path(directory)
        meta, schema = read_metadata(directory)
        from biotag.compress.structured import load_network  # a head-pruned model needs rebuilding

        with _quiet_transformers():
            network = load_network(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        features = None
        if meta.get("features"):
            from biotag.features import FeatureExtractor

            features = FeatureExtractor.from_spec(directory, meta["features"])
        model = cls.from_metadata(network, tokenizer, meta, schema, features=features)
        if model.fusion is not None or model.crf is not None:
            model._load_heads(directory / HEADS_FILE)
        return model

    @classmethod
    def from_metadata(cls, network, tokenizer, meta: dict[str, Any], schema: LabelSchema, *, features=None) -> "TokenClassifier":
        """A classifier over ``network`` set up as ``biotag.json``'s ``meta`` says (window,
        encoder name, training card, decoder); feature/CRF weights are the caller's to load."""
        return cls(
            network,
            tokenizer,
            schema,
            max_length=int(meta.get("max_length", 256)),
            stride=meta.get("stride"),
            encoder_name=meta.get("encoder", ""),
            card=meta.get("training") or {},
            features=features,
            decoder=meta.get("decoder", "viterbi"),
            feature_dropout=float((meta.get("features") or {}).get("dropout", 0.0)),
        )

    def add_types(self, added: Mapping[str, str]) -> None:
        """Grow a ``multilabel`` model by the types ``added`` names (new type -> existing
        type), each head a copy of the existing type's O/B/I rows, so a new type starts
        out predicting what its source does and training moves them apart."""
        if self.schema.scheme != "multilabel":
            raise InputError(f"types can be added to a multilabel model, not a {self.schema.scheme} one", field="added_types")
        unknown = sorted({source for source in added.values() if source not in self.schema.types})
        present = sorted(t for t in added if t in self.schema.types)
        if unknown or present:
            problem = f"sources {unknown} are not among" if unknown else f"{present} are already among"
            raise InputError(f"{problem} the model's types {list(self.schema.types)}", field="added_types")
        schema = LabelSchema(self.schema.types + tuple(added), "multilabel")
        rows = [3 * self.schema.type_index(source) + c for source in added.values() for c in range(3)]
        old = self.network.classifier
        head = torch.nn.Linear(old.in_features, schema.num_outputs, bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
        with torch.no_grad():
            head.weight.copy_(torch.cat([old.weight, old.weight[rows]]))
            if old.bias is not None:
                head.bias.copy_(torch.cat([old.bias, old.bias[rows]]))
        self.network.classifier = head
        self.network.num_labels = schema.num_outputs
        if self.crf is not None:  # one chain per type: the new ones copy their sources'
            from biotag.models.crf import CRF

            sources = [self.schema.type_index(source) for source in added.values()]
            p = self.crf.params()
            crf = CRF(schema).to(old.weight.device)
            crf.load_params(type(p)(*(np.concatenate([a, a[sources]]) for a in (p.transitions, p.start, p.end))))
            self.crf = crf
        config = self.network.config
        config.num_labels = schema.num_outputs
        config.id2label = dict(enumerate(schema.output_names))
        config.label2id = {name: i for i, name in enumerate(schema.output_names)}
        self.schema = schema

    def _load_heads(self, path: Path) -> None:
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except Exception as error:  # missing file, or safetensors' own error types
            raise InputError(f"cannot read the feature/CRF weights: {error}", path=str(path), field="model") from None
        expected = {k for k in self.state_dict() if k.startswith(("fusion.", "crf."))}
        if set(state) != expected:
            raise InputError(f"expected weights {sorted(expected)}, found {sorted(state)}", path=str(path), field="model")
        self.load_state_dict(state, strict=False)

    def save_pretrained(self, directory: str | Path, card: dict[str, Any] | None = None) -> Path:
        """Write the model directory; ``card`` (data, command, metrics, date, hardware...)
        goes into ``biotag.json`` as the training summary and into ``README.md``."""
        directory = save_network_files(self, directory, card)
        meta = {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_dict(),
            "max_length": self.encoder.max_length,
            "stride": self.encoder.stride,
            "encoder": self.encoder_name,
            "training": self.card,
        }
        # written only for models that use them, so other models' files stay as they were
        if self.features is not None:
            meta["features"] = {**self.features.save(directory), "dropout": self.fusion.dropout}
        if self.decoder != "viterbi":
            meta["decoder"] = self.decoder
        if self.crf is not None:
            meta["crf"] = self.crf.params().to_dict()  # for the ONNX engine, which has no torch
        if self.fusion is not None or self.crf is not None:
            from safetensors.torch import save_file

            heads = {k: v.contiguous() for k, v in self.state_dict().items() if k.startswith(("fusion.", "crf."))}
            save_file(heads, str(directory / HEADS_FILE))
        (directory / BIOTAG_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (directory / "README.md").write_text(self.model_card(), encoding="utf-8")
        return directory

    # -- inference ------------------------------------------------------------
    def forward(self, batch: SubwordBatch) -> torch.Tensor:
        """Scores ``[n_words, num_outputs]`` at each owned word's first sub-word."""
        device = self.network.device
        input_ids, attention_mask, rows, positions = (
            torch.from_numpy(a).to(device) for a in (batch.input_ids, batch.attention_mask, batch.word_rows, batch.word_positions)
        )
        if self.fusion is None:
            logits = self.network(input_ids=input_ids, attention_mask=attention_mask).logits
            return logits[rows, positions]
        if batch.word_features is None:
            raise InputError("this model uses word features: the batch has none (predict with predict_words)", field="word_features")
        hidden = self.network.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        fused = self.fusion(hidden[rows, positions], torch.from_numpy(batch.word_features).to(device))
        return self.network.classifier(self.network.dropout(fused))

    def predict_words(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per-word logits, float32 ``[n_words, num_outputs]`` per word list, in input order."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return predict_windows(
                    self.encoder, lambda batch: self(batch).float().cpu().numpy(), word_lists, self.schema.num_outputs, batch_size,
                    features=self.features,
                )
        finally:
            self.train(was_training)

    def word_distributions(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per word, the model's label distribution as log-probabilities (CRF marginals for
        a CRF model; :func:`~biotag.models.decoding.word_log_probs`), in input order."""
        from biotag.models.decoding import word_log_probs

        crf = self.crf.params() if self.crf is not None else None
        return [word_log_probs(self.schema, s, crf) for s in self.predict_words(word_lists, batch_size=batch_size)]

    def decode(self, scores: np.ndarray, *, constrained: bool = True) -> list[tuple[TokenSpan, float]]:
        """Spans by the model's decoder (:mod:`biotag.models.decoding`); ``constrained``
        False decodes greedily whatever the decoder."""
        from biotag.models.decoding import decode_scores

        return decode_scores(self.schema, scores, self.decoder, self.crf.params() if self.crf is not None else None, constrained=constrained)

    def decode_batch(self, score_list: list[np.ndarray], *, constrained: bool = True) -> list[list[tuple[TokenSpan, float]]]:
        """:meth:`decode` of many sentences at once (a CRF decodes them vectorised)."""
        from biotag.models.decoding import decode_many

        return decode_many(self.schema, score_list, self.decoder, self.crf.params() if self.crf is not None else None, constrained=constrained)

    # -- training -------------------------------------------------------------
    def loss(
        self, scores: torch.Tensor, labels: torch.Tensor, type_mask: torch.Tensor | None = None, word_rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean word loss (:func:`word_loss`), or with a CRF its partial-label negative
        log-likelihood, which needs ``word_rows`` (the batch row of each word)."""
        if self.crf is not None:
            if word_rows is None:
                raise InputError("a CRF loss needs the batch row of each word (word_rows)", field="word_rows")
            return self.crf.loss(scores, labels, type_mask, word_rows)
        return word_loss(scores, labels, self.schema, type_mask)

    # -- model card -------------------------------------------------------------
    def model_card(self) -> str:
        card = self.card
        lines = [
            f"# biotag token classifier: {', '.join(self.schema.types)}",
            "",
            f"- scheme: `{self.schema.scheme}` ({self.schema.num_outputs} outputs, one score vector per word)",
            f"- encoder: `{self.encoder_name or 'unknown'}` ({self.network.config.model_type})",
            f"- max_length: {self.encoder.max_length} sub-words per window, stride {self.encoder.stride}",
            *([f"- word features: dictionary types {list(self.features.dictionary_types)}, shape flags {self.features.n_shape} "
               f"(computed by biotag.features from the words; files in features/)"] if self.features is not None else []),
            *([f"- decoder: {self.decoder}"] if self.decoder != "viterbi" else []),
            f"- date: {card.get('date') or datetime.now(timezone.utc).strftime('%Y-%m-%d')}",
            f"- hardware: {card.get('hardware') or platform.platform()}",
            "",
            "Load with `biotag.load(dir)`, `TokenClassifier.from_pretrained(dir)` or "
            "`transformers.AutoModelForTokenClassification.from_pretrained(dir)` (scores are read "
            "at each word's first sub-word).",
        ]
        if card.get("data") is not None:
            lines += ["", "## Training data", "", _markdown(card["data"])]
        if card.get("command"):
            lines += ["", "## Command", "", "```", str(card["command"]), "```"]
        if card.get("metrics") is not None:
            lines += ["", "## Metrics", "", _markdown(card["metrics"])]
        extra = {k: v for k, v in card.items() if k not in ("data", "command", "metrics", "date", "hardware")}
        if extra:
            lines += ["", "## Training summary", "", _markdown(extra)]
        return "\n".join(lines) + "\n"


def word_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    schema: LabelSchema,
    type_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over labelled words.

    ``bio``: ``labels`` is ``[n]`` (``-100`` = ignored). ``type_mask`` (``[n, n_types]``,
    True where the word's corpus annotates the type) makes an ``O`` label partial: where
    a type is not annotated, ``O`` may hide an entity of that type, so the loss is minus
    the log of the summed probability of ``O``, ``B-t`` and ``I-t`` of every
    unannotated type ``t``.

    ``multilabel``: ``labels`` is ``[n, n_types]`` of O/B/I ids and the loss is averaged
    over the (word, type) pairs whose type is annotated and whose label is not ``-100``.
    """
    if schema.scheme == "multilabel":
        n_types = len(schema.types)
        labels = labels.reshape(-1, n_types)
        if type_mask is not None:
            labels = labels.masked_fill(~type_mask.bool(), IGNORE)
        if not (labels != IGNORE).any():
            return scores.sum() * 0.0  # keeps the graph; nothing to learn from this batch
        return F.cross_entropy(scores.reshape(-1, 3), labels.reshape(-1), ignore_index=IGNORE)
    keep = labels != IGNORE
    if not keep.any():
        return scores.sum() * 0.0
    scores, labels = scores[keep], labels[keep]
    if type_mask is None or bool(type_mask.all()):
        return F.cross_entropy(scores, labels)
    allowed = F.one_hot(labels, schema.num_outputs).bool()
    unannotated = ~type_mask[keep].bool()  # [n, n_types]
    is_o = (labels == 0)[:, None]
    allowed[:, 1::2] |= unannotated & is_o  # B-t
    allowed[:, 2::2] |= unannotated & is_o  # I-t
    log_total = torch.logsumexp(scores, dim=-1)
    log_allowed = torch.logsumexp(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return (log_total - log_allowed).mean()


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars for the duration."""
    from transformers.utils import logging as hf_logging

    verbosity, bars_off = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled() is False
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if not bars_off:
            hf_logging.enable_progress_bar()


def save_network_files(model, directory: str | Path, card: dict[str, Any] | None) -> Path:
    """The Hugging Face half of a biotag model directory (network weights, config,
    tokenizer), shared by every biotag model class; ``card`` replaces the model's training
    summary when given. Returns the directory as a Path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if card is not None:
        model.card = dict(card)
    with _quiet_transformers():
        model.network.save_pretrained(directory)
    model.tokenizer.save_pretrained(directory)
    return directory


def _max_input_length(config, tokenizer) -> int:
    """Longest input the encoder takes, from the tokenizer (when it states one) and the
    position table (RoBERTa-style models such as MPNet reserve ``pad_token_id + 1`` slots)."""
    positions = getattr(config, "max_position_embeddings", None) or 512
    if config.model_type in ("roberta", "mpnet", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 0) + 1
    stated = getattr(tokenizer, "model_max_length", None)
    return min(positions, stated) if stated and stated < 1_000_000 else positions


def _markdown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(f"- {k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}" for k, v in value.items())
    if isinstance(value, Sequence):
        return "\n".join(f"- {v}" for v in value)
    return str(value)
