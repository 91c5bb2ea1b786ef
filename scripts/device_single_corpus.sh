#!/usr/bin/env bash
# Single-corpus NER runs (configs/ner/<run>.json) on a GPU machine lent through the `device`
# tool, which takes at most 64 MiB of working tree and returns 64 MiB of files.
#
# Here, first (the transport folder is git-ignored through .git/info/exclude):
#   python scripts/device_transport.py pack-encoder minilm-l6 .device/minilm-l6 -c bc2gm -c jnlpba -c ncbi-disease
#   (cd ../shared/data && tar -cJf - ner/BC2GM ner/JNLPBA ner/NCBI-disease) > .device/data.tar.xz
# (the all-types run: every corpus of configs/ner/all-types-l6.json in both commands)
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
BIOTAG=(python3 -c 'import sys; from biotag.cli import app; sys.argv[0] = "biotag"; app()')
corpora_of() { python3 -c "import json,sys; print(' '.join('-c ' + c for c in json.load(open(sys.argv[1]))['corpora']))" "configs/ner/$1.json"; }

[ -d "$BIOTAG_DATA/ner" ] || tar -xJf .device/data.tar.xz -C "$BIOTAG_DATA"
[ -f "$BIOTAG_ENCODERS/minilm-l6/model.safetensors" ] || python3 scripts/device_transport.py unpack-encoder .device/minilm-l6 "$BIOTAG_ENCODERS/minilm-l6"
command -v nvidia-smi > /dev/null && nvidia-smi -L

for run in $RUNS; do
  corpora=$(corpora_of "$run")
  (
    [ -f "runs/single/$run/summary.json" ] || timeout "${TRAIN_LIMIT:-86400}" "${BIOTAG[@]}" train --config "configs/ner/$run.json" $corpora -o "runs/single/$run" \
      --device "$DEVICE" --threads 4 ${EXTRA:-} > "runs/$run.device.out" 2>&1
    echo "$(date -u +%T) $run trained rc=$?"
    # test scores of single-corpus runs (a multi-corpus model is scored per corpus here, by biotag bench)
    [ "$(echo $corpora | wc -w)" = 2 ] && "${BIOTAG[@]}" evaluate -m "runs/single/$run/model" $corpora --split test --backend torch \
      -o "runs/single/$run/test-eval.device.json" >> "runs/$run.device.out" 2>&1
    echo "$(date -u +%T) $run done"
  ) &
done
wait
tar -czf "$OUT/logs.tar.gz" runs/*.device.out runs/single/*/README.md runs/single/*/log.jsonl runs/single/*/summary.json runs/single/*/config.json \
  runs/single/*/test-eval.device.json 2> /dev/null
for run in $PACK; do
  python3 scripts/device_transport.py pack-model "runs/single/$run/model" "$OUT/$run" $(corpora_of "$run")
done
ls -la "$OUT"
