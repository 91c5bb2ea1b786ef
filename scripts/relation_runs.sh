#!/usr/bin/env bash
# The relation runs of docs/results.md, one <= 28-minute CPU-lock slot at a time (a training run resumes
# from its checkpoint in the next slot): ChemProt typed vs mask, DDI with the devel winner, int8-vs-fp32
# test benchmarks, the other scheme on ChemProt test, then BioRED (relation model + document-level devel,
# gold entities and end to end). Progress: runs/rel/driver.log.  nohup scripts/relation_runs.sh &
set -u
cd "$(dirname "$0")/.."
mkdir -p runs/rel
log() { echo "$(date -u +%FT%T) $*" >> runs/rel/driver.log; }
slot() {  # slot NAME CAP COMMAND...: one command under the lock, capped (SIGINT), appended to runs/rel/NAME.log
  local name=$1 cap=$2; shift 2
  flock /tmp/biotag-cpu.lock bash -c 's=$(date +%s); echo "$(date -u +%FT%T) got lock: $0" >> runs/rel/driver.log; timeout -s INT '"$cap"' "$@" >> runs/rel/$0.log 2>&1; echo "$(date -u +%FT%T) $0 rc=$? seconds=$(($(date +%s)-s)) load=$(cut -d" " -f1-3 /proc/loadavg)" >> runs/rel/driver.log' "$name" "$@"
}
train() {  # train NAME: until the run has a summary
  local name=$1 tries=0
  until [ -f runs/rel/$name/summary.json ] || [ $tries -ge 6 ]; do
    slot $name 1680 .venv/bin/biotag train-relations --config configs/relations/$name-l6.json --resume
    tries=$((tries+1))
  done
}
log "queue start"
train chemprot-typed
train chemprot-mask
style=$(.venv/bin/python -c "
import json, pathlib
best = {s: json.loads(pathlib.Path(f'runs/rel/chemprot-{s}/summary.json').read_text())['best_f1'] for s in ('typed', 'mask') if pathlib.Path(f'runs/rel/chemprot-{s}/summary.json').is_file()}
print(max(best, key=best.get) if best else 'typed')")
log "winner on chemprot devel: $style"
train ddi-$style
slot bench-ddi 1680 .venv/bin/python benchmarks/relations_speed.py runs/rel/ddi-$style/model -d ddi --split test --threads 2 -o runs/rel/bench-ddi
slot bench-chemprot 1680 .venv/bin/python benchmarks/relations_speed.py runs/rel/chemprot-$style/model -d chemprot --split test --threads 2 -o runs/rel/bench-chemprot
other=$([ "$style" = typed ] && echo mask || echo typed)
slot test-chemprot-$other 1680 .venv/bin/biotag evaluate-relations -m runs/rel/chemprot-$other/model -d chemprot --split test --threads 2 --json runs/rel/test-chemprot-$other.json
train biored-$style
slot biored-doc 1680 bash -c ".venv/bin/biotag evaluate-relations -m runs/rel/biored-$style/model -d biored --split devel --level documents --threads 2 --json runs/rel/biored-doc-gold.json && .venv/bin/biotag evaluate-relations -m runs/rel/biored-$style/model -d biored --split devel --level documents --annotate ner,linking --threads 2 --json runs/rel/biored-doc-e2e.json"
log "queue done"
