"""Word lists -> sub-word windows for a transformer, and per-word outputs back.

Models in biotag predict one label vector per *word*, read at the word's first
sub-word. :class:`SubwordEncoder` turns a batch of word lists into encoder inputs with
any Hugging Face *fast* tokenizer (``is_split_into_words=True`` and ``word_ids()``):

* a word that tokenizes to no sub-word at all (an empty string, a zero-width space, a
  control character) is encoded as the tokenizer's ``[UNK]`` token, so every word has
  its own first sub-word and gets an output;
* a sequence longer than ``max_length`` (special tokens included) is cut at word
  boundaries into windows that overlap by about ``stride`` sub-words. Every word is
  *owned* by exactly one window: the one in which it is farthest from a cut edge (the
  real start and end of the sequence are not edges; ties go to the earlier window). A
  window reports outputs only for the words it owns, so merging is a plain scatter and
  deterministic;
* a single word longer than a whole window keeps only its first sub-words.

:meth:`SubwordEncoder.collate` pads windows into one batch with, per owned word, the
batch row and position of its first sub-word; :func:`scatter_words` puts per-word rows
back in sequence order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from biotag.errors import InputError


@dataclass(frozen=True, slots=True)
class Window:
    """One encoder input: a slice of one word sequence with special tokens added."""

    sequence: int  # index of the word list in the encoded batch
    input_ids: np.ndarray  # int64 [length], special tokens included
    words: np.ndarray  # int64 indices (in the sequence) of the words this window owns
    positions: np.ndarray  # int64 position of each owned word's first sub-word in input_ids

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True, slots=True)
class Encoding:
    """The windows of a batch of word lists."""

    windows: list[Window]
    n_words: list[int]  # words per sequence
    unknown_words: int  # words with no sub-word, encoded as [UNK]


@dataclass(frozen=True, slots=True)
class SubwordBatch:
    """Padded windows plus where each owned word's first sub-word is."""

    input_ids: np.ndarray  # int64 [batch, length]
    attention_mask: np.ndarray  # int64 [batch, length]
    word_rows: np.ndarray  # int64 [n_words]: batch row of each owned word
    word_positions: np.ndarray  # int64 [n_words]: its first sub-word position in that row
    # uint8 [n_words, width]: per-word features (biotag.features) of models that use them
    word_features: np.ndarray | None = None

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int(self.attention_mask.sum())


class SubwordEncoder:
    """Encodes word lists for one tokenizer and window size."""

    def __init__(self, tokenizer, max_length: int = 256, stride: int | None = None) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise InputError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; word alignment needs word_ids()",
                field="tokenizer",
            )
        self.tokenizer = tokenizer
        self.prefix, self.suffix = _special_tokens(tokenizer)
        self.max_length = int(max_length)
        self.budget = self.max_length - len(self.prefix) - len(self.suffix)  # sub-words per window
        if self.budget < 1:
            raise InputError(f"max_length {max_length} leaves no room for sub-words", field="max_length")
        # default overlap: a quarter of a window, so a word near a cut still sees about an
        # eighth of a window of context on that side
        self.stride = self.budget // 4 if stride is None else int(stride)
        if not 0 <= self.stride < self.budget:
            raise InputError(f"stride must be in [0, {self.budget}), got {stride}", field="stride")
        self.unk_id = tokenizer.unk_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # -- encoding -------------------------------------------------------------
    def encode(self, word_lists: Sequence[Sequence[str]]) -> Encoding:
        """Windows for every word list (an empty list gets no window)."""
        windows: list[Window] = []
        unknown = 0
        non_empty = [i for i, words in enumerate(word_lists) if len(words)]
        if non_empty:
            for seq, pieces in zip(non_empty, self._word_pieces([word_lists[i] for i in non_empty])):
                pieces, n_unknown = self._checked_pieces(pieces)
                unknown += n_unknown
                windows.extend(self._windows(seq, pieces))
        return Encoding(windows, [len(w) for w in word_lists], unknown)

    def _word_pieces(self, word_lists: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Each word's sub-word ids (``[]`` for none): from the tokenizer's per-word cache
        when it has one (biotag's FastTokenizer), else grouped by ``word_ids()``."""
        cached = getattr(self.tokenizer, "word_pieces", None)
        if cached is not None:
            return cached(word_lists)
        encoded = self.tokenizer(
            [list(words) for words in word_lists],
            is_split_into_words=True,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        out = []
        for row, words in enumerate(word_lists):
            pieces: list[list[int]] = [[] for _ in words]
            for token, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
                if word is not None:
                    pieces[word].append(token)
            out.append(pieces)
        return out

    def _checked_pieces(self, pieces: list[list[int]]) -> tuple[list[list[int]], int]:
        """A new list: ``[UNK]`` for words without sub-words, over-long words cut to a window."""
        out, unknown = [], 0
        for p in pieces:
            if not p:
                out.append([self.unk_id])
                unknown += 1
            else:
                out.append(p if len(p) <= self.budget else p[: self.budget])
        return out, unknown

    def _windows(self, seq: int, pieces: list[list[int]]) -> list[Window]:
        n = len(pieces)
        offsets = np.zeros(n + 1, dtype=np.int64)  # sub-word offset of each word; [n] = total
        np.cumsum([len(p) for p in pieces], out=offsets[1:])
        if offsets[-1] <= self.budget:  # the usual case: one window owning every word
            ids = [t for p in pieces for t in p]
            return [
                Window(
                    sequence=seq,
                    input_ids=np.asarray(self.prefix + ids + self.suffix, dtype=np.int64),
                    words=np.arange(n, dtype=np.int64),
                    positions=offsets[:-1] + len(self.prefix),
                )
            ]
        ranges = self._word_ranges(offsets)
        owner = _owners(offsets, ranges)
        windows = []
        for k, (ws, we) in enumerate(ranges):
            owned = np.flatnonzero(owner[ws:we] == k) + ws
            ids = [t for p in pieces[ws:we] for t in p]
            windows.append(
                Window(
                    sequence=seq,
                    input_ids=np.asarray(self.prefix + ids + self.suffix, dtype=np.int64),
                    words=owned.astype(np.int64),
                    positions=(offsets[owned] - offsets[ws] + len(self.prefix)).astype(np.int64),
                )
            )
        return windows

    def _word_ranges(self, offsets: np.ndarray) -> list[tuple[int, int]]:
        """Word ranges ``[start, end)`` of the windows: each holds at most ``budget``
        sub-words and starts where it overlaps the previous one by at most ``stride``."""
        n = len(offsets) - 1
        ranges: list[tuple[int, int]] = []
        start = 0
        while True:
            # last word end that keeps the window within budget (at least one word)
            end = max(start + 1, int(np.searchsorted(offsets, offsets[start] + self.budget, side="right")) - 1)
            ranges.append((start, end))
            if end >= n:
                return ranges
            # first word whose start leaves at most `stride` sub-words of overlap
            start = max(start + 1, int(np.searchsorted(offsets, offsets[end] - self.stride, side="left")))

    # -- batching -------------------------------------------------------------
    def collate(self, windows: Sequence[Window]) -> SubwordBatch:
        """Pad windows (right-padding) into one batch."""
        length = max(len(w) for w in windows)
        input_ids = np.full((len(windows), length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(windows), length), dtype=np.int64)
        for row, w in enumerate(windows):
            input_ids[row, : len(w)] = w.input_ids
            attention_mask[row, : len(w)] = 1
        word_rows = np.concatenate([np.full(len(w.words), row, dtype=np.int64) for row, w in enumerate(windows)])
        word_positions = np.concatenate([w.positions for w in windows])
        return SubwordBatch(input_ids, attention_mask, word_rows, word_positions)


def scatter_words(
    windows: Sequence[Window], outputs: Sequence[np.ndarray], n_words: Sequence[int], width: int
) -> list[np.ndarray]:
    """Per-sequence ``[n_words, width]`` arrays from per-window rows of owned words
    (``outputs[k]`` has one row per word in ``windows[k].words``)."""
    merged = [np.zeros((n, width), dtype=np.float32) for n in n_words]
    for w, rows in zip(windows, outputs):
        merged[w.sequence][w.words] = rows
    return merged


def _owners(offsets: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Index of the window owning each word: the one with the largest distance, in
    sub-words, between the word and the nearest cut edge (first window wins ties)."""
    n = len(offsets) - 1
    best = np.full(n, -1, dtype=np.int64)
    best_margin = np.full(n, -np.inf)
    big = float(offsets[-1]) + 1.0  # the real sequence ends count as infinitely far
    for k, (ws, we) in enumerate(ranges):
        words = np.arange(ws, we)
        left = offsets[words] - offsets[ws] if ws > 0 else np.full(len(words), big)
        right = offsets[we] - offsets[words + 1] if we < n else np.full(len(words), big)
        margin = np.minimum(left, right).astype(float)
        better = margin > best_margin[ws:we]
        best[ws:we][better] = k
        best_margin[ws:we][better] = margin[better]
    return best


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer puts before and after a single sequence (``[CLS]``/``[SEP]``,
    ``<s>``/``</s>``...), read from its own post-processor."""
    enc = tokenizer([["x"]], is_split_into_words=True, add_special_tokens=True)
    ids, word_ids = enc["input_ids"][0], enc.word_ids(0)
    content = [i for i, w in enumerate(word_ids) if w is not None]
    if not content:
        raise InputError("the tokenizer produced no sub-word for 'x'", field="tokenizer")
    return list(ids[: content[0]]), list(ids[content[-1] + 1 :])
