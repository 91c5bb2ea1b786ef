"""A relation classifier: any local Hugging Face encoder + a sequence-classification head
over the rendered example (see :mod:`biotag.relations.examples`).

The network is the encoder's own ``...ForSequenceClassification`` (the ``[CLS]`` vector),
so a saved directory loads with ``transformers.AutoModelForSequenceClassification`` as
it is. A model directory holds the Hugging Face files (``config.json`` with ``id2label``
= the task's labels, negative first), the tokenizer (with the marker tokens of the
``typed`` style), ``biotag.json`` (``kind: "relations"``, the task, marker style,
max_length, encoder, training summary) and a model card ``README.md``.

Inputs longer than ``max_length`` sub-words are cut to a window that keeps both
arguments (centred on them), rather than losing the end of the sentence.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from biotag.errors import InputError
from biotag.models.token_classifier import _markdown, _max_input_length, _quiet_transformers, save_network_files
from biotag.paths import find_encoder
from biotag.relations.datasets import RelationTask
from biotag.relations.examples import STYLES, RelationExample, marker_tokens, render, type_name

BIOTAG_FILE = "biotag.json"
KIND = "relations"
FORMAT_VERSION = 1


def _pair_types(task: RelationTask) -> list[str]:
    return [t for pair in task.pairs for t in pair]


@dataclass
class EncodedBatch:
    input_ids: np.ndarray  # int64 [batch, length]
    attention_mask: np.ndarray


class RelationEncoder:
    """Renders examples and turns them into padded id arrays with a ``tokenizers``
    backend, shared by the PyTorch model and the ONNX engine."""

    def __init__(self, backend, task: RelationTask, style: str, max_length: int, pad_id: int) -> None:
        from tokenizers import Tokenizer

        if style not in STYLES:
            raise InputError(f"unknown marker style {style!r}; expected one of {', '.join(STYLES)}", field="style")
        # a private copy without the checkpoint's own truncation and padding (MiniLM's
        # tokenizer.json pads to 128): windows are cut here, around the arguments
        self.backend = Tokenizer.from_str(backend.to_str())
        self.backend.no_truncation()
        self.backend.no_padding()
        self.task, self.style, self.max_length, self.pad_id = task, style, max_length, pad_id

    def render(self, example: RelationExample) -> tuple[str, tuple[int, int]]:
        return render(example, self.style, self.task.type_names)

    def ids(self, examples: Sequence[RelationExample]) -> list[list[int]]:
        rendered = [self.render(e) for e in examples]
        encodings = self.backend.encode_batch([text for text, _ in rendered])
        return [self._window(enc, region) for enc, (_, region) in zip(encodings, rendered)]

    def _window(self, encoding, region: tuple[int, int]) -> list[int]:
        ids = encoding.ids
        if len(ids) <= self.max_length:
            return ids
        # keep [CLS] and [SEP] (the post-processor's first and last tokens) and the
        # content window that centres on both arguments
        first = encoding.char_to_token(region[0])
        last = encoding.char_to_token(max(region[0], region[1] - 1))
        first = 1 if first is None else first
        last = len(ids) - 2 if last is None else last
        room = self.max_length - 2
        centre = (first + last) // 2
        start = max(1, min(centre - room // 2, len(ids) - 1 - room))
        if last - first + 1 > room:  # the arguments are further apart than the window: keep the start of both
            start = max(1, first)
        return [ids[0], *ids[start : start + room], ids[-1]]

    def collate(self, rows: Sequence[Sequence[int]]) -> EncodedBatch:
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return EncodedBatch(input_ids, mask)


def predict_batches(encoder: RelationEncoder, run, examples: Sequence[RelationExample], batch_size: int, width: int) -> np.ndarray:
    """Logits ``[n, width]`` in input order; batches are formed shortest first so that
    each pads little. ``run(batch) -> logits`` is the backend's forward pass."""
    rows = encoder.ids(examples)
    order = sorted(range(len(rows)), key=lambda k: len(rows[k]))
    out = np.zeros((len(rows), width), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        chunk = order[i : i + batch_size]
        out[chunk] = run(encoder.collate([rows[k] for k in chunk]))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class RelationClassifier(torch.nn.Module):
    def __init__(
        self,
        network: torch.nn.Module,
        tokenizer,
        task: RelationTask,
        *,
        style: str = "typed",
        max_length: int = 128,
        encoder_name: str = "",
        card: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if network.config.num_labels != len(task.all_labels):
            raise InputError(
                f"the network has {network.config.num_labels} outputs but the task has {len(task.all_labels)} labels",
                field="num_labels",
            )
        limit = _max_input_length(network.config, tokenizer)
        if max_length > limit:
            raise InputError(f"max_length {max_length} exceeds the encoder's limit of {limit} tokens", field="max_length")
        self.network, self.tokenizer, self.task = network, tokenizer, task
        self.encoder = RelationEncoder(tokenizer.backend_tokenizer, task, style, max_length, tokenizer.pad_token_id or 0)
        self.encoder_name = encoder_name
        self.card: dict[str, Any] = dict(card or {})
        self.eval()

    @property
    def style(self) -> str:
        return self.encoder.style

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @property
    def labels(self) -> tuple[str, ...]:
        return self.task.all_labels

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_encoder(
        cls, encoder_dir: str | Path, task: RelationTask, *, style: str = "typed", max_length: int = 128, dropout: float = 0.1
    ) -> "RelationClassifier":
        """A new classifier (random head) over a pretrained encoder directory or short name;
        the ``typed`` style adds its marker tokens to the vocabulary, each initialised to
        the mean embedding of its type's name, so it starts out meaning that type."""
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        if style not in STYLES:
            raise InputError(f"unknown marker style {style!r}; expected one of {', '.join(STYLES)}", field="style")
        path = find_encoder(encoder_dir)
        config = AutoConfig.from_pretrained(path)
        labels = task.all_labels
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
        if hasattr(config, "hidden_dropout_prob"):
            config.hidden_dropout_prob = dropout
        if hasattr(config, "classifier_dropout"):
            config.classifier_dropout = None
        with _quiet_transformers():
            network = AutoModelForSequenceClassification.from_pretrained(path, config=config)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if style == "typed":
            _add_markers(network, tokenizer, task)
        return cls(network, tokenizer, task, style=style, max_length=max_length, encoder_name=str(encoder_dir))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "RelationClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        directory = Path(directory)
        meta = read_relation_metadata(directory)
        with _quiet_transformers():
            network = AutoModelForSequenceClassification.from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(
            network,
            tokenizer,
            RelationTask.from_dict(meta["task"]),
            style=meta["style"],
            max_length=int(meta["max_length"]),
            encoder_name=meta.get("encoder", ""),
            card=meta.get("training") or {},
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": KIND,
            "task": self.task.to_dict(),
            "style": self.style,
            "max_length": self.max_length,
            "encoder": self.encoder_name,
            "training": self.card,
        }

    def save_pretrained(self, directory: str | Path, card: dict[str, Any] | None = None) -> Path:
        directory = save_network_files(self, directory, card)
        (directory / BIOTAG_FILE).write_text(json.dumps(self.metadata(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (directory / "README.md").write_text(model_card(self.metadata(), self.network.config.model_type), encoding="utf-8")
        return directory

    # -- inference ------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network(input_ids=input_ids, attention_mask=attention_mask).logits

    def _run(self, batch: EncodedBatch) -> np.ndarray:
        device = self.network.device
        return self(torch.from_numpy(batch.input_ids).to(device), torch.from_numpy(batch.attention_mask).to(device)).float().cpu().numpy()

    def predict_logits(self, examples: Sequence[RelationExample], *, batch_size: int = 64) -> np.ndarray:
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return predict_batches(self.encoder, self._run, examples, batch_size, len(self.labels))
        finally:
            self.train(was_training)

    def predict_proba(self, examples: Sequence[RelationExample], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities ``[n, len(labels)]``, labels in :attr:`labels` order."""
        return softmax(self.predict_logits(examples, batch_size=batch_size))


def _add_markers(network, tokenizer, task: RelationTask) -> None:
    markers = marker_tokens(_pair_types(task), task.type_names)
    tokenizer.add_special_tokens({"additional_special_tokens": markers})
    network.resize_token_embeddings(len(tokenizer))
    embeddings = network.get_input_embeddings().weight
    with torch.no_grad():
        for marker in markers:
            name = marker.strip("[]/").split(":", 1)[1]
            pieces = tokenizer(name.lower().replace("_", " "), add_special_tokens=False)["input_ids"]
            if pieces:
                embeddings[tokenizer.convert_tokens_to_ids(marker)] = embeddings[pieces].mean(0)


def read_relation_metadata(directory: Path) -> dict[str, Any]:
    path = directory / BIOTAG_FILE
    if not path.is_file():
        raise InputError("not a biotag model directory (no biotag.json)", path=str(directory), field="model")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InputError(f"unreadable model metadata: {error}", path=str(path), field="model") from None
    if meta.get("kind") != KIND:
        raise InputError("not a relation model (biotag.json has no kind: relations); is it an NER model?", path=str(path), field="kind")
    try:
        RelationTask.from_dict(meta["task"])
        meta["style"], meta["max_length"]
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"unreadable relation model metadata: {error!r}", path=str(path), field="task") from None
    return meta


def is_relation_model(directory: str | Path) -> bool:
    path = Path(directory) / BIOTAG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, ValueError):
        return False


def model_card(meta: dict[str, Any], model_type: str = "") -> str:
    task = RelationTask.from_dict(meta["task"])
    card = meta.get("training") or {}
    pairs = ", ".join(f"{a}–{b}" for a, b in task.pairs)
    names = {t: type_name(t, task.type_names) for t in dict.fromkeys(_pair_types(task))}
    lines = [
        f"# biotag relation classifier: {task.name}",
        "",
        f"- labels: {', '.join(task.labels)} (negative: `{task.negative}`)",
        f"- argument types: {pairs}{' (symmetric)' if task.symmetric else ''}; marker names {names}",
        f"- marker style: `{meta['style']}`, max_length {meta['max_length']} sub-words",
        f"- encoder: `{meta.get('encoder') or 'unknown'}` ({model_type})",
        f"- date: {card.get('date') or datetime.now(timezone.utc).strftime('%Y-%m-%d')}",
        f"- hardware: {card.get('hardware') or platform.platform()}",
        "",
        "Load with `biotag.relations.load_relation_model(dir)` or "
        "`transformers.AutoModelForSequenceClassification.from_pretrained(dir)`; run in documents "
        "with `biotag annotate --steps ner,relations --relation-model DIR`.",
    ]
    for key, title in (("data", "Training data"), ("metrics", "Metrics")):
        if card.get(key) is not None:
            lines += ["", f"## {title}", "", _markdown(card[key])]
    if card.get("command"):
        lines += ["", "## Command", "", "```", str(card["command"]), "```"]
    extra = {k: v for k, v in card.items() if k not in ("data", "command", "metrics", "date", "hardware")}
    if extra:
        lines += ["", "## Training summary", "", _markdown(extra)]
    return "\n".join(lines) + "\n"
