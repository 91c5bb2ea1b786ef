#!/usr/bin/env bash
# Single-corpus NER runs (configs/ner/<run>.json) on a GPU machine lent through the `device`
# tool, which takes at most 64 MiB of working tree and returns 64 MiB of files.
#
# Here, first (the transport folder is git-ignored through .git/info/exclude):
#   python scripts/device_transport.py pack-encoder minilm-l6 .device/minilm-l6 -c bc2gm -c jnlpba -c ncbi-disease
#   (cd ../shared/data && tar -cJf - ner/BC2GM ner/JNLPBA ner/NCBI-disease) > .device/data.tar.xz
# There (device run, carry [".device"]):
#   RUNS="bc2gm-l6 jnlpba-l6 ncbi-disease-l6" PACK="bc2gm-l6 jnlpba-l6" bash scripts/device_single_corpus.sh
# Back here, for each packed run:
#   python scripts/device_transport.py unpack-model FILES/<run> runs/single/<run>/model --encoder minilm-l6
# then `biotag evaluate` of runs/single/<run>/model gives the test row (scripts/single_corpus_table.py).
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src BIOTAG_DATA=/tmp/biotag-data BIOTAG_ENCODERS=/tmp/biotag-encoders
OUT=${OUT:-/tmp/biotag-device-out}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-bc2gm-l6 jnlpba-l6}
PACK=${PACK:-$RUNS}
mkdir -p "$OUT" "$BIOTAG_DATA" runs/single
biotag() { python3 -c 'import sys; from biotag.cli import app; sys.argv[0] = "biotag"; app()' "$@"; }
corpus_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['corpora'][0])" "configs/ner/$1.json"; }

[ -d "$BIOTAG_DATA/ner" ] || tar -xJf .device/data.tar.xz -C "$BIOTAG_DATA"
[ -f "$BIOTAG_ENCODERS/minilm-l6/model.safetensors" ] || python3 scripts/device_transport.py unpack-encoder .device/minilm-l6 "$BIOTAG_ENCODERS/minilm-l6"
command -v nvidia-smi > /dev/null && nvidia-smi -L

for run in $RUNS; do
  corpus=$(corpus_of "$run")
  (
    [ -f "runs/single/$run/summary.json" ] || biotag train --config "configs/ner/$run.json" -c "$corpus" -o "runs/single/$run" \
      --device "$DEVICE" --threads 4 ${EXTRA:-} > "runs/$run.device.out" 2>&1
    biotag evaluate -m "runs/single/$run/model" -c "$corpus" --split test --backend torch \
      -o "runs/single/$run/test-eval.device.json" >> "runs/$run.device.out" 2>&1
    echo "$(date -u +%T) $run rc=$?"
  ) &
done
wait
tar -czf "$OUT/logs.tar.gz" runs/*.device.out runs/single/*/log.jsonl runs/single/*/summary.json runs/single/*/config.json \
  runs/single/*/test-eval.device.json 2> /dev/null
for run in $PACK; do
  python3 scripts/device_transport.py pack-model "runs/single/$run/model" "$OUT/$run" -c "$(corpus_of "$run")"
done
ls -la "$OUT"
