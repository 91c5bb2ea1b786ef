"""The teacher side of distillation: one trained model, or an ensemble of several whose
soft labels are averaged.

A teacher hands its student each word's label distribution
(:meth:`TokenClassifier.word_distributions`: CRF marginals for a CRF model, the softmax
of the scores otherwise). An ensemble's soft label is the arithmetic mean of its members'
distributions, per softmax group: the usual "averaged soft labels", which keeps a word
uncertain where the members disagree. Members may use different encoders and tokenizers
(they meet on words) and different decoders, but must predict the same types with the same
scheme. The first member is the primary teacher: the student's decoder, the layers kept by
``student_layers`` and hidden-state or attention transfer come from it.

Type teachers (TinyBERN2's weak supervision): models trained on single corpora, each
predicting some of the student's types, with any scheme. For each type they predict, the
student's soft label is their mean per-type distribution (O/B/I of that type: a ``bio``
member's ``B-t`` and ``I-t`` probabilities, the rest as O), in place of the primary teacher's;
the types no type teacher predicts keep the primary's. So the best single-corpus model of each
type teaches it on every sentence, not only on its own corpus. The student's scheme must be
``multilabel``, whose per-type groups such marginals fill exactly.

Corpora annotate one type by different guidelines (a BC2GM gene is not a JNLPBA protein), and
the mean of two guidelines blurs both. So by default (``type_mode`` ``corpus``) a sentence of a
gold corpus learns a type from the type teachers trained on that corpus when there are any (a
type teacher's corpora are the ``data`` of its card), and from the mean of all of the type's
teachers otherwise (other corpora's types, unlabelled text); ``mean`` always takes the mean.
With a ``cache_root``, each type teacher's own outputs are cached there (per teacher, by its
fingerprint), so a teacher runs once over a sentence whatever ensemble or mode it later serves.

A teacher may also be an ONNX export (``biotag export``; the bundled model is one): it hands
over the same distributions, computed by ONNX Runtime, but has no PyTorch network, so it
cannot give a student its layers or inner states.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from biotag.distill.soft_labels import SoftLabelCache, teacher_fingerprint
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.decoding import LOG_FLOOR
from biotag.models.ensemble import mean_distribution
from biotag.models.token_classifier import TokenClassifier

TYPE_MODES = ("corpus", "mean")
CRF_FORM = "crf-marginals"  # in the fingerprint: a CRF teacher's cache holds marginals, not its raw scores


class Teachers:
    """Trained teacher models loaded from ``dirs`` (the first is the primary one), and
    ``type_dirs``, the type teachers."""

    def __init__(
        self,
        dirs: Sequence[str | Path],
        type_dirs: Sequence[str | Path] = (),
        *,
        type_mode: str = "corpus",
        cache_root: str | Path | None = None,
        added_types: Sequence[str] = (),
    ) -> None:
        if type_mode not in TYPE_MODES:
            raise InputError(f"must be one of {TYPE_MODES}, got {type_mode!r}", field="type_mode")
        self.type_mode = type_mode
        self.cache_root = cache_root
        self._fingerprints: dict[str, str] = {}
        self._member_caches: dict[str, SoftLabelCache] = {}  # per teacher directory
        if not dirs:
            raise InputError("a teacher model directory is needed", field="teacher")
        self.dirs = [str(d) for d in dirs]
        self.models = [load_teacher(d) for d in self.dirs]
        schema = self.models[0].schema
        for path, model in zip(self.dirs[1:], self.models[1:]):
            if model.schema != schema:
                raise InputError(
                    f"an ensemble's teachers must share types and scheme: {model.schema.scheme} {list(model.schema.types)}, "
                    f"not {schema.scheme} {list(schema.types)} as the first teacher",
                    path=path, field="teacher",
                )
        self.type_dirs = [str(d) for d in type_dirs]
        if len(set(self.type_dirs)) != len(self.type_dirs):
            raise InputError(f"each type teacher is listed once, got {self.type_dirs}", field="type_teachers")
        if self.type_dirs and schema.scheme != "multilabel":
            raise InputError(f"type teachers need a multilabel student; the primary teacher's scheme is {schema.scheme!r}", field="type_teachers")
        self.added_types = tuple(str(t) for t in added_types)
        clash = [t for t in self.added_types if t in schema.types]
        if clash:
            raise InputError(f"the primary teacher already predicts {clash}", field="added_types")
        #: the student's types: the primary teacher's, then the added ones
        self.schema = LabelSchema(schema.types + self.added_types, schema.scheme) if self.added_types else schema
        self.type_models = [load_teacher(d) for d in self.type_dirs]
        self.type_corpora = [set((m.card.get("data") or {})) for m in self.type_models]
        # a type teacher's types in the student's names (JNLPBA's teacher's "gene" is the student's "protein")
        self.type_names = [teacher_type_names(m, c, self.schema.types) for m, c in zip(self.type_models, self.type_corpora)]
        for path, names in zip(self.type_dirs, self.type_names):
            extra = [t for t in names.values() if t not in self.schema.types]
            if extra:
                raise InputError(f"a type teacher predicts {extra}, which the student (types {list(self.schema.types)}) does not", path=path, field="type_teachers")
        covered = {t for names in self.type_names for t in names.values()}
        self.primary_types = [t for t in self.schema.types if t not in covered]  # still taught by the primary (ensemble)
        untaught = [t for t in self.added_types if t in self.primary_types]
        if untaught:
            raise InputError(f"no type teacher predicts the added types {untaught}, and the primary teacher cannot", field="added_types")

    @property
    def primary(self) -> "TokenClassifier | OnnxTeacher":
        return self.models[0]

    def to(self, device: torch.device) -> "Teachers":
        for model in self.models + self.type_models:
            model.to(device)
        return self

    def fingerprint(self) -> str:
        """What decides the soft labels: each member's weights and files, and whether its
        distribution comes from a CRF. A single teacher without a CRF keeps the bare
        :func:`teacher_fingerprint`, so caches written before ensembles existed stay valid;
        the members' order does not matter."""
        parts = sorted(self._member_fingerprint(p, m) for p, m in zip(self.dirs, self.models)) if self.primary_types else []
        # a type teacher's types are in its files; the student's are part of the cache's schema
        parts += sorted(f"types:{self._member_fingerprint(p, m)}" for p, m in zip(self.type_dirs, self.type_models))
        if self.type_models and self.type_mode != "mean":  # the mean's caches predate the modes
            parts.append(f"type_mode:{self.type_mode}")
        if self.added_types:  # they rename type teachers' types, too
            parts.append(f"added:{','.join(self.added_types)}")
        if len(parts) == 1 and not self.type_models and self.primary.crf is None:
            return parts[0]
        return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()

    def _member_fingerprint(self, path: str, model) -> str:
        """One member's :func:`teacher_fingerprint` (hashed once: exports are large) and its form."""
        if path not in self._fingerprints:
            self._fingerprints[path] = teacher_fingerprint(path)
        return self._fingerprints[path] + (f"+{CRF_FORM}" if model.crf is not None else "")

    @property
    def corpus_aware(self) -> bool:
        """Whether a sentence's soft labels depend on the corpus it comes from."""
        return bool(self.type_models) and self.type_mode == "corpus"

    def word_log_probs(self, word_lists: list[list[str]], corpora: Sequence[str] | None = None, *, batch_size: int = 32) -> list[np.ndarray]:
        """Per sentence, float32 ``[n_words, num_outputs]``: the (mean) distribution of the
        teachers at each word, as log-probabilities; with type teachers, theirs for the types
        they predict (``corpora``: the corpus of each sentence, for the ``corpus`` mode)."""
        schema = self.schema
        if self.primary_types:
            # a lone primary's outputs are the combined cache already: no member cache of its own
            alone = len(self.models) == 1 and not self.type_models
            outputs = [
                model.word_distributions(word_lists, batch_size=batch_size) if alone else self._member_outputs(path, model, word_lists, batch_size)
                for path, model in zip(self.dirs, self.models)
            ]
            # each member's groups are normalised, so their mean is too; each row is >= the floor
            base = outputs[0] if len(outputs) == 1 else [mean_distribution(np.stack(rows)) for rows in zip(*outputs)]
            if self.added_types:  # the added types' columns come last and are all type-taught
                pad = schema.num_outputs - self.primary.schema.num_outputs
                base = [np.concatenate([b, np.full((len(b), pad), LOG_FLOOR, dtype=np.float32)], axis=1) for b in base]
        else:  # every type has a type teacher: the primary would run for nothing
            base = [np.full((len(w), schema.num_outputs), LOG_FLOOR, dtype=np.float32) for w in word_lists]
        if not self.type_models:
            return base
        votes: dict[str, list[tuple[int, list[np.ndarray]]]] = {t: [] for t in schema.types if t not in self.primary_types}
        for k, (path, model) in enumerate(zip(self.type_dirs, self.type_models)):
            rows = self._member_outputs(path, model, word_lists, batch_size)
            for t in model.schema.types:
                votes[self.type_names[k][t]].append((k, [type_log_probs(model.schema, r, t) for r in rows]))
        for t, members in votes.items():
            i = schema.type_index(t)
            for n, sentence in enumerate(base):
                chosen = members
                if self.corpus_aware and corpora is not None:
                    chosen = [m for m in members if corpora[n] in self.type_corpora[m[0]]] or members
                sentence[:, 3 * i : 3 * i + 3] = mean_distribution(np.stack([rows[n] for _, rows in chosen]))
        return base

    def _member_outputs(self, path: str, model, word_lists: list[list[str]], batch_size: int) -> list[np.ndarray]:
        """One teacher's word distributions, through its own cache when there is a root (opened
        once per run: the combined cache asks chunk by chunk). Primary and type teachers alike:
        a run that changes one teacher relabels with that one only."""
        if self.cache_root is None:
            return model.word_distributions(word_lists, batch_size=batch_size)
        if path not in self._member_caches:
            key = hashlib.blake2b(self._member_fingerprint(path, model).encode(), digest_size=8).hexdigest()
            self._member_caches[path] = SoftLabelCache(Path(self.cache_root) / "members", key, model.schema)
        cache = self._member_caches[path]
        cache.add(word_lists, lambda lists: model.word_distributions(lists, batch_size=batch_size))
        return cache.sentence_scores(word_lists)


def teacher_type_names(model, corpora: set[str], student_types: Sequence[str]) -> dict[str, str]:
    """A type teacher's types -> the student's names for them.

    A type is renamed when the corpus labels it was trained on map to another of the
    student's types (:meth:`~biotag.corpora.CorpusSpec.type_map_for`): the JNLPBA teacher
    learnt JNLPBA's ``protein`` as ``gene``, which a student with a ``protein`` type of its
    own learns as ``protein``. Corpora that are not registered by name keep every name."""
    from biotag.corpora import resolve

    names = {t: t for t in model.schema.types}
    renames: dict[str, set[str]] = {}
    for corpus in sorted(corpora):
        try:
            spec = resolve(corpus)
        except InputError:
            continue
        student_map = spec.type_map_for(student_types)
        for label, unified in spec.label_map.items():
            if unified in names:
                renames.setdefault(unified, set()).add(student_map.unify(label) or unified)
    for t, targets in renames.items():
        if len(targets) > 1:
            raise InputError(
                f"a type teacher's {t!r} covers labels the student keeps apart ({sorted(targets)}): train one teacher per type", field="type_teachers"
            )
        names[t] = targets.pop()
    return names


def type_log_probs(schema: LabelSchema, log_probs: np.ndarray, entity_type: str) -> np.ndarray:
    """``[n_words, 3]``: the O/B/I log-probabilities of one type, from a model's word
    distributions in its own scheme (a ``bio`` model's other types count as O)."""
    i = schema.type_index(entity_type)
    if schema.scheme == "multilabel":
        return np.asarray(log_probs[:, 3 * i : 3 * i + 3], dtype=np.float32)
    probs = np.exp(np.asarray(log_probs, dtype=np.float64))
    begin, inside = probs[:, 1 + 2 * i], probs[:, 2 + 2 * i]
    outside = np.clip(1.0 - begin - inside, 0.0, 1.0)
    return np.maximum(np.log(np.maximum(np.stack([outside, begin, inside], axis=1), 1e-30)), LOG_FLOOR).astype(np.float32)


def load_teacher(directory: str | Path) -> "TokenClassifier | OnnxTeacher":
    """A PyTorch model directory as a :class:`TokenClassifier`; an ONNX export (no PyTorch
    weights) as an :class:`OnnxTeacher`."""
    from biotag.models.metadata import read_metadata

    metadata, _ = read_metadata(directory)
    if metadata.get("onnx") and not (Path(directory) / "model.safetensors").is_file():
        return OnnxTeacher(directory)
    return TokenClassifier.from_pretrained(directory)


class OnnxTeacher:
    """An exported model as a teacher: the parts of :class:`TokenClassifier` a teacher's
    soft labels need (schema, decoder and CRF, card, encoder, ``word_distributions``);
    ``network`` is None."""

    network = None

    def __init__(self, directory: str | Path) -> None:
        from biotag.runtime.engine import OnnxTokenClassifier

        self.engine = OnnxTokenClassifier.from_pretrained(directory)
        self.schema = self.engine.schema
        self.decoder = self.engine.decoder
        self.crf = self.engine.crf
        self.encoder = self.engine.encoder
        self.encoder_name = self.engine.metadata.get("encoder", "")
        self.card = self.engine.metadata.get("training") or {}

    def to(self, device) -> "OnnxTeacher":  # ONNX Runtime runs on the CPU
        return self

    def eval(self) -> "OnnxTeacher":
        return self

    def word_distributions(self, word_lists: list[list[str]], *, batch_size: int = 32) -> list[np.ndarray]:
        return self.engine.word_distributions(word_lists, batch_size=batch_size)
