"""Vocabulary pruning: drop the embedding rows of WordPiece tokens never seen in
biomedical text, and renumber the tokenizer to match.

The general-English vocabularies of the encoders here (30,522 WordPiece tokens for
MiniLM) spend about half of MiniLM-L6's parameters on the embedding table, much of it on
tokens that biomedical text never produces. :func:`prune_vocabulary` counts the token ids
the model's own tokenizer produces on ``texts`` and keeps those seen at least
``min_count`` times, every special token, and (``keep_characters``) every
single-character token and its ``##`` continuation, so that any word still tokenizes
without ``[UNK]``.

Outputs are unchanged on any text whose tokens are all kept: WordPiece takes the longest
vocabulary match at each position, and the original tokenization's pieces are all still
there while the new vocabulary offers nothing longer. A word that used a dropped token is
split into shorter kept pieces instead (its embedding changes, it is not lost).
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from biotag.errors import InputError

TOKENIZER_FILE = "tokenizer.json"


def biomedical_texts(root: str | Path | None = None) -> Iterator[str]:
    """Biomedical text in no test or devel split: the PubMed abstracts of the shared data
    not flagged ``in_test_split`` and the training text of the NER corpora."""
    from biotag import paths
    from biotag.corpora import read_corpus
    from biotag.pretrain.data import NER_CORPORA, read_text_file

    base = Path(root) if root is not None else paths.data_root()
    for doc in read_text_file(base / "text" / "pubmed-abstracts.jsonl"):
        yield doc.text
    for corpus in NER_CORPORA:
        for doc in read_corpus(corpus, "train", root=base):
            yield doc.text


def token_counts(tokenizer_file: Path, texts: Iterable[str], chunk: int = 2000) -> np.ndarray:
    """How often the tokenizer produces each id on ``texts`` (special tokens not added)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    texts = iter(texts)
    while batch := list(islice(texts, chunk)):
        for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
            np.add.at(counts, np.asarray(encoding.ids, dtype=np.int64), 1)
    return counts


def kept_ids(tokenizer_json: dict[str, Any], counts: np.ndarray, *, min_count: int = 1, keep_characters: bool = True) -> np.ndarray:
    """Sorted ids to keep: seen ``min_count`` times, special, or (``keep_characters``) one
    character long, with or without the continuation prefix."""
    model = tokenizer_json["model"]
    if model.get("type") != "WordPiece":
        raise InputError(f"vocabulary pruning supports WordPiece tokenizers, not {model.get('type')}", field="tokenizer")
    prefix = model.get("continuing_subword_prefix") or "##"
    keep = counts[: len(model["vocab"])] >= min_count
    for token, index in model["vocab"].items():
        bare = token[len(prefix) :] if token.startswith(prefix) else token
        if keep_characters and len(bare) == 1:
            keep[index] = True
    for added in tokenizer_json.get("added_tokens", []):
        if added["id"] < len(keep):
            keep[added["id"]] = True
    unk = model.get("unk_token")
    if unk in model["vocab"]:
        keep[model["vocab"][unk]] = True
    return np.flatnonzero(keep)


def renumber_tokenizer(tokenizer_json: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """A copy of a ``tokenizer.json`` whose WordPiece vocabulary holds only ``keep`` (old
    ids, ascending), renumbered 0..n-1; special-token ids elsewhere follow."""
    remap = {int(old): new for new, old in enumerate(keep)}
    data = json.loads(json.dumps(tokenizer_json))
    vocab = data["model"]["vocab"]
    data["model"]["vocab"] = {token: remap[i] for token, i in sorted(vocab.items(), key=lambda item: item[1]) if i in remap}
    for added in data.get("added_tokens", []):
        added["id"] = remap[added["id"]]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "ids" and isinstance(value, list):
                    node[key] = [remap[i] for i in value]
                elif key in ("sep", "cls") and isinstance(value, list) and len(value) == 2:  # BertProcessing
                    node[key] = [value[0], remap[value[1]]]
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data.get("post_processor"))
    if isinstance(data.get("padding"), dict) and "pad_id" in data["padding"]:
        data["padding"]["pad_id"] = remap[data["padding"]["pad_id"]]
    return data


def prune_vocabulary(
    model_dir: str | Path,
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    min_count: int = 1,
    keep_characters: bool = True,
) -> Path:
    """Write a copy of ``model_dir`` to ``out_dir`` whose vocabulary and embedding table
    keep only the tokens seen in ``texts`` (see the module docstring)."""
    import torch

    from biotag.models.token_classifier import TokenClassifier

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    tokenizer_file = model_dir / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise InputError("vocabulary pruning needs a fast tokenizer (tokenizer.json)", path=str(tokenizer_file), field="tokenizer")
    if min_count < 1:
        raise InputError(f"min_count must be at least 1, got {min_count}", field="min_count")
    tokenizer_json = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    counts = token_counts(tokenizer_file, texts)
    if not counts.any():
        raise InputError("no text to count tokens on", field="texts")
    keep = kept_ids(tokenizer_json, counts, min_count=min_count, keep_characters=keep_characters)
    model = TokenClassifier.from_pretrained(model_dir)
    network = model.network
    old = network.get_input_embeddings()
    if old.weight.shape[0] != len(tokenizer_json["model"]["vocab"]):
        raise InputError(
            f"the embedding table has {old.weight.shape[0]} rows but the tokenizer {len(tokenizer_json['model']['vocab'])} tokens",
            path=str(model_dir),
            field="tokenizer",
        )
    remap = {int(o): n for n, o in enumerate(keep)}
    pad = network.config.pad_token_id
    new = torch.nn.Embedding(len(keep), old.weight.shape[1], padding_idx=remap.get(pad) if pad is not None else None)
    new.weight.data.copy_(old.weight.detach()[torch.from_numpy(keep)])
    network.set_input_embeddings(new)
    network.config.vocab_size = len(keep)
    if pad is not None:
        network.config.pad_token_id = remap[pad]
    summary = {
        "method": "vocabulary pruning",
        "vocab_size": [int(old.weight.shape[0]), len(keep)],
        "min_count": min_count,
        "keep_characters": keep_characters,
        "tokens_counted": int(counts.sum()),
        "parameters": sum(p.numel() for p in network.parameters()),
    }
    card = {**model.card, "compression": [*model.card.get("compression", []), summary]}
    model.save_pretrained(out_dir, card=card)
    renumbered = renumber_tokenizer(tokenizer_json, keep)
    (out_dir / TOKENIZER_FILE).write_text(json.dumps(renumbered, ensure_ascii=False), encoding="utf-8")
    _fix_tokenizer_side_files(out_dir, renumbered, remap)
    return out_dir


def _fix_tokenizer_side_files(out_dir: Path, renumbered: dict[str, Any], remap: dict[int, int]) -> None:
    """``vocab.txt`` and ``tokenizer_config.json``'s ``added_tokens_decoder`` carry ids too."""
    vocab_txt = out_dir / "vocab.txt"
    if vocab_txt.is_file():
        tokens = sorted(renumbered["model"]["vocab"].items(), key=lambda item: item[1])
        vocab_txt.write_text("".join(t + "\n" for t, _ in tokens), encoding="utf-8")
    config_file = out_dir / "tokenizer_config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        decoder = config.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            config["added_tokens_decoder"] = {str(remap[int(k)]): v for k, v in decoder.items() if int(k) in remap}
            config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
