"""Vocabulary extension: frequent biomedical words as whole tokens of a WordPiece vocabulary.

A general-English vocabulary cuts frequent biomedical words into many sub-words
(``lysophospholipase`` -> ``l ##ys ##op ##hos ##ph ##oli ##pas ##e``), which costs window
space and gives the encoder nothing to hang the word's meaning on. :func:`frequent_split_words`
picks the most frequent words of the training text (as the tokenizer's own normaliser and
pre-tokeniser see them) that it splits into two or more sub-words; :func:`extend_vocabulary`
appends them to the WordPiece vocabulary (so WordPiece's longest-match also uses them as
word stems: ``kinases`` -> ``kinase ##s``) and gives each new embedding row the mean of the
old embeddings of the sub-words it replaces (and the same for the output bias of a tied
MLM head), so the model starts from what it already knew about the word.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable

import torch

from biotag.errors import InputError


def frequent_split_words(tokenizer, texts: Iterable[str], *, limit: int, min_count: int, min_chars: int = 4) -> list[str]:
    """Up to ``limit`` words occurring at least ``min_count`` times that the tokenizer
    splits into two or more sub-words, most frequent first (ties: alphabetical)."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        words = backend.pre_tokenizer.pre_tokenize_str(normalized) if backend.pre_tokenizer is not None else [(w, None) for w in normalized.split()]
        counts.update(word for word, _ in words)
    vocab = tokenizer.get_vocab()
    out = []
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if count < min_count or len(out) >= limit:
            break
        if len(word) < min_chars or word in vocab or not any(c.isalpha() for c in word):
            continue
        if len(tokenizer(word, add_special_tokens=False)["input_ids"]) >= 2:
            out.append(word)
    return out


def extend_vocabulary(model, tokenizer, words: list[str]):
    """Append ``words`` to the tokenizer's WordPiece vocabulary and the model's embedding
    (and tied MLM output) rows, initialised from the old sub-words; returns the new
    tokenizer. Only WordPiece vocabularies (BERT, MPNet...) can be extended this way."""
    from transformers import AutoTokenizer

    if not words:
        return tokenizer
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model_state = state.get("model", {})
    if model_state.get("type") != "WordPiece":
        raise InputError(f"vocabulary extension needs a WordPiece tokenizer, this one is {model_state.get('type')!r}", field="extend_vocab")
    vocab: dict[str, int] = model_state["vocab"]
    used = set(vocab.values()) | {t["id"] for t in state.get("added_tokens", [])}
    start = max(used) + 1
    words = [w for w in dict.fromkeys(words) if w not in vocab]
    pieces = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    for k, word in enumerate(words):
        vocab[word] = start + k
    with tempfile.TemporaryDirectory(prefix="biotag-vocab-") as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        vocab_txt = Path(tmp) / "vocab.txt"
        if vocab_txt.is_file():  # the slow tokenizer's file must list the same ids
            lines = vocab_txt.read_text(encoding="utf-8").splitlines()
            if len(lines) == start:
                vocab_txt.write_text("\n".join(lines + words) + "\n", encoding="utf-8")
            else:
                vocab_txt.unlink()
        new_tokenizer = AutoTokenizer.from_pretrained(tmp)
    _grow_embeddings(model, start + len(words), [(start + k, p) for k, p in enumerate(pieces)])
    return new_tokenizer


def _grow_embeddings(model, size: int, rows: list[tuple[int, list[int]]]) -> None:
    old = model.get_input_embeddings().weight.detach().clone()
    output = model.get_output_embeddings()
    tied = output is None or output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    old_out = None if tied else output.weight.detach().clone()
    old_bias = output.bias.detach().clone() if output is not None and getattr(output, "bias", None) is not None else None
    model.resize_token_embeddings(size, mean_resizing=False)
    weight = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    with torch.no_grad():
        for row, ids in rows:
            weight[row] = old[ids].mean(0)
            if old_bias is not None and getattr(output, "bias", None) is not None and output.bias.shape[0] == size:
                output.bias[row] = old_bias[ids].mean()
    if old_out is not None:
        with torch.no_grad():  # an untied output layer: the mean of its own old rows
            for row, ids in rows:
                output.weight[row] = old_out[ids].mean(0)
