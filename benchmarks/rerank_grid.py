"""Devel acc@1 of a linking re-ranker built from any encoder directory (a plain encoder
such as MiniLM-L3 as downloaded, or a training checkpoint), over the tuning grid of
``biotag train-reranker`` (``rerank_train.tune_reranker``), without writing anything.

usage: python benchmarks/rerank_grid.py ENCODER_DIR [POOLS] [NAMES]   e.g. runs/rerank/minilm-l3/checkpoint 5 2
"""

import json
import sys
import time

import torch

from biotag.linking.rerank import BiEncoder, EmbeddingReranker
from biotag.linking.rerank_train import tune_reranker

torch.set_num_threads(1)
source = sys.argv[1]
pools = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "5,10,20").split(",")]
names = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "2,8,16").split(",")]
started = time.perf_counter()
result = tune_reranker(EmbeddingReranker(BiEncoder.from_pretrained(source)), pools=pools, names=names, write=False)
print(json.dumps({k: v for k, v in result.items() if k != "grid"}))
for row in result["grid"]:
    print(row["weight"], row["pool"], row["names"], row["acc@1"], row["mean"])
print("seconds", round(time.perf_counter() - started))
