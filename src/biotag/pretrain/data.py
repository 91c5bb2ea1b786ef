"""Pretraining text: documents -> sub-word chunks -> whole-word-masked batches.

Text comes from the shared data (:func:`shared_texts`) or the user's files
(:func:`read_text_file`), never from a test split. Documents are assigned to the
held-back set by a hash of their ids, so the split does not depend on the order they
are read in. Each document is tokenised with the encoder's fast tokenizer; its sub-words
keep a *word-start* flag from the tokenizer's own pre-tokenisation (``word_ids``), which
is what whole-word masking needs. Documents are packed into chunks of at most
``max_length`` sub-words (a separator between documents, long documents cut at word
boundaries).

Whole-word masking (Devlin et al.'s WWM release): words are drawn in random order and
all their sub-words selected until ``mask_prob`` of the chunk's sub-words are; of the
selected sub-words 80 % become ``[MASK]``, 10 % a random token and 10 % stay, and only
they are predicted. Masks are drawn from ``(seed, step)``, so a resumed run draws the
same masks as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from biotag.errors import FormatError, InputError

# sentence-level benchmarks whose train/devel text pretraining reads (BC5CDR's chemical
# and disease views share BC5CDR's text) and document corpora with a devel split
NER_CORPORA = ("ncbi-disease", "bc5cdr", "bc2gm", "jnlpba", "linnaeus", "s800")
DOCUMENT_CORPORA = ("biored",)
IGNORE = -100


@dataclass(frozen=True, slots=True)
class TextDoc:
    id: str
    text: str


# -- reading text ------------------------------------------------------------------
def read_text_file(path: str | Path) -> Iterator[TextDoc]:
    """Documents of a ``.txt`` (one per non-empty line) or ``.jsonl`` file (``text``, or
    ``title`` + ``abstract``; ``in_test_split`` true is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("text file not found", path=str(path), field="text_files")
    jsonl = path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz")
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if not jsonl:
                yield TextDoc(f"{path.name}:{number}", line)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise FormatError(f"not valid JSON: {error.msg}", path=str(path), line=number) from None
            if not isinstance(record, dict):
                raise FormatError("expected a JSON object per line", path=str(path), line=number)
            if record.get("in_test_split"):
                continue
            text = record.get("text")
            if text is None and ("title" in record or "abstract" in record):
                text = " ".join(str(record.get(k) or "") for k in ("title", "abstract")).strip()
            if not isinstance(text, str):
                raise FormatError("no 'text' (or 'title'/'abstract') string", path=str(path), line=number, field="text")
            doc_id = record.get("id") or record.get("pmid") or f"{path.name}:{number}"
            if text.strip():
                yield TextDoc(str(doc_id), text)


def shared_texts(sources: Sequence[str], root: str | Path | None = None) -> Iterator[TextDoc]:
    """Biomedical text of the shared data that is in no test split: ``abstracts``
    (``text/pubmed-abstracts.jsonl``), ``more-text`` (``text/more-biomedical-text.jsonl``)
    and ``ner-corpora`` (train and devel text of :data:`NER_CORPORA` and
    :data:`DOCUMENT_CORPORA`)."""
    from biotag import paths

    base = Path(root) if root is not None else paths.data_root()
    files = {"abstracts": "text/pubmed-abstracts.jsonl", "more-text": "text/more-biomedical-text.jsonl"}
    for source in sources:
        if source in files:
            yield from read_text_file(base / files[source])
        elif source == "ner-corpora":
            from biotag.corpora import read_corpus

            for corpus in NER_CORPORA + DOCUMENT_CORPORA:
                for split in ("train", "devel"):
                    for doc in read_corpus(corpus, split, root=base):
                        yield TextDoc(f"{corpus}:{doc.id}", doc.text)
        else:
            raise InputError(f"unknown text source {source!r}", field="sources")


def unique(docs: Iterable[TextDoc]) -> Iterator[TextDoc]:
    """Documents with a text not seen before (corpora share abstracts)."""
    seen: set[bytes] = set()
    for doc in docs:
        key = hashlib.blake2b(" ".join(doc.text.split()).encode("utf-8"), digest_size=12).digest()
        if key not in seen:
            seen.add(key)
            yield doc


def is_heldout(doc_id: str, fraction: float) -> bool:
    return zlib.crc32(doc_id.encode("utf-8")) % 10_000 < round(fraction * 10_000)


# -- chunks ---------------------------------------------------------------------------
@dataclass(slots=True)
class Chunks:
    """Packed sub-word sequences (without special tokens), stored flat."""

    ids: np.ndarray  # int32 [total]
    word_start: np.ndarray  # bool [total]: the sub-word starts a word
    offsets: np.ndarray  # int64 [n + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.word_start[a:b]

    def save(self, path: Path) -> None:
        np.savez(path, ids=self.ids, word_start=self.word_start, offsets=self.offsets)

    @classmethod
    def load(cls, path: Path) -> "Chunks":
        with np.load(path) as data:
            return cls(data["ids"], data["word_start"], data["offsets"])


def chunk_documents(tokenizer, texts: Iterable[str], budget: int, batch: int = 256) -> Chunks:
    """Tokenise ``texts`` and pack them into chunks of at most ``budget`` sub-words, a
    separator token between documents; a document longer than that is cut at word starts."""
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    ids: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    lengths: list[int] = []
    current_ids: list[np.ndarray] = []
    current_starts: list[np.ndarray] = []
    used = 0

    def flush() -> None:
        nonlocal used, current_ids, current_starts
        if used:
            ids.append(np.concatenate(current_ids))
            starts.append(np.concatenate(current_starts))
            lengths.append(used)
        current_ids, current_starts, used = [], [], 0

    def add(piece_ids: np.ndarray, piece_starts: np.ndarray) -> None:
        nonlocal used
        need = len(piece_ids) + (1 if used else 0)
        if used and used + need > budget:
            flush()
            need = len(piece_ids)
        if used:
            current_ids.append(np.array([sep], dtype=np.int32))
            current_starts.append(np.array([True]))
        current_ids.append(piece_ids)
        current_starts.append(piece_starts)
        used += need

    pending: list[str] = []

    def tokenise(group: list[str]) -> None:
        encoded = tokenizer(group, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, verbose=False)
        for row in range(len(group)):
            doc_ids = np.asarray(encoded["input_ids"][row], dtype=np.int32)
            if not len(doc_ids):
                continue
            word_ids = encoded.word_ids(row)
            doc_starts = np.array([i == 0 or word_ids[i] != word_ids[i - 1] for i in range(len(word_ids))], dtype=bool)
            for a, b in _pieces(doc_starts, budget):
                add(doc_ids[a:b], doc_starts[a:b])

    for text in texts:
        pending.append(text)
        if len(pending) >= batch:
            tokenise(pending)
            pending = []
    if pending:
        tokenise(pending)
    flush()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not lengths:
        return Chunks(np.zeros(0, np.int32), np.zeros(0, bool), offsets)
    return Chunks(np.concatenate(ids), np.concatenate(starts), offsets)


def _pieces(word_start: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Cut a document's sub-words into runs of at most ``budget``, at word starts where
    possible (a single word longer than that is cut anywhere)."""
    n, out, a = len(word_start), [], 0
    while a < n:
        b = min(a + budget, n)
        if b < n and not word_start[b]:
            cut = np.flatnonzero(word_start[a + 1 : b + 1])
            if len(cut):
                b = a + 1 + int(cut[-1])
        out.append((a, b))
        a = b
    return out


# -- masking and batches ----------------------------------------------------------------
def whole_word_mask(
    ids: np.ndarray, word_start: np.ndarray, rng: np.random.Generator, *, mask_prob: float, mask_id: int, vocab_size: int, special: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, labels)`` of one chunk: whole words chosen in random order until
    ``mask_prob`` of its sub-words are; labels are ``-100`` except at chosen sub-words."""
    n = len(ids)
    starts = np.flatnonzero(word_start)
    ends = np.append(starts[1:], n)
    candidate = ~np.isin(ids[starts], special)  # separators are not words to predict
    words = np.flatnonzero(candidate)
    budget = max(1, int(round(n * mask_prob)))
    chosen = np.zeros(n, dtype=bool)
    taken = 0
    for w in rng.permutation(words):
        size = ends[w] - starts[w]
        if taken and taken + size > budget:
            continue  # a word that would overshoot: try shorter ones
        chosen[starts[w] : ends[w]] = True
        taken += size
        if taken >= budget:
            break
    labels = np.where(chosen, ids, IGNORE).astype(np.int64)
    out = ids.astype(np.int64)
    roll = rng.random(n)
    out[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    out[swap] = rng.integers(0, vocab_size, int(swap.sum()))
    return out, labels


class Batcher:
    """Padded, masked batches of chunks with the tokenizer's special tokens around each."""

    def __init__(self, tokenizer, vocab_size: int, mask_prob: float) -> None:
        enc = tokenizer("x", add_special_tokens=True)
        inner = tokenizer("x", add_special_tokens=False)["input_ids"]
        ids = enc["input_ids"]
        first = ids.index(inner[0])
        self.prefix, self.suffix = ids[:first], ids[first + len(inner) :]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.mask_id = tokenizer.mask_token_id
        if self.mask_id is None:
            raise InputError("the tokenizer has no mask token: not a masked-language-model vocabulary", field="encoder")
        self.vocab_size = vocab_size
        self.mask_prob = mask_prob
        self.special = np.array(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)

    def batch(self, chunks: Chunks, indices: Sequence[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
        rows = []
        for i in indices:
            ids, starts = chunks.get(int(i))
            rows.append(whole_word_mask(ids, starts, rng, mask_prob=self.mask_prob, mask_id=self.mask_id, vocab_size=self.vocab_size, special=self.special))
        pre, post = len(self.prefix), len(self.suffix)
        length = max(len(r[0]) for r in rows) + pre + post
        input_ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        labels = np.full((len(rows), length), IGNORE, dtype=np.int64)
        attention = np.zeros((len(rows), length), dtype=np.int64)
        for k, (ids, lab) in enumerate(rows):
            m = len(ids) + pre + post
            input_ids[k, :m] = self.prefix + ids.tolist() + self.suffix
            labels[k, pre : pre + len(ids)] = lab
            attention[k, :m] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
