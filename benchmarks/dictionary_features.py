"""Dictionary- and shape-feature speed on bern2-benchmark-1k (words/s), with the default
dictionaries (built or read from the cache), one process, one thread.

usage: python benchmarks/dictionary_features.py [N_DOCS]   (default: all 1,000 abstracts)
Prints JSON: build/load time, dictionary counts, words, seconds and words/s of
segmentation alone, dictionary matching, shape features, and the matches per type.
"""

import json
import platform
import sys
import time
from collections import Counter

from biotag import paths
from biotag.features.shape import shape_features, word_shape
from biotag.features.sources import default_matcher
from biotag.ner import sentence_word_offsets
from biotag.pretrain.data import read_text_file
from biotag.document import Document

limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
started = time.perf_counter()
matcher = default_matcher()
load_seconds = time.perf_counter() - started
docs = list(read_text_file(paths.data_root() / "text" / "bern2-benchmark-1k.jsonl"))[:limit]
started = time.perf_counter()
sentences = []
for d in docs:
    doc = Document(id=d.id, text=d.text)
    sentences += [[doc.text[a:b] for a, b in words] for words in sentence_word_offsets(doc)]
segment_seconds = time.perf_counter() - started
n_words = sum(map(len, sentences))
started = time.perf_counter()
found = Counter(m.type for words in sentences for m in matcher.matches(words))
match_seconds = time.perf_counter() - started
word_shape.cache_clear()
started = time.perf_counter()
for words in sentences:
    shape_features(words)
shape_seconds = time.perf_counter() - started
print(json.dumps({
    "documents": len(docs), "sentences": len(sentences), "words": n_words,
    "matcher_load_or_build_seconds": round(load_seconds, 2), "dictionary": matcher.info.get("counts"),
    "segmentation_words_per_second": round(n_words / segment_seconds),
    "dictionary_words_per_second": round(n_words / match_seconds), "dictionary_seconds": round(match_seconds, 2),
    "shape_words_per_second": round(n_words / shape_seconds), "matches": dict(found),
    "hardware": f"{platform.machine()} {platform.processor()}", "python": platform.python_version(),
}, indent=1))
