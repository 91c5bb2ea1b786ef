#!/usr/bin/env bash
# Train NER configs one after another under the shared CPU lock, resuming any run that was
# interrupted and skipping finished ones. Logs go to runs/queue.log.
#   nohup scripts/train_queue.sh s800-l6 linnaeus-l6 ... > /dev/null 2>&1 &
set -u
cd "$(dirname "$0")/.."
BIOTAG=${BIOTAG:-.venv/bin/biotag}
mkdir -p runs
for name in "$@"; do
  config=configs/ner/$name.json
  out=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['output_dir'])" "$config")
  if [ -f "$out/summary.json" ]; then echo "$(date -u +%FT%T) skip $name (finished)" >> runs/queue.log; continue; fi
  corpora=$(python3 -c "import json,sys; print(' '.join('-c ' + c for c in json.load(open(sys.argv[1]))['corpora']))" "$config")
  resume=""; [ -d "$out/checkpoint" ] && resume="--resume"
  echo "$(date -u +%FT%T) start $name $resume" >> runs/queue.log
  mkdir -p "$(dirname "runs/$name.out")"  # names like knowledge/x log under runs/knowledge/
  flock /tmp/biotag-cpu.lock "$BIOTAG" train --config "$config" $corpora -o "$out" $resume > "runs/$name.out" 2>&1
  rc=$?
  echo "$(date -u +%FT%T) end $name rc=$rc" >> runs/queue.log
done
