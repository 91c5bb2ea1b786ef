"""Distilling a trained biotag teacher into a smaller student.

:class:`DistillTrainer` is the NER :class:`~biotag.training.trainer.Trainer` (corpora,
items, epoch plans, evaluation, best-model saving, checkpoints and exact resume) with
four changes: the student and label schema come from the teacher; the epoch plan mixes
batches of unlabelled text (teacher labels only) into the gold batches; each batch's
loss is the weighted sum of :mod:`biotag.distill.losses` parts with the weights of
:mod:`biotag.distill.schedule`; and optional gradual magnitude pruning masks the
student's encoder after every step. The teacher's per-word outputs come from a
:class:`~biotag.distill.soft_labels.SoftLabelCache` filled before training starts, so
the teacher runs once; it runs again during training only for hidden-state or
attention transfer, which need its inner states.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoTokenizer

from biotag.distill.config import DistillConfig
from biotag.distill.losses import HiddenProjections, attention_loss, hidden_state_loss, overrule_known_absent, soft_label_loss, teacher_evidence
from biotag.distill.pruning import GradualPruner
from biotag.distill.schedule import LossWeights, loss_weights
from biotag.distill.soft_labels import SoftLabelCache
from biotag.distill.summary import distillation_summary, student_description
from biotag.distill.teachers import Teachers
from biotag.errors import InputError
from biotag.models.predict import predict_windows
from biotag.models.token_classifier import TokenClassifier
from biotag.paths import find_encoder
from biotag.text.subwords import SubwordBatch, SubwordEncoder
from biotag.training.checkpoint import remove_dir
from biotag.training.config import TrainConfig
from biotag.training.data import AlignmentStats, Example, collate_items, epoch_batches, training_items
from biotag.training.run import resolve_device, run_training
from biotag.training.trainer import Trainer

log = logging.getLogger(__name__)

STUDENT_INIT_DIR = "student-init"  # the student cut from the teacher (student_layers) or narrowed from its encoder
IMPORTANCE_SENTENCES = 512  # unlabelled sentences that rank heads, neurons and dimensions of a narrower student
SOFT_CORPUS = "soft-text"


def distill(config: DistillConfig, resume: bool = False) -> Path:
    """Distil as ``config`` says; returns the directory of the best student (resume
    works as for :func:`biotag.training.train`)."""
    return run_training(config, resume, DistillTrainer, threads=config.threads or os.cpu_count() or 1)


def soft_text_examples(paths: Sequence[str], limit: int | None, corpus_index: int, n_types: int) -> list[Example]:
    """Sentences of unlabelled documents as examples that annotate no type."""
    from biotag.document import Document
    from biotag.pretrain.data import read_text_file, unique
    from biotag.text.segment import sentence_words

    examples: list[Example] = []
    none = np.zeros(n_types, dtype=bool)
    docs = 0
    for doc in unique(d for path in paths for d in read_text_file(path)):
        if limit is not None and docs >= limit:
            break
        docs += 1
        document = Document(id=doc.id, text=doc.text)
        for si, words in enumerate(sentence_words(document)):
            if words:
                examples.append(Example((SOFT_CORPUS, doc.id, si), corpus_index, [doc.text[a:b] for a, b in words], [], none))
    return examples


def layer_pairs(config: DistillConfig, student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """``(student, teacher)`` indices into ``hidden_states`` (0: embeddings) to match."""
    if config.hidden_layers is not None:
        pairs = [(s, t) for s, t in config.hidden_layers]
    elif config.student_layers is not None:
        pairs = [(i + 1, layer + 1) for i, layer in enumerate(config.student_layers)]
    else:
        pairs = [(i, round(i * teacher_layers / student_layers)) for i in range(1, student_layers + 1)]
    for s, t in pairs:
        if not (s <= student_layers and t <= teacher_layers):
            raise InputError(f"layer pair {[s, t]} is out of range (student 0..{student_layers}, teacher 0..{teacher_layers})", field="hidden_layers")
        if config.attention_weight and (s == 0 or t == 0):
            raise InputError("attention transfer needs encoder layers (>= 1), not the embeddings (0)", field="hidden_layers")
    return pairs


@torch.no_grad()
def word_hidden_states(model: TokenClassifier, word_lists: Sequence[Sequence[str]], layers: Sequence[int]) -> list[np.ndarray]:
    """Per sentence, float32 ``[n_words, len(layers) * width]``: the model's hidden states
    of ``layers`` (indices into ``hidden_states``) at each word's first sub-word, read with
    the model's own tokenizer and windows; how models with different tokenizers meet."""

    def run(batch: SubwordBatch) -> np.ndarray:
        input_ids, attention_mask, rows, positions = on_device(
            model.network.device, batch.input_ids, batch.attention_mask, batch.word_rows, batch.word_positions
        )
        out = model.network(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return torch.cat([out.hidden_states[t][rows, positions] for t in layers], dim=-1).float().cpu().numpy()

    model.eval()
    return predict_windows(model.encoder, run, word_lists, model.network.config.hidden_size * len(layers))


def on_device(device: torch.device, *arrays: np.ndarray) -> list[torch.Tensor]:
    """Batch arrays as tensors on ``device`` (where the model that reads them is)."""
    return [torch.from_numpy(a).to(device) for a in arrays]


def same_tokenizer(a: SubwordEncoder, b: SubwordEncoder) -> bool:
    return a.tokenizer.get_vocab() == b.tokenizer.get_vocab() and (a.prefix, a.suffix) == (b.prefix, b.suffix)


class DistillTrainer(Trainer):
    def __init__(self, config: DistillConfig) -> None:
        device = resolve_device(config.device)  # before any loading: no GPU fails fast
        self.teachers = Teachers(
            config.teacher_dirs, config.type_teachers, type_mode=config.type_mode,
            cache_root=config.soft_cache or str(Path(config.output_dir) / "teacher-cache"), added_types=list(config.added_types),
        )
        self.teacher = self.teachers.primary
        schema = self.teachers.schema  # the teacher's types, then the added ones
        if self.teacher.network is None:  # an ONNX export
            for name in ("student_layers", "hidden_weight", "attention_weight"):
                if getattr(config, name):
                    raise InputError(f"{name} needs the primary teacher's PyTorch network; {config.teacher_dirs[0]} is an ONNX export", field=name)
        if config.types is not None and tuple(config.types) != schema.types:
            raise InputError(f"the student predicts the teacher's (and added) types {list(schema.types)}, not {config.types}", field="types")
        if config.scheme is not None and config.scheme != schema.scheme:
            raise InputError(f"the student uses the teacher's scheme {schema.scheme!r}", field="scheme")
        soft_examples = soft_text_examples(config.soft_text, config.soft_limit, len(config.corpora), len(schema.types))
        ranking = [e.words for e in soft_examples[:IMPORTANCE_SENTENCES]]
        narrow = config.student_width is not None or bool(config.student_ffn)
        if config.encoder is None:
            student = str(self._layer_dropped_teacher(config, ranking))
            if config.added_types:
                student = str(self._with_added_types(config, student))
        else:
            student = str(self._narrowed_encoder(config, ranking)) if narrow else config.encoder
        encoder = SubwordEncoder(AutoTokenizer.from_pretrained(find_encoder(student)), max_length=config.max_length)
        # the student may have word features of its own (the teacher's do not carry over)
        from biotag.features import feature_extractor

        features = feature_extractor(config.dictionary_features, config.shape_features)
        self.soft_items = training_items(soft_examples, encoder, schema, AlignmentStats(), features)  # no entities to align
        self.soft_length = np.array([len(it.window) for it in self.soft_items], dtype=np.int64)
        self.soft_ratio = config.soft_ratio  # _plan runs inside Trainer.__init__, before self.config is ours
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        base = {k: v for k, v in config.to_dict().items() if k in names}
        unify = config.unify_types
        if unify is None:  # as the teacher was trained: a distilled teacher's config says None, its summary what it used
            card = self.teacher.card
            unify = next((u for u in ((card.get("config") or {}).get("unify_types"), (card.get("distillation") or {}).get("unify_types")) if u is not None), True)
        self.unify_types = unify
        base.update(encoder=student, scheme=schema.scheme, unify_types=unify, types=list(schema.types), decoder=self.teacher.decoder)
        super().__init__(TrainConfig(**base))  # corpora, student (on the device), items, plan, optimizer
        self.teachers.to(device)
        if config.student_layers is not None or narrow or config.added_types:
            remove_dir(Path(config.output_dir) / STUDENT_INIT_DIR)  # loaded; rebuilt the same way on resume
            self.model.encoder_name = student_description(config)  # not the temporary folder it was loaded from
        self.config = config  # what checkpoints record and resumes compare
        self.n_gold = len(self.items)
        self.annotated_types = np.zeros((len(config.corpora), len(self.schema.types)), dtype=bool)  # per corpus index
        for example in self.train_examples:  # the examples' own masks: corpus_sizes is keyed by name, and a name may repeat
            self.annotated_types[example.corpus] = example.type_mask
        self.teacher_exclusions = self._teacher_exclusions(config)
        self.evidence_matcher = None
        if config.teacher_negative_evidence and config.teacher_evidence_dictionary:
            self.evidence_matcher = feature_extractor(config.teacher_evidence_dictionary, False).matcher
        self.pool = self.items + self.soft_items
        self.soft_examples = soft_examples
        self.soft_loss = config.soft_loss if config.soft_loss != "auto" else ("crf" if self.model.crf is not None else "kl")
        if self.soft_loss == "crf" and self.model.crf is None:
            raise InputError("the crf soft loss needs a CRF student, and the student takes the teacher's decoder", field="soft_loss")
        self._setup_teacher_outputs()
        self._setup_transfer()
        self.pruner = None
        if config.prune_sparsity:
            start, end = (round(share * self.total_steps) for share in (config.prune_start, config.prune_end))
            self.pruner = GradualPruner(self.model.network, config.prune_sparsity, start, end, config.prune_every)
        self.part_sums: dict[str, float] = defaultdict(float)
        self.part_batches: dict[str, int] = defaultdict(int)
        # [soft-label words overruled by teacher evidence, words seen], in this process (after a restart: since it)
        self.evidence_counts = np.zeros(2, dtype=np.int64)

    # -- setup ------------------------------------------------------------------------------
    def _narrowed_encoder(self, config: DistillConfig, word_lists: list[list[str]]) -> Path:
        """The student encoder with a fresh head, cut to ``student_width`` / ``student_ffn``."""
        from biotag.compress.structured import prune_structured

        fresh = TokenClassifier.from_encoder(config.encoder, self.teachers.schema, max_length=config.max_length, decoder=self.teacher.decoder)
        source = fresh.save_pretrained(Path(config.output_dir) / f"{STUDENT_INIT_DIR}-source")
        try:
            return prune_structured(
                source, Path(config.output_dir) / STUDENT_INIT_DIR, width=config.student_width, ffn=config.student_ffn,
                word_lists=word_lists or None,
            )
        finally:
            remove_dir(source)

    def _with_added_types(self, config: DistillConfig, student: str) -> Path:
        """The student-to-be with a head for each added type, started as a copy of the head
        of the type it names (so ``protein`` starts out predicting what ``gene`` does)."""
        model = TokenClassifier.from_pretrained(student)
        model.add_types(config.added_types)
        target = Path(config.output_dir) / STUDENT_INIT_DIR
        staging = target.with_name(f"{target.name}-types")  # student may be target itself
        model.save_pretrained(staging, card=model.card)
        remove_dir(target)
        staging.rename(target)
        return target

    def _layer_dropped_teacher(self, config: DistillConfig, word_lists: list[list[str]]) -> Path:
        """The primary teacher with only ``student_layers``, cut to ``student_width`` and
        ``student_ffn``; heads, neurons and dimensions are ranked by their activations on
        ``word_lists`` (unlabelled sentences) when there are any, else by weight magnitude."""
        from biotag.compress.structured import prune_structured

        n_layers = self.teacher.network.config.num_hidden_layers
        if max(config.student_layers) >= n_layers:
            raise InputError(f"the teacher has layers 0..{n_layers - 1}, not {config.student_layers}", field="student_layers")
        drop = [i for i in range(n_layers) if i not in config.student_layers]
        target = Path(config.output_dir) / STUDENT_INIT_DIR
        narrow = config.student_width is not None or config.student_ffn
        if not drop and not narrow:
            return Path(config.teacher_dirs[0])
        return prune_structured(
            config.teacher_dirs[0], target, drop_layers=drop, width=config.student_width, ffn=config.student_ffn,
            word_lists=word_lists if narrow else None,
        )

    def _setup_teacher_outputs(self) -> None:
        c = self.config
        self.soft_labels = c.weighting == "dynamic" or c.soft_weight > 0
        self.cache = None
        self.gold_starts = self.soft_starts = np.zeros(0, dtype=np.int64)
        if not self.soft_labels:
            return
        self.cache = SoftLabelCache(self.teachers.cache_root, self.teachers.fingerprint(), self.teachers.schema, c.soft_top_k)
        gold_words = [e.words for e in self.train_examples]
        soft_words = [e.words for e in self.soft_examples]
        # corpus-aware type teachers label a sentence by its corpus: the corpus is part of its key
        gold_corpora = soft_corpora = contexts = None
        if self.teachers.corpus_aware:
            gold_corpora, soft_corpora = [e.key[0] for e in self.train_examples], [SOFT_CORPUS] * len(soft_words)
            contexts = gold_corpora + soft_corpora
        added = self.cache.add(
            gold_words + soft_words, lambda lists, corpora=None: self.teachers.word_log_probs(lists, corpora, batch_size=c.eval_batch_size), contexts
        )
        log.info("teacher cache %s: %d sentences (%d new)", self.cache.folder, len(self.cache), added)
        self.gold_starts, self.soft_starts = self.cache.starts(gold_words, gold_corpora), self.cache.starts(soft_words, soft_corpora)

    def _setup_transfer(self) -> None:
        """Hidden-state projections and attention outputs for hidden/attention transfer."""
        c = self.config
        self.pairs: list[tuple[int, int]] = []
        self.teacher_same_tokenizer = same_tokenizer(self.teacher.encoder, self.model.encoder)
        if not (c.hidden_weight or c.attention_weight):
            return
        if c.attention_weight and not self.teacher_same_tokenizer:
            raise InputError("attention transfer compares sub-word attention maps: the teacher must share the student's tokenizer", field="attention_weight")
        s_config, t_config = self.model.network.config, self.teacher.network.config
        self.pairs = layer_pairs(c, s_config.num_hidden_layers, t_config.num_hidden_layers)
        if c.attention_weight:
            for net in (self.model.network, self.teacher.network):
                net.set_attn_implementation("eager")  # the fused kernels return no attention maps
        # part of the student module, so checkpoints hold it; save_pretrained leaves it out
        projections = HiddenProjections(len(self.pairs), s_config.hidden_size, t_config.hidden_size)
        self.model.distill_projections = projections.to(self.model.network.device)
        params = list(self.model.distill_projections.parameters())
        if params:
            from transformers import get_linear_schedule_with_warmup

            self.optimizer.add_param_group({"params": params, "weight_decay": c.weight_decay, "lr": c.lr})
            # rebuilt so the new group follows the warm-up and decay too
            self.scheduler = get_linear_schedule_with_warmup(self.optimizer, round(c.warmup_ratio * self.total_steps), self.total_steps)

    # -- the epoch plan ---------------------------------------------------------------------
    def _plan(self, epoch: int) -> list[np.ndarray]:
        """The gold batches of :meth:`Trainer._plan` and ``soft_ratio`` text batches per
        gold batch (passes over the text drawn from ``(seed + 1, epoch)``), interleaved
        at random positions; text batches hold item indices from ``len(self.items)`` on."""
        gold = super()._plan(epoch)
        c = self.config
        n_soft = round(self.soft_ratio * len(gold)) if len(self.soft_items) else 0
        if not n_soft:
            return gold
        offset = len(self.items)
        soft: list[np.ndarray] = []
        one_corpus = np.zeros(len(self.soft_items), dtype=np.int64)
        passes = 0
        while len(soft) < n_soft:
            plan = epoch_batches(one_corpus, self.soft_length, c.batch_size, 1.0, c.seed + 1, epoch * 1000 + passes)
            soft.extend(b + offset for b in plan)
            passes += 1
        batches = gold + soft[:n_soft]
        order = np.random.default_rng([c.seed, epoch, 1]).permutation(len(batches))
        return [batches[k] for k in order]

    # -- one batch ---------------------------------------------------------------------------
    def weights(self, step: int | None = None) -> LossWeights:
        c = self.config
        progress = (self.state.step if step is None else step) / max(self.total_steps, 1)
        return loss_weights(
            progress, weighting=c.weighting, hard=c.hard_weight, soft=c.soft_weight, floor=c.soft_floor,
            shape=c.schedule, hidden=c.hidden_weight, attention=c.attention_weight,
        )

    def _backward(self, indices: np.ndarray, scale: float) -> None:
        text_only = bool(indices[0] >= self.n_gold)
        items = [self.pool[i] for i in indices]
        batch = collate_items(items, self.model.encoder)
        w = self.weights()
        scores, s_hidden, s_attention = self._student_forward(batch.subwords, hidden=w.hidden > 0, attention=w.attention > 0)
        parts: dict[str, torch.Tensor] = {}
        if not text_only:
            parts["hard"] = self.model.loss(scores, *on_device(scores.device, batch.labels, batch.type_mask, batch.subwords.word_rows))
        if self.soft_labels:
            teacher = torch.from_numpy(self._cached_teacher_scores(indices)).to(scores.device)
            absent = self._soft_absent(items, batch, teacher, text_only)
            if absent is not None:
                teacher = overrule_known_absent(teacher, absent, self.model.schema)
            if self.soft_loss == "crf":
                parts["soft"] = self.model.crf.soft_loss(scores, teacher, *on_device(scores.device, batch.subwords.word_rows))
            else:
                parts["soft"] = soft_label_loss(scores, teacher, self.model.schema, self.config.kd_temperature)
        if w.hidden or w.attention:
            t_hidden, t_attention = self._teacher_states(batch.subwords, items, text_only, attention=w.attention > 0)
            if w.hidden:
                parts["hidden"] = hidden_state_loss(s_hidden, t_hidden, self.model.distill_projections)
            if w.attention:
                mask = torch.from_numpy(batch.subwords.attention_mask).to(scores.device)
                parts["attention"] = attention_loss(s_attention, t_attention, mask)
        loss = sum(getattr(w, name) * part for name, part in parts.items())
        (loss * scale).backward()
        value = float(loss.detach())
        for name, part in parts.items():
            self.part_sums[name] += float(part.detach())
            self.part_batches[name] += 1
        self.state.loss_sum += value
        self.state.loss_batches += 1
        self.tokens += batch.subwords.n_tokens
        self.bar.set_postfix(loss=f"{value:.4f}", refresh=False)

    def _student_forward(self, batch: SubwordBatch, *, hidden: bool, attention: bool):
        """Per-word scores, and the paired layers' per-word hidden states and attention
        maps when asked for."""
        if not (hidden or attention):
            return self.model(batch), [], []
        input_ids, attention_mask, rows, positions = on_device(
            self.model.network.device, batch.input_ids, batch.attention_mask, batch.word_rows, batch.word_positions
        )
        out = self.model.network(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=hidden, output_attentions=attention
        )
        states = [out.hidden_states[s][rows, positions] for s, _ in self.pairs] if hidden else []
        maps = [out.attentions[s - 1] for s, _ in self.pairs] if attention else []
        return out.logits[rows, positions], states, maps

    def _teacher_exclusions(self, config: DistillConfig) -> dict[int, list[tuple[int, ...]]]:
        """``teacher_negative_evidence`` as groups of type indices of the student's schema."""
        types = list(self.schema.types)
        rules = config.teacher_evidence_groups()
        for name in {t for target, groups in rules.items() for t in (target, *(s for g in groups for s in g))}:
            if name not in types:
                raise InputError(f"{name!r} is not one of the student's types {types}", field="teacher_negative_evidence")
        return {types.index(t): [tuple(types.index(s) for s in g) for g in groups] for t, groups in rules.items()}

    def _soft_absent(self, items, batch, teacher: torch.Tensor, text_only: bool) -> torch.Tensor | None:
        """bool [n_words, n_types]: the soft-label cells to overrule with a certain "O": those
        gold rules out (``negative_evidence``) and those the teachers' own confident mentions
        of another type rule out where no gold decides (``teacher_negative_evidence``)."""
        absent = None
        if not text_only and self.config.negative_evidence:
            absent = torch.from_numpy(self._known_absent(items, batch)).to(teacher.device)
        if self.teacher_exclusions:
            evidence = self._teacher_evidence(items, teacher, text_only)
            self.evidence_counts += (int(evidence.any(-1).sum()), teacher.shape[0])
            absent = evidence if absent is None else absent | evidence
        return absent

    def _teacher_evidence(self, items, teacher: torch.Tensor, text_only: bool) -> torch.Tensor:
        """:func:`teacher_evidence` for a batch of items: open cells are those of the types
        each word's corpus does not annotate (every cell of unlabelled text), and the evidence
        dictionary is read only for the items with a mention to overrule."""
        if text_only:
            open_cells = torch.ones(teacher.shape[0], len(self.schema.types), dtype=torch.bool)
        else:
            open_cells = torch.from_numpy(~self.annotated_types[self._word_corpora(items)])
        vouched = None
        if self.evidence_matcher is not None:
            vouched = lambda k: self._dictionary_names([items[k]], text_only)[0]  # noqa: E731
        return teacher_evidence(
            teacher, self.model.schema, self.teacher_exclusions, open_cells.to(teacher.device), self.config.teacher_evidence_threshold,
            [len(it.labels) for it in items], vouched,
        )

    def _dictionary_names(self, items, text_only: bool) -> list[set[tuple[int, int, int]]] | None:
        """Per item, ``(type index, start, end)`` of the evidence dictionary's names of the
        student's types in its words (None without a dictionary)."""
        if self.evidence_matcher is None:
            return None
        examples = self.soft_examples if text_only else self.train_examples
        types = list(self.schema.types)
        names = []
        for it in items:
            words = examples[it.window.sequence].words
            matches = self.evidence_matcher.matches([words[w] for w in it.window.words])
            names.append({(types.index(m.type), m.start, m.end) for m in matches if m.type in types})
        return names

    @staticmethod
    def _word_corpora(items) -> np.ndarray:
        """The corpus index of each word of a gold batch."""
        return np.concatenate([np.full(len(it.labels), it.corpus) for it in items])

    def _known_absent(self, items, batch) -> np.ndarray:
        """bool [n_words, n_types]: the types gold rules out at each word of a gold batch (the
        hard-label mask's cells that ``negative_evidence`` added to a corpus' own types)."""
        return batch.type_mask & ~self.annotated_types[self._word_corpora(items)]

    def _cached_teacher_scores(self, indices: np.ndarray) -> np.ndarray:
        rows = []
        for i in indices:
            item = self.pool[i]
            starts = self.gold_starts if i < self.n_gold else self.soft_starts
            rows.append(starts[item.window.sequence] + item.window.words)
        return self.cache.scores(np.concatenate(rows))

    @torch.no_grad()
    def _teacher_states(self, batch: SubwordBatch, items, text_only: bool, *, attention: bool):
        """The teacher's per-word hidden states of the paired layers (and attention maps).
        With the student's tokenizer the teacher reads the student's batch; otherwise it
        reads each sentence with its own tokenizer and the two meet on words."""
        self.teacher.eval()
        layers = [t for _, t in self.pairs]
        if self.teacher_same_tokenizer:
            input_ids, attention_mask, rows, positions = on_device(
                self.teacher.network.device, batch.input_ids, batch.attention_mask, batch.word_rows, batch.word_positions
            )
            out = self.teacher.network(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, output_attentions=attention
            )
            return [out.hidden_states[t][rows, positions] for t in layers], [out.attentions[t - 1] for t in layers] if attention else []
        examples = self.soft_examples if text_only else self.train_examples
        sequences = list(dict.fromkeys(it.window.sequence for it in items))
        per_word = word_hidden_states(self.teacher, [examples[s].words for s in sequences], layers)
        where = {s: k for k, s in enumerate(sequences)}
        rows = np.concatenate([per_word[where[it.window.sequence]][it.window.words] for it in items])
        return list(torch.from_numpy(rows).to(self.model.network.device).split(self.teacher.network.config.hidden_size, dim=-1)), []

    # -- pruning, evaluation, the model card -----------------------------------------------------
    def _optimizer_step(self) -> None:
        super()._optimizer_step()
        if self.pruner is not None:
            self.pruner.after_step(self.state.step + 1)

    def _record_score(self, f1: float, report) -> None:
        if self.pruner is not None and not self.pruner.done(self.state.step):
            return  # a denser model than the final one is no candidate, nor a reason to stop
        super()._record_score(f1, report)

    def restore(self, checkpoint: dict) -> None:
        super().restore(checkpoint)
        if self.pruner is not None:
            self.pruner.restore()

    def _log_line(self, record: dict) -> None:
        if record.get("event") == "data":
            record["distillation"] = distillation_summary(self)
        elif record.get("event") == "eval":
            record["weights"] = self.weights().to_dict()
            # means since the last evaluation in this process (after a restart: since it)
            record["loss_parts"] = {k: round(self.part_sums[k] / self.part_batches[k], 6) for k in self.part_sums}
            if self.teacher_exclusions:
                record["teacher_evidence_words"] = self.evidence_counts.tolist()
            if self.pruner is not None:
                record["sparsity"] = round(self.pruner.measured(), 4)
            self.part_sums.clear()
            self.part_batches.clear()
        super()._log_line(record)

    def _card(self, report) -> dict:
        card = super()._card(report)
        card["distillation"] = distillation_summary(self)
        card["data"] = {**card["data"], SOFT_CORPUS: {"train_sentences": len(self.soft_examples), "labels": "teacher only"}}
        return card
