"""De-identification throughput: notes per second through the whole `biotag deidentify`
path (sentence split, model, rules, merging, propagation, output with its leak checks)
on the physionet-deid dev notes.

    python benchmarks/deid_speed.py --model runs/deid/phi-l6-int8 --threads 2
    python benchmarks/deid_speed.py --rules-only

The first pass over a few notes warms the model up and is not timed; then every note is
de-identified ``--repeat`` times and the best pass is kept (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="PHI model directory (ONNX export for speed)")
    parser.add_argument("--rules-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="tag", choices=("tag", "surrogate"))
    parser.add_argument("--split", default="dev")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-notes", type=int, default=64)
    args = parser.parse_args()

    from biotag.deid.data import physionet_split
    from biotag.deid.notes import Note, deidentify_notes
    from biotag.deid.tagger import PhiTagger

    tagger = PhiTagger.load(None if args.rules_only else args.model, threads=args.threads)
    notes = [Note(d.id, d.text, str(d.metadata["patient"])) for d in physionet_split(args.split)]
    chars = sum(len(n.text) for n in notes)
    for _ in deidentify_notes(notes[:16], tagger, mode=args.mode, seed=0):
        pass
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _ in deidentify_notes(notes, tagger, mode=args.mode, seed=0, batch_notes=args.batch_notes):
            pass
        best = min(best, time.perf_counter() - start)
    print(json.dumps({
        "model": None if args.rules_only else args.model, "mode": args.mode, "threads": args.threads,
        "notes": len(notes), "characters": chars, "seconds": round(best, 3),
        "notes_per_second": round(len(notes) / best, 1), "chars_per_second": round(chars / best),
        "load_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
