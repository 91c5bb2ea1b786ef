"""Readings of a mention that no dictionary name matches as written.

Two sieves of the rule-based normalisers (D'Souza & Ng 2015, "Sieve-based entity
linking for the biomedical domain"), with their rules learned from the ontology itself
instead of written by hand:

* **word equivalents** -- two names of one concept that differ in a single word teach
  that the words are interchangeable: MeSH's "Liver Neoplasms" / "Liver Tumors" and
  dozens like it make *neoplasm* ~ *tumor*, "Kidney Diseases" / "Renal Diseases" make
  *kidney* ~ *renal*. A pair must be seen in :data:`MIN_CONCEPTS` concepts to count.
  :func:`substitutions` rewrites a mention one word at a time ("liver tumors" -> the
  loose key of "liver neoplasm");
* **head fallback** -- :func:`head_readings` drops leading modifiers ("hemorrhagic
  cystitis" -> "cystitis"), the last resort before n-gram similarity.

One hand-written rule sits beside them, because NER corpora write it and ontologies do
not: :func:`generic_tail_readings` drops the generic nouns that end cell-line and gene
mentions ("HeLa cells", "the MCF-7 cell line", "BRCA1 gene", "p53 protein"; JNLPBA even
annotates the noun as part of the cell line), which Cellosaurus and NCBI Gene names lack.

All readings are loose keys (:func:`biotag.linking.normalize.loose_key` form), looked up
in the ``variants`` table of an index.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Iterable, Iterator

from biotag.linking.normalize import loose_tokens, normalize

MIN_CONCEPTS = 3  # concepts a word pair must be seen in
MIN_WORD_LENGTH = 3
MAX_NAMES = 40  # names per concept compared pairwise (gene designations run to hundreds)
MAX_EQUIVALENTS = 5  # per word, the most frequent


def learn_equivalents(names_per_concept: Iterable[list[str]]) -> list[tuple[str, str, int]]:
    """``(word, equivalent, concepts)`` for every word pair, both directions, seen as the
    one difference between two names of at least :data:`MIN_CONCEPTS` concepts."""
    counts: Counter[tuple[str, str]] = Counter()
    for names in names_per_concept:
        token_sets = {frozenset(Counter(loose_tokens(normalize(n))).items()) for n in names[:MAX_NAMES]}
        pairs: set[tuple[str, str]] = set()
        for a, b in combinations(token_sets, 2):
            only_a, only_b = a - b, b - a
            if len(only_a) == 1 and len(only_b) == 1:
                (word_a, count_a), (word_b, count_b) = next(iter(only_a)), next(iter(only_b))
                if count_a == count_b == 1 and min(len(word_a), len(word_b)) >= MIN_WORD_LENGTH and not (word_a.isdigit() or word_b.isdigit()):
                    pairs.add((word_a, word_b))
                    pairs.add((word_b, word_a))
        counts.update(pairs)
    return [(a, b, n) for (a, b), n in counts.items() if n >= MIN_CONCEPTS]


def substitutions(tokens: list[str], equivalents: dict[str, list[str]]) -> Iterator[str]:
    """Loose keys of ``tokens`` with one word replaced by one of its equivalents."""
    seen: set[str] = set()
    for i, word in enumerate(tokens):
        for other in equivalents.get(word, ())[:MAX_EQUIVALENTS]:
            key = " ".join(sorted(tokens[:i] + [other] + tokens[i + 1 :]))
            if key not in seen:
                seen.add(key)
                yield key


def head_readings(tokens: list[str]) -> Iterator[tuple[str, int]]:
    """``(loose key, words dropped)`` for the mention without its first 1, 2... words
    (at least one word is kept)."""
    for dropped in range(1, len(tokens)):
        yield " ".join(sorted(tokens[dropped:])), dropped


# Trailing words that name what kind of thing the mention is, not which one (loose,
# singular forms). Cell types keep theirs: "T cell" is the Cell Ontology's name.
GENERIC_TAILS = {
    "cell_line": frozenset({"cell", "line", "clone"}),
    "gene": frozenset({"gene", "protein", "mrna", "transcript"}),
}


def generic_tail_readings(tokens: list[str], entity_type: str) -> Iterator[str]:
    """The loose key of the mention without its trailing generic nouns for
    ``entity_type`` (:data:`GENERIC_TAILS`), when it has some and a word is left."""
    tails = GENERIC_TAILS.get(entity_type)
    if not tails:
        return
    end = len(tokens)
    while end > 0 and tokens[end - 1] in tails:
        end -= 1
    if 0 < end < len(tokens):
        yield " ".join(sorted(tokens[:end]))
