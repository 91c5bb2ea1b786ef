"""Perturbed copies of training pairs: unlabelled pairs that look like the task's own.

A transfer set from abstracts (:mod:`biotag.relations.transfer`) gives a relation student
more pairs, but not pairs like DDI's drug-label sentences. TinyBERN's and TinyBERT's
answer is to perturb the training sentences themselves and let the teacher label the
copies: the student then sees the teacher's distribution near the gold pairs, where a
cut-down model loses most. Each copy changes about ``rate`` of the words outside the two
arguments: half of the changed words are deleted, half are replaced by a word drawn from
the training texts (by frequency). The arguments and their types never change, so the
copy is still a pair of the task; it has no gold label and teaches through the soft term.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import accumulate
from typing import Sequence

from biotag.relations.examples import Mention, RelationExample

_WORD = re.compile(r"\S+")


def _word_pool(examples: Sequence[RelationExample]) -> tuple[list[str], list[int]]:
    """The words of ``examples`` and their cumulative counts (drawing with cumulative weights
    is a bisection; plain weights would be summed again on every draw)."""
    counts = Counter(word for e in examples for word in _WORD.findall(e.text))
    words = sorted(counts)
    return words, list(accumulate(counts[w] for w in words))


def perturb(example: RelationExample, rng: random.Random, rate: float, pool: tuple[list[str], list[int]]) -> RelationExample:
    """One copy of ``example`` with about ``rate`` of its non-argument words deleted or
    replaced by a word of ``pool`` (words, cumulative weights); argument offsets follow the
    edits."""
    head, tail = example.head, example.tail
    pieces: list[str] = []  # the new text, built left to right
    shift: dict[int, int] = {}  # old offset -> new offset, for argument boundaries
    boundaries = {head.start, head.end, tail.start, tail.end}
    pos = 0
    length = 0

    def copy_to(end: int) -> None:
        nonlocal pos, length
        for b in boundaries:
            if pos <= b <= end:
                shift[b] = length + (b - pos)
        pieces.append(example.text[pos:end])
        length += end - pos
        pos = end

    for match in _WORD.finditer(example.text):
        start, end = match.span()
        if head.start < end and start < head.end or tail.start < end and start < tail.end:
            continue  # arguments (and words touching them) stay as they are
        if rng.random() >= rate:
            continue
        copy_to(start)
        if rng.random() < 0.5:  # delete the word and the spaces after it
            while end < len(example.text) and example.text[end].isspace():
                end += 1
        else:
            word = rng.choices(pool[0], cum_weights=pool[1])[0]
            pieces.append(word)
            length += len(word)
        pos = end
    copy_to(len(example.text))
    text = "".join(pieces)

    def moved(m: Mention) -> Mention:
        return Mention(shift[m.start], shift[m.end], m.type)

    return RelationExample(example.key, text, moved(head), moved(tail), None)


def augmented_examples(
    examples: Sequence[RelationExample],
    copies: int,
    *,
    rate: float = 0.15,
    seed: int = 13,
    exclude_texts: set[str] = frozenset(),
) -> list[RelationExample]:
    """``copies`` perturbed, unlabelled copies of every example (keys
    ``augmented:<key>:<n>``); copies that come out unchanged, or equal to a text in
    ``exclude_texts`` (held-out examples), are dropped."""
    rng = random.Random(seed)
    pool = _word_pool(examples)
    out: list[RelationExample] = []
    for n in range(copies):
        for e in examples:
            copy = perturb(e, rng, rate, pool)
            if copy.text == e.text or " ".join(copy.text.split()) in exclude_texts:
                continue
            copy.key = f"augmented:{e.key}:{n}"
            out.append(copy)
    return out
