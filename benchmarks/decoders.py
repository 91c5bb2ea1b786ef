"""Greedy vs BIO-constrained Viterbi vs CRF decoding of one model's scores on a corpus
split (strict micro P/R/F1 on the gold segmentation, and decoding time).

usage: python benchmarks/decoders.py MODEL_DIR [CORPUS] [SPLIT]   (default ncbi-disease devel)
The scores are predicted once; each decoder the model supports decodes them (crf only for
a model trained with decoder=crf).
"""

import json
import sys
import time

from biotag.metrics import score_spans
from biotag.models.decoding import decode_scores
from biotag.models.token_classifier import TokenClassifier
from biotag.training.data import AlignmentStats, corpus_examples, load_corpus

model_dir = sys.argv[1]
corpus_name = sys.argv[2] if len(sys.argv) > 2 else "ncbi-disease"
split = sys.argv[3] if len(sys.argv) > 3 else "devel"
model = TokenClassifier.from_pretrained(model_dir)
corpus = load_corpus(corpus_name, "train", split, True)
examples = corpus_examples(corpus.devel, 0, corpus, model.schema, AlignmentStats())
started = time.perf_counter()
scores = model.predict_words([e.words for e in examples], batch_size=64)
predict_seconds = time.perf_counter() - started
gold = [(e.key, s.start, s.end, s.type) for e in examples for s in e.spans]
crf = model.crf.params() if model.crf is not None else None
results = {"model": model_dir, "corpus": corpus_name, "split": split, "sentences": len(examples), "predict_seconds": round(predict_seconds, 1)}
for decoder in ("greedy", "viterbi", "crf"):
    if decoder == "crf" and crf is None:
        continue
    started = time.perf_counter()
    pred = [(e.key, s.start, s.end, s.type) for e, sc in zip(examples, scores) for s, _ in decode_scores(model.schema, sc, decoder, crf)]
    seconds = time.perf_counter() - started
    micro = score_spans(gold, pred).micro
    results[decoder] = {"precision": round(micro.precision, 4), "recall": round(micro.recall, 4), "f1": round(micro.f1, 4), "decode_seconds": round(seconds, 2)}
print(json.dumps(results, indent=1))
