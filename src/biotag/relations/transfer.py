"""Unlabelled candidate pairs for relation distillation (a transfer set).

A relation student learns from the teacher's distribution over each pair, and gold
corpora are small (ChemProt: 18,000 training pairs). More pairs come from plain text:
an NER model (default: the bundled one) tags the documents, :func:`candidate_pairs`
makes the task's type pairs within ``window`` sentences, and the teacher scores them.
They carry no gold label; the student learns them through the soft-label term only.

What must not leak into training is left out: records flagged ``in_test_split`` (by
:func:`biotag.pretrain.data.read_text_file`), documents whose id is the document id of a
devel or test example of the task (ChemProt keys are ``PMID.T1.T2``), and any candidate
whose text is the text of a devel or test example.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Iterator, Sequence

from biotag.document import Document
from biotag.errors import InputError
from biotag.relations.candidates import candidate_pairs, to_example
from biotag.relations.datasets import RelationTask, read_examples
from biotag.relations.examples import RelationExample

log = logging.getLogger(__name__)

_DOC_ID = re.compile(r"^[^.:]+")  # the document part of an example key (PMID.T1.T2, doc:e1:e2)


def held_out(dataset: str, task: RelationTask, *, window: int = 1, splits: Sequence[str] = ("devel", "test")) -> tuple[set[str], set[str]]:
    """Document ids and example texts of ``dataset``'s held-out splits (a split the
    dataset does not have is skipped)."""
    ids: set[str] = set()
    texts: set[str] = set()
    for split in splits:
        try:
            _, examples = read_examples(dataset, split, window=window, task=task)
        except (InputError, FileNotFoundError):
            continue
        for e in examples:
            ids.add(_DOC_ID.match(e.key).group(0) if _DOC_ID.match(e.key) else e.key)
            texts.add(" ".join(e.text.split()))
    return ids, texts


def unlabelled_pairs(
    docs: Iterable[Document],
    task: RelationTask,
    annotate,
    *,
    window: int = 1,
    limit: int | None = None,
    exclude_ids: set[str] = frozenset(),
    exclude_texts: set[str] = frozenset(),
) -> Iterator[RelationExample]:
    """Candidate pairs of ``task`` in ``docs`` once ``annotate`` (documents -> documents
    with entities, e.g. :meth:`biotag.Annotator.pipe`) has tagged them; at most ``limit``."""
    count = 0
    kept = (d for d in docs if d.id not in exclude_ids)
    for doc in annotate(kept):
        for candidate in candidate_pairs(doc, task, window=window):
            example = to_example(doc, candidate)
            if " ".join(example.text.split()) in exclude_texts:
                continue
            yield example
            count += 1
            if limit is not None and count >= limit:
                return


def transfer_examples(
    paths: Sequence[str],
    dataset: str,
    task: RelationTask,
    *,
    ner_model: str | None = None,
    window: int = 1,
    limit: int | None = None,
    threads: int | None = None,
    exclude: tuple[set[str], set[str]] | None = None,
) -> list[RelationExample]:
    """Unlabelled pairs from the text files ``paths`` (``.jsonl`` or ``.txt``, read as by
    ``biotag pretrain``), tagged by ``ner_model`` (default: the bundled model), with
    ``dataset``'s devel and test documents and texts left out (``exclude``: those ids and
    texts when the caller has read them already); keys are ``unlabelled:<key>``."""
    from biotag.api import load
    from biotag.pretrain.data import read_text_file, unique

    exclude_ids, exclude_texts = exclude if exclude is not None else held_out(dataset, task, window=window)
    annotator = load(ner_model, threads=threads, steps="ner")
    missing = [t for pair in task.pairs for t in pair if t not in annotator.types]
    if missing:
        raise InputError(f"the NER model predicts {list(annotator.types)}, not the task's argument types {sorted(set(missing))}", field="soft_ner")
    docs = (Document(id=d.id, text=d.text) for path in paths for d in unique(read_text_file(path)))
    out = [
        RelationExample(f"unlabelled:{e.key}", e.text, e.head, e.tail, None)
        for e in unlabelled_pairs(
            docs, task, annotator.pipe, window=window, limit=limit, exclude_ids=exclude_ids, exclude_texts=exclude_texts
        )
    ]
    log.info("transfer set: %d unlabelled pairs from %s", len(out), ", ".join(paths))
    return out
