"""A learned re-ranker for entity linking: a small bi-encoder of names (SapBERT's idea).

SapBERT (Liu et al., NAACL 2021) fine-tunes an encoder so that the names of one concept
embed close together ("self-alignment" on the dictionary's own synonyms). biotag trains
the same kind of model here (:mod:`biotag.linking.rerank_train`), from a small
general-English MiniLM, and uses it to **re-rank** the string matcher's candidates rather
than to search the whole vocabulary: string matching is already right for most
mentions, and embedding every MeSH name would cost more than the 3-gram index.

:class:`EmbeddingReranker` implements :class:`~biotag.linking.candidates.Reranker`: for
each candidate, the cosine between the mention and the candidate's matched name (or its
preferred name, whichever is closer) is combined with the string score::

    score = (1 - weight) * string score + weight * max(cosine, 0)

``weight``, ``pool`` (how many of the string matcher's best candidates are re-scored)
and ``names`` (how many names of each candidate the mention is compared with) are tuned
on the devel splits and stored with the model, with the entity types it was trained for
(mentions of other types keep the string matcher's order). Embeddings of names are
cached (candidate names repeat across mentions), so a re-ranked mention often costs one
forward pass of the mention alone; a cold one costs up to ``pool * names`` names.

A re-ranker directory holds a Hugging Face encoder (``config.json``, weights, tokenizer)
and ``reranker.json`` (:data:`FORMAT`, pooling, ``max_length``, ``weight``, how it was
trained). Load it with :func:`load_reranker` or ``Linker(reranker=DIR)``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from biotag.errors import FormatError, InputError
from biotag.linking.candidates import Candidate
from biotag.linking.normalize import normalize

FORMAT = 1
CONFIG_FILE = "reranker.json"
KIND = "biotag-linking-reranker"
DEFAULT_WEIGHT = 0.5
DEFAULT_POOL = 20  # candidates re-scored
DEFAULT_MAX_LENGTH = 32
# names of one candidate compared at most: the matched and preferred ones, then synonyms
# (some concepts have hundreds, and each costs a forward pass the first time)
MAX_NAMES = 26


class BiEncoder:
    """An encoder of short names into L2-normalised vectors (mean pooling over tokens,
    as the sentence-embedding checkpoints it starts from were trained)."""

    def __init__(self, model, tokenizer, *, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, max_length: int = DEFAULT_MAX_LENGTH) -> "BiEncoder":
        """A Hugging Face encoder directory (a pretrained encoder or a saved re-ranker)."""
        from transformers import AutoModel, AutoTokenizer

        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise InputError("not an encoder directory (no config.json)", path=str(directory))
        model = AutoModel.from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(model, tokenizer, max_length=max_length)

    def embed(self, texts: Sequence[str]):
        """Normalised embeddings as a torch tensor (with gradients when training)."""
        import torch

        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Normalised float32 embeddings, ``[len(texts), dim]``, without gradients."""
        import torch

        if not texts:
            return np.zeros((0, self.model.config.hidden_size), np.float32)
        self.model.eval()
        # short names first: batches of similar length pad less
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.model.config.hidden_size), np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                out[chunk] = self.embed([texts[i] for i in chunk]).float().numpy()
        return out

    def save(self, directory: str | Path, info: dict) -> Path:
        """Write the encoder and ``reranker.json`` (``info`` plus format and pooling)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        config = {"kind": KIND, "format": FORMAT, "pooling": "mean", "max_length": self.max_length, **info}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return directory


def read_config(directory: str | Path) -> dict:
    """``reranker.json`` of a re-ranker directory, checked."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"not a linking re-ranker directory (no {CONFIG_FILE}); train one with `biotag train-reranker`", path=str(directory))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(f"cannot read the re-ranker configuration: {exc}", path=str(path)) from None
    if config.get("kind") != KIND or config.get("format") != FORMAT:
        raise FormatError(f"re-ranker format {config.get('format')!r} is not {FORMAT}", path=str(path), field="format")
    weight = config.get("weight", DEFAULT_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise FormatError("weight must be a number between 0 and 1", path=str(path), field="weight")
    for key in ("pool", "names"):
        value = config.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FormatError(f"{key} must be a positive integer", path=str(path), field=key)
    return config


class EmbeddingReranker:
    """Re-scores a mention's candidates with a :class:`BiEncoder` (see the module
    docstring); ``weight`` is the share of the embedding cosine in the new score,
    ``pool`` the number of candidates the linker hands over, ``names`` the names of each
    candidate compared (2: the matched and the preferred one only)."""

    def __init__(
        self,
        encoder: BiEncoder,
        weight: float = DEFAULT_WEIGHT,
        *,
        pool: int = DEFAULT_POOL,
        names: int = MAX_NAMES,
        cache_size: int = 200_000,
        info: dict | None = None,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise InputError(f"re-ranker weight must be between 0 and 1, not {weight}", field="weight")
        if pool < 1 or names < 1:
            raise InputError(f"re-ranker pool and names must be positive, not {pool} and {names}", field="pool")
        self.encoder = encoder
        self.weight = weight
        self.pool = pool
        self.max_names = names
        self.info = info or {}
        # the entity types it was trained for (empty: all); others keep the string order
        self.types = frozenset(self.info.get("types") or ())
        self.path: str | None = None  # the directory it was loaded from
        self.concept_names: Callable[[Candidate], list[str]] | None = None  # set by the Linker
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size  # name embeddings kept
        self._lock = threading.Lock()  # the linker may be shared by a service's threads

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        weight: float | None = None,
        pool: int | None = None,
        names: int | None = None,
        threads: int | None = None,
    ) -> "EmbeddingReranker":
        """A saved re-ranker, with its tuned ``weight``, ``pool`` and ``names`` unless given."""
        config = read_config(directory)
        if threads:
            import torch

            torch.set_num_threads(threads)
        encoder = BiEncoder.from_pretrained(directory, max_length=int(config.get("max_length", DEFAULT_MAX_LENGTH)))
        reranker = cls(
            encoder,
            config.get("weight", DEFAULT_WEIGHT) if weight is None else weight,
            pool=config.get("pool", DEFAULT_POOL) if pool is None else pool,
            names=config.get("names", MAX_NAMES) if names is None else names,
            info=config,
        )
        reranker.path = str(directory)
        return reranker

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of normalised texts, from the cache or encoded now."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vector in zip(missing, self.encoder.encode(missing)):
                    self._cache[text] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return np.stack([self._cache[t] for t in texts])

    def clear_cache(self) -> None:
        """Forget the name embeddings (to measure cold speed)."""
        with self._lock:
            self._cache.clear()

    def names(self, candidate: Candidate) -> list[str]:
        """The normalised names a candidate is compared by: the one matched, the
        preferred one and, when the linker provides them (:attr:`concept_names`), its
        other synonyms, as SapBERT compares a mention with every dictionary name."""
        names = [candidate.matched, candidate.name]
        if self.concept_names is not None and self.max_names > 2:
            names += self.concept_names(candidate)[: self.max_names]
        return list(dict.fromkeys(n for n in (normalize(x) for x in names) if n))[: self.max_names]

    def similarities(self, mention: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Cosine of the mention to each candidate: to the closest of its names."""
        query = normalize(mention) or mention.lower()
        names = [self.names(c) or [c.name.lower()] for c in candidates]
        vectors = self.vectors([query, *(n for found in names for n in found)])
        sims = vectors[1:] @ vectors[0]
        bounds = np.cumsum([0, *(len(found) for found in names)])
        return np.array([sims[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])], np.float32)

    def rerank(self, mention: str, entity_type: str, candidates: list[Candidate]) -> list[Candidate]:
        if not candidates or (self.types and entity_type not in self.types):
            return candidates
        sims = np.clip(self.similarities(mention, candidates), 0.0, 1.0)
        # new objects: the linker's candidate lists are shared with its cache
        scored = [
            dataclasses.replace(c, score=float((1.0 - self.weight) * c.score + self.weight * s))
            for c, s in zip(candidates, sims.tolist())
        ]
        return sorted(scored, key=lambda c: (-c.score, c.priority, c.order))


def load_reranker(reranker: "str | Path | EmbeddingReranker | None", **options) -> "EmbeddingReranker | None":
    """A re-ranker from a directory (or one given as is; ``None`` stays ``None``);
    ``options`` of :meth:`EmbeddingReranker.load` left ``None`` keep the saved values."""
    if reranker is None or hasattr(reranker, "rerank"):
        return reranker
    return EmbeddingReranker.load(reranker, **options)
