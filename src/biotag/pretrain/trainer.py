"""Domain-adaptive pretraining: continued masked-LM training with whole-word masking.

``pretrain(config)`` writes into ``config.output_dir``:

* ``data/``        the tokenizer (vocabulary-extended when asked) and the packed
                   training and held-back chunks, so a resumed run reads exactly the same;
* ``encoder/``     the result: a Hugging Face masked-LM directory (weights, tokenizer,
                   ``pretrain.json``, model card) usable as ``encoder`` of a training config;
* ``log.jsonl``    training loss and held-back perplexity lines;
* ``checkpoint/``  model, optimizer, scheduler, step and random states, replaced
                   atomically every ``checkpoint_every`` steps (kept when a time budget
                   stops the run, removed when it reaches ``max_steps``);
* ``config.json``, ``summary.json``.

The run folder, checkpoint and resume protocol are the fine-tuning trainers' own
(:func:`biotag.training.run.run_training` and :class:`~biotag.training.run.CheckpointedRun`);
a run stopped by ``max_minutes`` writes ``"finished": false`` in its summary, so
``resume`` continues it.

The run has two phases. The encoders here ship without an MLM head, so the first
``head_warmup_steps`` train only a new head (the encoder, and the tied output embedding,
frozen): the held-back perplexity after them is the *before* number, what the general
encoder knows about biomedical text. Then every weight trains for ``max_steps`` steps
(linear warm-up and decay). Batches are a pure function of ``(seed, batch number)``
(epoch permutations and masks), and the PyTorch random state (dropout) is checkpointed,
so a resumed run takes the same steps as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from biotag.errors import InputError
from biotag.paths import find_encoder
from biotag.pretrain.config import PretrainConfig
from biotag.pretrain.data import IGNORE, Batcher, Chunks, chunk_documents, is_heldout, read_text_file, shared_texts, unique
from biotag.training.checkpoint import CHECKPOINT_DIR, remove_dir, replacing_dir
from biotag.training.run import SUMMARY_FILE, CheckpointedRun, adamw, resolve_device, run_facts, run_training
from biotag.training.trainer import _command_line, seed_everything

log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"
DATA_DIR = "data"
CARD_FILE = "pretrain.json"


def pretrain(config: PretrainConfig, resume: bool = False) -> Path:
    """Run (or with ``resume`` continue) the pretraining ``config`` describes; returns the
    encoder directory."""
    return run_training(config, resume, Pretrainer, threads=config.threads or os.cpu_count() or 1)


@dataclass
class PretrainState:
    """Where pretraining is: the batch number is the step (batches are a function of it)."""

    step: int = 0
    elapsed: float = 0.0  # training seconds, across restarts
    evals: list[dict] = field(default_factory=list)  # held-back perplexity so far


def mlm_head(model) -> torch.nn.Module | None:
    """The prediction head of a ``...ForMaskedLM`` model (BERT: ``cls``, MPNet/RoBERTa:
    ``lm_head``), applied to the masked positions only (a sixth of the cost of a full-vocabulary
    projection at every position)."""
    return getattr(model, "cls", None) or getattr(model, "lm_head", None)


def mlm_loss(model, batch: dict[str, np.ndarray], *, reduction: str = "mean") -> tuple[torch.Tensor, int]:
    """Cross-entropy over the masked sub-words and how many there were, computed where
    the model is."""
    input_ids, attention, labels = (torch.from_numpy(batch[k]).to(model.device) for k in ("input_ids", "attention_mask", "labels"))
    selected = labels != IGNORE
    head = mlm_head(model)
    if head is None:
        logits = model(input_ids=input_ids, attention_mask=attention).logits[selected]
    else:
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention).last_hidden_state
        logits = head(hidden[selected])
    return F.cross_entropy(logits, labels[selected], reduction=reduction), int(selected.sum())


class Pretrainer(CheckpointedRun):
    RESULT_DIR = ENCODER_DIR
    STATE_TYPE = PretrainState

    def __init__(self, config: PretrainConfig) -> None:
        from transformers import AutoModelForMaskedLM

        from biotag.models.token_classifier import _quiet_transformers

        self.config, self.out = config, Path(config.output_dir)
        device = resolve_device(config.device)  # before any loading: no GPU fails fast
        self.source = find_encoder(config.encoder)
        seed_everything(config.seed)  # the new MLM head's initial weights
        with _quiet_transformers():  # the MLM head missing from sentence-embedding checkpoints is expected
            self.model = AutoModelForMaskedLM.from_pretrained(self.source)
        # vocabulary extension and resizing later keep the embeddings where they are
        self.model.to(device)
        self.state = PretrainState()
        self.optimizer = self.scheduler = None

    # -- run setup -------------------------------------------------------------------
    def start_fresh(self) -> None:
        self._clear_outputs()
        self._prepare()
        self._load_data()
        self._set_phase()

    def restore(self, checkpoint: dict) -> None:
        if not (self.out / DATA_DIR / "train.npz").is_file():
            self._prepare()  # deterministic: the same text and tokenizer as before
        self._load_data()
        self.state = checkpoint["state"]
        self._set_phase()  # the optimizer of the checkpoint's phase, to load its state into
        super().restore(checkpoint)

    # -- data ------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Read, split, (extend the vocabulary,) tokenise and pack the text once."""
        from transformers import AutoTokenizer

        from biotag.pretrain.vocab import extend_vocabulary, frequent_split_words

        c = self.config
        tokenizer = AutoTokenizer.from_pretrained(self.source)
        docs = list(unique(self._documents()))
        train = [d.text for d in docs if not is_heldout(d.id, c.heldout_fraction)]
        heldout = [d.text for d in docs if is_heldout(d.id, c.heldout_fraction)]
        added: list[str] = []
        if c.extend_vocab:
            added = frequent_split_words(tokenizer, train, limit=c.extend_vocab, min_count=c.min_word_count)
            tokenizer = extend_vocabulary(self.model, tokenizer, added)
        with replacing_dir(self.out / DATA_DIR) as tmp:
            tokenizer.save_pretrained(tmp / "tokenizer")
            budget = c.max_length - 2  # special tokens around each chunk (one pair: BERT, MPNet)
            train_chunks = chunk_documents(tokenizer, train, budget)
            heldout_chunks = chunk_documents(tokenizer, heldout, budget)
            train_chunks.save(tmp / "train.npz")
            heldout_chunks.save(tmp / "heldout.npz")
            info = {
                "documents": len(docs),
                "train_documents": len(train),
                "heldout_documents": len(heldout),
                "train_chunks": len(train_chunks),
                "train_subwords": int(train_chunks.offsets[-1]),
                "heldout_chunks": len(heldout_chunks),
                "heldout_subwords": int(heldout_chunks.offsets[-1]),
                "added_words": added,
                "vocab_size": len(tokenizer),
            }
            (tmp / "data.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        log.info("pretraining text: %s", {k: v for k, v in info.items() if k != "added_words"})

    def _load_data(self) -> None:
        """The prepared tokenizer and chunks (the same on resume as in the first run)."""
        from transformers import AutoTokenizer

        c, data = self.config, self.out / DATA_DIR
        self.tokenizer = AutoTokenizer.from_pretrained(data / "tokenizer")
        if len(self.tokenizer) > self.model.get_input_embeddings().num_embeddings:
            self.model.resize_token_embeddings(len(self.tokenizer), mean_resizing=False)  # rows come from the checkpoint
        self.train_chunks = Chunks.load(data / "train.npz")
        self.heldout = Chunks.load(data / "heldout.npz")
        self.data_info = json.loads((data / "data.json").read_text(encoding="utf-8"))
        if not len(self.train_chunks) or not len(self.heldout):
            raise InputError("too little text: no training or held-back chunks", field="sources")
        self.batcher = Batcher(self.tokenizer, self.model.get_input_embeddings().num_embeddings, c.mask_prob)
        self.batches_per_epoch = max(1, len(self.train_chunks) // c.batch_size)

    def _documents(self):
        c = self.config
        if c.sources:
            yield from shared_texts(c.sources)
        for path in c.text_files:
            yield from read_text_file(path)

    def _batch(self, number: int, chunks: Chunks | None = None, indices=None) -> dict[str, np.ndarray]:
        c = self.config
        if chunks is None:
            epoch, position = divmod(number, self.batches_per_epoch)
            order = np.random.default_rng([c.seed, 0, epoch]).permutation(len(self.train_chunks))
            indices = order[position * c.batch_size : (position + 1) * c.batch_size]
            chunks, rng = self.train_chunks, np.random.default_rng([c.seed, 1, number])
        else:
            rng = np.random.default_rng([c.seed, 2, number])
        return self.batcher.batch(chunks, indices, rng)

    # -- phases --------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return "head" if self.state.step < self.config.head_warmup_steps else "full"

    def _set_phase(self) -> None:
        from transformers import get_constant_schedule, get_linear_schedule_with_warmup

        c = self.config
        head_only = self.phase == "head"
        head = mlm_head(self.model)
        base_ids = {id(p) for p in self.model.base_model.parameters()}
        for p in self.model.parameters():
            p.requires_grad_(not head_only or id(p) not in base_ids)
        params = [p for p in (head.parameters() if head_only and head is not None else self.model.parameters()) if p.requires_grad]
        self.optimizer = adamw(params, lr=c.head_lr if head_only else c.lr, weight_decay=c.weight_decay)
        if head_only:
            self.scheduler = get_constant_schedule(self.optimizer)
        else:
            self.scheduler = get_linear_schedule_with_warmup(self.optimizer, round(c.warmup_ratio * c.max_steps), c.max_steps)

    @property
    def total_steps(self) -> int:
        return self.config.head_warmup_steps + self.config.max_steps

    # -- evaluation --------------------------------------------------------------------
    def perplexity(self) -> dict[str, float]:
        """Masked-LM loss and perplexity on the first ``eval_sequences`` held-back chunks,
        with fixed masks (the same at every evaluation)."""
        c = self.config
        n = min(c.eval_sequences, len(self.heldout))
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for k, a in enumerate(range(0, n, c.batch_size)):
                batch = self._batch(k, self.heldout, range(a, min(a + c.batch_size, n)))
                loss, m = mlm_loss(self.model, batch, reduction="sum")
                total, count = total + float(loss), count + m
        self.model.train(was_training)
        mean = total / max(count, 1)
        return {"loss": round(mean, 4), "perplexity": round(math.exp(mean), 3), "masked_subwords": count}

    def _evaluate(self, label: str) -> None:
        result = {"event": "eval", "label": label, "step": self.state.step, "phase": self.phase, **self.perplexity()}
        self.state.evals.append(result)
        self._log_line(result)
        log.info("held-back %s at step %d: perplexity %.2f", label, self.state.step, result["perplexity"])

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> Path:
        c, st = self.config, self.state
        if st.step == 0 and not st.evals:
            self._evaluate("initial" if c.head_warmup_steps else "before")
        started, stop = time.perf_counter(), "max_steps"
        elapsed_before, tokens, loss_sum, loss_n, since = st.elapsed, 0, 0.0, 0, time.perf_counter()
        self.model.train()
        while st.step < self.total_steps:
            if c.max_minutes is not None and time.perf_counter() - started > c.max_minutes * 60:
                stop = "time"
                break
            batch = self._batch(st.step)
            loss, _ = mlm_loss(self.model, batch)
            loss.backward()
            if c.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], c.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            st.step += 1
            st.elapsed = elapsed_before + time.perf_counter() - started
            tokens += int(batch["attention_mask"].sum())
            loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
            if st.step % 10 == 0 or st.step == self.total_steps:
                seconds = time.perf_counter() - since
                self._log_line({"event": "train", "step": st.step, "phase": self.phase if st.step < self.total_steps else "full",
                                "loss": round(loss_sum / loss_n, 4), "lr": self.scheduler.get_last_lr()[0],
                                "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None})
                tokens, loss_sum, loss_n, since = 0, 0.0, 0, time.perf_counter()
            if st.step == c.head_warmup_steps and c.head_warmup_steps:
                self._evaluate("before")
                self._set_phase()
                self.model.train()
            elif c.eval_every and st.step % c.eval_every == 0 and st.step > c.head_warmup_steps:
                self._evaluate(f"step {st.step}")
                self.model.train()
            if c.checkpoint_every and st.step % c.checkpoint_every == 0 and st.step < self.total_steps:
                self._checkpoint()
        if not st.evals or st.evals[-1]["step"] != st.step:
            self._evaluate("after")
        return self._save_encoder(stop)

    def _save_encoder(self, stop: str) -> Path:
        """Write the encoder and the summary; a run stopped by its time budget keeps (and
        refreshes) its checkpoint so that ``resume`` continues it."""
        c, st = self.config, self.state
        finished = stop == "max_steps"
        card = {
            "base_encoder": str(c.encoder),
            "base_encoder_dir": str(self.source),
            "steps": st.step,
            "full_steps": max(0, st.step - c.head_warmup_steps),
            "stop_reason": stop,
            "finished": finished,
            "train_seconds": round(st.elapsed, 1),
            "perplexity": {e["label"]: e["perplexity"] for e in st.evals},
            "evals": st.evals,
            "data": {k: v for k, v in self.data_info.items() if k != "added_words"},
            "added_words": len(self.data_info.get("added_words", [])),
            "config": c.to_dict(),
            "command": _command_line(),
            **run_facts(),
        }
        with replacing_dir(self.out / ENCODER_DIR) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(_model_card(card), encoding="utf-8")
        if finished:
            remove_dir(self.out / CHECKPOINT_DIR)
        else:
            self._checkpoint()
        summary = {k: card[k] for k in ("steps", "full_steps", "stop_reason", "finished", "train_seconds", "perplexity")}
        summary["encoder"] = str(self.out / ENCODER_DIR)
        (self.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return self.out / ENCODER_DIR


def _model_card(card: dict) -> str:
    ppl = card["perplexity"]
    lines = [
        f"# biotag domain-adapted encoder (from `{card['base_encoder']}`)",
        "",
        f"Continued masked-LM training with whole-word masking on biomedical text (`biotag pretrain`): "
        f"{card['full_steps']} full steps after a head warm-up, {card['train_seconds']} s, {card['hardware']}, {card['date']}.",
        "",
        "| held-back text | perplexity |",
        "|---|---:|",
        *[f"| {label} | {value} |" for label, value in ppl.items()],
        "",
        f"Data: {json.dumps(card['data'])}; {card['added_words']} words added to the vocabulary.",
        "",
        "Use it as `encoder` in a `biotag train` config (the MLM head is ignored there).",
        "",
        "```",
        card["command"] or "biotag pretrain",
        "```",
    ]
    return "\n".join(lines) + "\n"
