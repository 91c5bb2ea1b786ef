"""Inference cost of word features: two models of the same encoder, with and without
features, predicting the same sentences in one process, alternately (so both see the same
machine load). Prints words/s of each and the relative cost.

usage: python benchmarks/feature_cost.py PLAIN_MODEL FEATURE_MODEL [CORPUS] [SPLIT] [ROUNDS]
"""

import json
import sys
import time

import torch

from biotag.models.token_classifier import TokenClassifier
from biotag.training.data import AlignmentStats, corpus_examples, load_corpus

plain_dir, feature_dir = sys.argv[1], sys.argv[2]
corpus_name = sys.argv[3] if len(sys.argv) > 3 else "ncbi-disease"
split = sys.argv[4] if len(sys.argv) > 4 else "devel"
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
torch.set_num_threads(2)
models = {"plain": TokenClassifier.from_pretrained(plain_dir), "features": TokenClassifier.from_pretrained(feature_dir)}
corpus = load_corpus(corpus_name, "train", split, True)
words = [e.words for e in corpus_examples(corpus.devel, 0, corpus, models["plain"].schema, AlignmentStats())]
n_words = sum(map(len, words))
seconds = {name: 0.0 for name in models}
for _ in range(rounds):
    for name, model in models.items():
        started = time.perf_counter()
        model.predict_words(words, batch_size=64)
        seconds[name] += time.perf_counter() - started
out = {name: round(n_words * rounds / s) for name, s in seconds.items()}
out = {"words": n_words, "rounds": rounds, "words_per_second": out, "feature_cost": round(seconds["features"] / seconds["plain"] - 1, 4)}
print(json.dumps(out, indent=1))
