"""Dynamic int8: each window run alone (trimmed to its length) vs padded batches: agreement with fp32, speed.
usage: per_row.py MODEL_DIR padded|per-row N_DOCS"""
import sys, time, json, numpy as np, biotag
from biotag import io
from biotag.runtime import engine

def per_row(self, batch):
    ids, mask = batch.input_ids, batch.attention_mask
    lengths = mask.sum(1)
    out = None
    for r in range(ids.shape[0]):
        n = int(lengths[r])
        (logits,) = self.session.run([engine.OUTPUT_NAME], {"input_ids": ids[r:r+1, :n], "attention_mask": mask[r:r+1, :n]})
        if out is None:
            out = np.zeros((ids.shape[0], ids.shape[1], logits.shape[-1]), dtype=logits.dtype)
        out[r, :n] = logits[0]
    return out[batch.word_rows, batch.word_positions]

model, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "per-row":
    engine.OnnxTokenClassifier._run_batch = per_row
docs = list(io.read('runs/batch-bench/bern2-1k.jsonl'))[:n]
ann = biotag.load(model, steps="sentences,ner", threads=2)
ann(docs[:5])
t = time.time(); out = ann(docs); dt = time.time() - t
ents = [sorted([e.spans[0].start, e.spans[-1].end, e.type] for e in d.entities) for d in out]
json.dump(ents, open(f"runs/int8/ents-{model.replace('/', '_')}-{mode}.json", "w"))
print(model, mode, f"{dt:.1f}s", sum(map(len, ents)), flush=True)
