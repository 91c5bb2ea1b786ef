"""Word features that put back what a general-English, uncased encoder lacks: dictionary
matches (:mod:`.dictionary`) and the shape of the original word (:mod:`.shape`).

:class:`FeatureExtractor` turns a word list into ``uint8 [n_words, width]``: first one
column per dictionary type holding O/B/I (0/1/2) of its matches, then one 0/1 column per
shape flag. The same extractor runs in training, in PyTorch inference and in the ONNX
engine, and a model directory carries what it needs (``features/dictionary``), so
features are computed identically wherever the model runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from biotag.errors import InputError
from biotag.features.dictionary import COMMON_WORDS, DictionaryMatcher, Match
from biotag.features.shape import SHAPE_FLAGS, shape_features

FEATURES_DIR = "features"


class FeatureExtractor:
    """Dictionary and/or shape features per word."""

    def __init__(self, matcher: DictionaryMatcher | None = None, shape: bool = False) -> None:
        if matcher is None and not shape:
            raise InputError("a feature extractor needs dictionary or shape features", field="features")
        self.matcher = matcher
        self.shape = bool(shape)

    @property
    def dictionary_types(self) -> tuple[str, ...]:
        return self.matcher.types if self.matcher is not None else ()

    @property
    def n_shape(self) -> int:
        return len(SHAPE_FLAGS) if self.shape else 0

    @property
    def width(self) -> int:
        return len(self.dictionary_types) + self.n_shape

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        parts = []
        if self.matcher is not None:
            parts.append(self.matcher.features(words))
        if self.shape:
            parts.append(shape_features(words))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def many(self, word_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [self(words) for words in word_lists]

    # -- persistence (inside a model directory) -------------------------------------------
    def save(self, model_dir: str | Path) -> dict[str, Any]:
        """Copy the dictionary into ``model_dir/features`` and return the spec that
        ``biotag.json`` keeps under ``features``."""
        spec: dict[str, Any] = {"dictionary": None, "shape": list(SHAPE_FLAGS) if self.shape else None}
        if self.matcher is not None:
            target = Path(model_dir) / FEATURES_DIR / "dictionary"
            if target.exists():
                shutil.rmtree(target)
            self.matcher.save(target)
            spec["dictionary"] = {"path": f"{FEATURES_DIR}/dictionary", "types": list(self.matcher.types)}
        return spec

    @classmethod
    def from_spec(cls, model_dir: str | Path, spec: dict[str, Any]) -> "FeatureExtractor":
        """The extractor a model directory's ``biotag.json`` ``features`` entry describes."""
        if not isinstance(spec, dict):
            raise InputError("the features entry must be an object", path=str(model_dir), field="features")
        matcher = None
        if spec.get("dictionary"):
            matcher = DictionaryMatcher.load(Path(model_dir) / spec["dictionary"]["path"])
            if list(matcher.types) != list(spec["dictionary"]["types"]):
                raise InputError("the dictionary's types differ from biotag.json's", path=str(model_dir), field="features")
        shape = spec.get("shape")
        if shape and list(shape) != list(SHAPE_FLAGS)[: len(shape)]:
            raise InputError("the model's shape flags differ from this biotag's", path=str(model_dir), field="features")
        if shape and len(shape) != len(SHAPE_FLAGS):
            raise InputError(f"the model was trained with {len(shape)} shape flags, this biotag computes {len(SHAPE_FLAGS)}", path=str(model_dir), field="features")
        return cls(matcher, bool(shape))


def feature_extractor(dictionary: bool | str | None, shape: bool) -> FeatureExtractor | None:
    """The extractor a training config asks for: ``dictionary`` True means the default
    dictionaries of the shared data (built once, then cached), a string a folder saved by
    :meth:`DictionaryMatcher.save`; None when neither feature is on."""
    if not dictionary and not shape:
        return None
    matcher = None
    if dictionary is True:
        from biotag.features.sources import default_matcher

        try:
            matcher = default_matcher()
        except InputError as error:  # say which setting needs the files and how to do without them
            raise InputError(
                f"{error.message}; dictionary features (on by default) need the shared dictionaries: set BIOTAG_DATA, "
                "give a saved dictionary folder, or turn them off (--no-dictionary-features, \"dictionary_features\": false)",
                path=error.path,
                field="dictionary_features",
            ) from error
    elif dictionary:
        matcher = DictionaryMatcher.load(dictionary)
    return FeatureExtractor(matcher, shape)


__all__ = ["COMMON_WORDS", "DictionaryMatcher", "FeatureExtractor", "Match", "SHAPE_FLAGS", "feature_extractor", "shape_features"]
