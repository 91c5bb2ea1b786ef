"""What a distillation config's ``teacher_negative_evidence`` rule would overrule: per corpus, the
words whose excluded-type soft label the teachers gave P(B) + P(I) >= 0.5 and the rule turns
into a certain O, and the most frequent such words (docs/distillation.md, "teacher negative
evidence"). It reads the config's teacher cache, so the teachers must have labelled it already
(a distillation run with the same teachers did).

    python scripts/teacher_evidence_audit.py CONFIG [--top 40] [--set KEY=JSON ...]

``--set`` overrides config keys for a what-if, e.g.
``--set teacher_evidence_agreement='"any"'`` or ``--set teacher_evidence_dictionary=false``.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile

import numpy as np
import torch

from biotag.distill import DistillConfig
from biotag.distill.trainer import DistillTrainer


def overruled_words(trainer: DistillTrainer, target: str) -> tuple[collections.Counter, collections.Counter]:
    """(overruled words per corpus name, overruled word forms) over the whole training pool."""
    types = list(trainer.schema.types)
    column = types.index(target)
    names = [str(name) for name in trainer.config.corpora]
    per_corpus: collections.Counter = collections.Counter()
    forms: collections.Counter = collections.Counter()
    for i, item in enumerate(trainer.pool):
        text_only = i >= trainer.n_gold
        scores = torch.from_numpy(trainer._cached_teacher_scores(np.array([i])))
        evidence = trainer._teacher_evidence([item], scores, text_only)[:, column]  # as in training
        inside = 1.0 - torch.softmax(scores.reshape(scores.shape[0], len(types), 3), -1)[:, column, 0]
        hit = (evidence & (inside >= 0.5)).numpy()
        per_corpus["unlabelled text" if text_only else names[item.corpus]] += int(hit.sum())
        words = (trainer.soft_examples if text_only else trainer.train_examples)[item.window.sequence].words
        forms.update(words[item.window.words[w]].lower() for w in np.nonzero(hit)[0])
    return per_corpus, forms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        settings = json.load(f)
    for change in args.set:
        key, _, value = change.partition("=")
        settings[key] = json.loads(value)
    with tempfile.TemporaryDirectory() as scratch:
        settings["output_dir"] = scratch  # nothing is trained: only the cache is read
        trainer = DistillTrainer(DistillConfig(**settings))
        for target in trainer.config.teacher_negative_evidence:
            per_corpus, forms = overruled_words(trainer, target)
            print(f"{target}: {sum(per_corpus.values()):,} words overruled, " + ", ".join(f"{k} {v:,}" for k, v in per_corpus.items()))
            print("  " + ", ".join(f"{w} {n}" for w, n in forms.most_common(args.top)))


if __name__ == "__main__":
    main()
