"""ONNX Runtime inference for biotag model directories exported by :mod:`biotag.runtime.export`.

:class:`OnnxTokenClassifier` is a drop-in word-level predictor (``schema``,
``predict_words``, ``decode``) with exactly the windowing and merging of the PyTorch
:class:`~biotag.models.token_classifier.TokenClassifier` (both run
:func:`biotag.models.predict.predict_windows`); only the forward pass differs.

Loading needs neither PyTorch nor transformers: importing ``transformers`` to build a
tokenizer costs about two seconds and pulls in PyTorch, so the tokenizer is read with the
``tokenizers`` library straight from ``tokenizer.json`` (which the export writes from the
very tokenizer the PyTorch model used) and wrapped by :class:`FastTokenizer` in the small
part of the transformers tokenizer interface that
:class:`~biotag.text.subwords.SubwordEncoder` uses.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from tokenizers import Tokenizer
from tokenizers.models import WordPiece

from biotag.errors import InputError
from biotag.labels import LabelSchema, TokenSpan
from biotag.models.metadata import read_metadata
from biotag.models.predict import predict_windows
from biotag.runtime.layernorm import DISABLED_OPTIMIZERS, has_fused_layer_norms, split_skip_layer_norms
from biotag.text.subwords import SubwordBatch, SubwordEncoder

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
INPUT_NAMES = ("input_ids", "attention_mask")
FEATURES_INPUT = "word_features"  # int64 [batch, sequence, width], only in models with word features
OUTPUT_NAME = "logits"
# what ORT raises for a missing, truncated or invalid model file
_ORT_LOAD_ERRORS = (
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.InvalidGraph,
    ort_errors.InvalidProtobuf,
    ort_errors.NoSuchFile,
    ort_errors.NotImplemented,
    ort_errors.RuntimeException,
)


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` behind the calls :class:`SubwordEncoder` makes on a
    transformers fast tokenizer: ``tokenizer(word_lists, is_split_into_words=True,
    add_special_tokens=...)`` returning ``["input_ids"]`` and ``word_ids(row)``, plus
    ``unk_token_id``, ``pad_token_id`` and ``is_fast``."""

    is_fast = True
    CACHE_WORDS = 500_000  # cached words before the cache starts over (~100 MB at most)

    def __init__(self, tokenizer: Tokenizer, *, unk_token_id: int, pad_token_id: int | None) -> None:
        # a tokenizer.json may carry the checkpoint's fixed-length truncation and padding
        # (sentence-transformers' MiniLM: 128); transformers ignores them unless asked,
        # and so must we: windows are cut at word boundaries by SubwordEncoder
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.backend = tokenizer
        self.unk_token_id = unk_token_id
        self.pad_token_id = pad_token_id
        # WordPiece splits each pre-split word on its own, so a word's sub-words do not
        # depend on its neighbours and can be cached: text repeats its words. Measured on
        # 1,000 bern2 abstracts with a 3-layer int8 student: 5 % less end-to-end time
        self._cache: dict[str, list[int]] = {}
        self.word_pieces = self._cached_word_pieces if isinstance(tokenizer.model, WordPiece) else None

    @classmethod
    def from_directory(cls, directory: str | Path) -> "FastTokenizer":
        """Load ``tokenizer.json`` and take ``[UNK]`` / ``[PAD]`` from ``tokenizer_config.json``
        (or ``special_tokens_map.json``), as transformers does."""
        directory = Path(directory)
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            raise InputError("no tokenizer.json: the ONNX engine needs a fast tokenizer file", path=str(path), field="tokenizer")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises a bare Exception for a malformed file
            raise InputError(f"unreadable tokenizer: {error}", path=str(path), field="tokenizer") from None
        special = _special_token_names(directory)
        ids = {}
        for role in ("unk_token", "pad_token"):
            name = special.get(role)
            ids[role] = tokenizer.token_to_id(name) if name is not None else None
        if ids["unk_token"] is None:
            raise InputError(
                f"the tokenizer has no unknown token in its vocabulary (unk_token={special.get('unk_token')!r})",
                path=str(directory),
                field="unk_token",
            )
        return cls(tokenizer, unk_token_id=ids["unk_token"], pad_token_id=ids["pad_token"])

    def _cached_word_pieces(self, word_lists: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Sub-word ids of each word (``[]`` for a word with none), as ``encode_batch`` of
        the pre-split words gives them. ``word_pieces`` is this method, or ``None`` for a
        tokenizer whose sub-words of a word may depend on its neighbours."""
        cache = self._cache
        found: dict[str, list[int]] = {}  # local, so a concurrent call clearing the cache is harmless
        new = []
        for word in {w for words in word_lists for w in words}:
            ids = cache.get(word)
            if ids is None:
                new.append(word)
            else:
                found[word] = ids
        if new:
            encoded = self.backend.encode_batch([[w] for w in new], is_pretokenized=True, add_special_tokens=False)
            added = dict(zip(new, (e.ids for e in encoded)))
            found.update(added)
            if len(cache) + len(added) > self.CACHE_WORDS:
                cache.clear()
            cache.update(added)
        return [[found[w] for w in words] for words in word_lists]

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def __call__(
        self,
        word_lists: Sequence[Sequence[str]],
        *,
        is_split_into_words: bool,
        add_special_tokens: bool = True,
        return_attention_mask: bool = False,
        return_token_type_ids: bool = False,
    ) -> "_Encodings":
        if not is_split_into_words or return_attention_mask or return_token_type_ids:
            raise NotImplementedError("FastTokenizer only encodes pre-split words into input ids")
        batch = [list(words) for words in word_lists]
        return _Encodings(self.backend.encode_batch(batch, is_pretokenized=True, add_special_tokens=add_special_tokens))


class _Encodings:
    """The ``BatchEncoding`` view SubwordEncoder reads: ``["input_ids"]`` and ``word_ids(row)``."""

    def __init__(self, encodings) -> None:
        self._encodings = encodings
        self._input_ids = [e.ids for e in encodings]

    def __getitem__(self, key: str) -> list[list[int]]:
        if key != "input_ids":
            raise KeyError(key)
        return self._input_ids

    def word_ids(self, row: int) -> list[int | None]:
        return self._encodings[row].word_ids


class OnnxTokenClassifier:
    """Per-word scores from an exported biotag model with ONNX Runtime on CPU."""

    def __init__(
        self,
        session: ort.InferenceSession,
        encoder: SubwordEncoder,
        schema: LabelSchema,
        *,
        model_file: Path,
        metadata: dict[str, Any],
        features=None,
    ) -> None:
        from biotag.models.decoding import CrfParams

        self.session = session
        self.encoder = encoder
        self.schema = schema
        self.model_file = model_file
        self.metadata = metadata
        self.features = features  # biotag.features.FeatureExtractor, computed as in PyTorch
        self.decoder = metadata.get("decoder", "viterbi")
        self.crf = CrfParams.from_dict(metadata["crf"]) if self.decoder == "crf" else None

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, threads: int | None = None, file: str | None = None
    ) -> "OnnxTokenClassifier":
        """Load an exported model directory. ``file`` picks the ONNX file (default: the one
        ``biotag.json`` names, else the only ``*.onnx`` there); ``threads`` is the number of
        intra-op threads (default: the physical cores this process may use)."""
        directory = Path(directory)
        metadata, schema = read_metadata(directory)
        model_file = _model_file(directory, metadata, file)
        session = _session(model_file, threads, metadata.get("onnx"))
        features = None
        if metadata.get("features"):
            from biotag.features import FeatureExtractor

            features = FeatureExtractor.from_spec(directory, metadata["features"])
        _check_signature(session, schema, model_file, features=features is not None)
        tokenizer = FastTokenizer.from_directory(directory)
        encoder = SubwordEncoder(tokenizer, max_length=int(metadata.get("max_length", 256)), stride=metadata.get("stride"))
        return cls(session, encoder, schema, model_file=model_file, metadata=metadata, features=features)

    def __repr__(self) -> str:
        return f"OnnxTokenClassifier({str(self.model_file)!r}, types={list(self.schema.types)}, scheme={self.schema.scheme!r})"

    def predict_words(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per-word logits, float32 ``[n_words, num_outputs]`` per word list, in input order."""
        return predict_windows(
            self.encoder, self._run_batch, word_lists, self.schema.num_outputs, batch_size, features=self.features
        )

    def word_distributions(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per word, the model's label distribution as log-probabilities (CRF marginals for
        a CRF model), as :meth:`TokenClassifier.word_distributions` gives them."""
        from biotag.models.decoding import word_log_probs

        return [word_log_probs(self.schema, s, self.crf) for s in self.predict_words(word_lists, batch_size=batch_size)]

    def decode(self, scores: np.ndarray, *, constrained: bool = True) -> list[tuple[TokenSpan, float]]:
        from biotag.models.decoding import decode_scores

        return decode_scores(self.schema, scores, self.decoder, self.crf, constrained=constrained)

    def decode_batch(self, score_list: list[np.ndarray], *, constrained: bool = True) -> list[list[tuple[TokenSpan, float]]]:
        from biotag.models.decoding import decode_many

        return decode_many(self.schema, score_list, self.decoder, self.crf, constrained=constrained)

    def _run_batch(self, batch: SubwordBatch) -> np.ndarray:
        (logits,) = self.session.run([OUTPUT_NAME], feeds(batch))
        return logits[batch.word_rows, batch.word_positions]  # each owned word's first sub-word


def feeds(batch: SubwordBatch) -> dict[str, np.ndarray]:
    """Graph inputs of a batch; word features go to each owned word's first sub-word
    (the only positions whose scores are read), zeros elsewhere."""
    out = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if getattr(batch, "word_features", None) is not None:  # relation batches have none
        dense = np.zeros((*batch.input_ids.shape, batch.word_features.shape[1]), dtype=np.int64)
        dense[batch.word_rows, batch.word_positions] = batch.word_features
        out[FEATURES_INPUT] = dense
    return out


def default_threads() -> int:
    """Physical cores, capped by the CPUs this process may run on: hyper-threads add
    little to matrix products, and oversubscribing a restricted process only thrashes."""
    import psutil

    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical
    return max(1, min(physical, usable))


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """CPU settings for one predictor: ``threads`` intra-op threads, no inter-op
    parallelism (the graph is a chain), all graph optimisations."""
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}", field="threads")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


@lru_cache(maxsize=1)
def cpu_has_vnni(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether this x86 CPU has VNNI (or AMX) int8 dot products; None where it cannot be told
    (no /proc/cpuinfo) or does not matter (not x86)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None
    try:
        flags = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return None
    return bool(set(flags.split()) & {"avx512_vnni", "avx_vnni", "amx_int8"})


def warn_if_saturating(model_file: Path, onnx_record: dict[str, Any] | None, has_vnni: bool | None = None) -> bool:
    """Log a warning (and return True) when a full-range (8-bit weight) int8 export is loaded
    on an x86 CPU without VNNI, where ONNX Runtime's u8s8 kernels can saturate and lose
    accuracy; such models should be exported without ``--full-range`` for that machine."""
    if (onnx_record or {}).get("weight_bits") != 8:
        return False
    if (cpu_has_vnni() if has_vnni is None else has_vnni) is not False:
        return False
    log.warning(
        "%s has 8-bit int8 weights (exported with --full-range) but this CPU has no VNNI: results may be "
        "less accurate; export without --full-range for this machine",
        model_file,
    )
    return True


def _session(model_file: Path, threads: int | None, onnx_record: dict[str, Any] | None = None) -> ort.InferenceSession:
    """A CPU session; a graph whose export record lists fused skip layer norms is split back
    into Add + LayerNormalization first (:mod:`biotag.runtime.layernorm`)."""
    warn_if_saturating(model_file, onnx_record)
    source: str | bytes = str(model_file)
    if has_fused_layer_norms(onnx_record):
        import onnx

        try:
            graph = onnx.load(source)
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError, OSError...
            raise InputError(f"unreadable ONNX file: {error}", path=str(model_file), field="onnx") from None
        if split_skip_layer_norms(graph):
            source = graph.SerializeToString()
    try:
        return ort.InferenceSession(
            source, session_options(threads), providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )
    except _ORT_LOAD_ERRORS as error:
        raise InputError(f"ONNX Runtime cannot load the model: {error}", path=str(model_file), field="onnx") from None


def _model_file(directory: Path, metadata: dict[str, Any], file: str | None) -> Path:
    if file is None:
        file = (metadata.get("onnx") or {}).get("file")
    if file is None:
        candidates = sorted(p.name for p in directory.glob("*.onnx"))
        if len(candidates) != 1:
            found = ", ".join(candidates) if candidates else "none"
            raise InputError(
                f"cannot tell which ONNX file to load (found: {found}); name it in biotag.json "
                "(onnx.file) or pass file=",
                path=str(directory),
                field="onnx",
            )
        file = candidates[0]
    path = directory / file
    if not path.is_file():
        raise InputError(f"ONNX file {file!r} not found", path=str(path), field="onnx")
    return path


def _check_signature(session: ort.InferenceSession, schema: LabelSchema, model_file: Path, *, features: bool = False) -> None:
    """The graph must take exactly input_ids / attention_mask (and word_features for a
    model with word features) and give logits of the schema's width (when the width is
    fixed in the graph)."""
    inputs = sorted(i.name for i in session.get_inputs())
    outputs = {o.name: o.shape for o in session.get_outputs()}
    expected = sorted(INPUT_NAMES + ((FEATURES_INPUT,) if features else ()))
    if inputs != expected or OUTPUT_NAME not in outputs:
        raise InputError(
            f"the graph takes {inputs} and gives {list(outputs)}; a biotag export takes "
            f"{expected} and gives [{OUTPUT_NAME!r}]",
            path=str(model_file),
            field="onnx",
        )
    width = outputs[OUTPUT_NAME][-1]
    if isinstance(width, int) and width != schema.num_outputs:
        raise InputError(
            f"the graph gives {width} scores per token but the {schema.scheme} schema over "
            f"{list(schema.types)} needs {schema.num_outputs}",
            path=str(model_file),
            field="schema",
        )


def _special_token_names(directory: Path) -> dict[str, str]:
    """Special token strings by role (``unk_token``...) from the transformers config files
    (an entry is a string or an AddedToken dict with ``content``)."""
    names: dict[str, str] = {}
    for config_file in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins, as in transformers
        path = directory / config_file
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise InputError(f"unreadable tokenizer config: {error}", path=str(path), field="tokenizer") from None
        for role in ("unk_token", "pad_token"):
            value = config.get(role)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                names[role] = value
    return names
