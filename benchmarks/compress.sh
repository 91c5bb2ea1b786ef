#!/usr/bin/env bash
# The compressed models of the "compression" table in docs/benchmarks.md, built from one
# trained biotag model (PyTorch weights) with `biotag export`, then (with --bench) that
# table's `biotag bench` run over them.
#
#   benchmarks/compress.sh MODEL [OUT] [--bench]
#   e.g. flock /tmp/biotag-cpu.lock benchmarks/compress.sh runs/all-types-l6/model runs/compress --bench
#
# OUT (default runs/compress) receives:
#   base-fp32, base-int8   the uncompressed exports (what `biotag bench --export fp32,int8` makes)
#   sparse80-fp32          80 % unstructured magnitude sparsity, fp32 ONNX
#   sparse80-int8          the same, dynamic int8
#   heads25-int8           25 % of all attention heads removed (lowest weight magnitude first), int8
#   heads50-int8           50 % of the heads, int8
#   ffn50-int8             50 % of every layer's FFN neurons, int8
#   layers3-int8           encoder layers 1,3,5 dropped (6 -> 3, every other layer as in DistilBERT), int8
#   vocab-int8             WordPiece rows never seen in the shared non-test biomedical text dropped, int8
# No fine-tuning follows any pruning: the table measures what each cut costs by itself.
# Existing model directories are kept (delete one to rebuild it); DROP_LAYERS overrides 1,3,5
# for encoders with another depth.
set -euo pipefail

usage() { echo "usage: $0 MODEL [OUT] [--bench]" >&2; exit 2; }
bench=0
args=()
for arg in "$@"; do
    case "$arg" in
        --bench) bench=1 ;;
        -h|--help) usage ;;
        *) args+=("$arg") ;;
    esac
done
[ "${#args[@]}" -ge 1 ] && [ "${#args[@]}" -le 2 ] || usage
model=${args[0]}
out=${args[1]:-runs/compress}
biotag=${BIOTAG:-biotag}
[ -f "$model/biotag.json" ] || { echo "$model: not a biotag model directory (no biotag.json)" >&2; exit 2; }
mkdir -p "$out"

build() {  # build NAME EXPORT-OPTIONS...
    local name=$1
    shift
    if [ -f "$out/$name/biotag.json" ]; then
        echo "keeping $out/$name"
        return
    fi
    echo "+ $biotag export $model -o $out/$name $*"
    "$biotag" export "$model" -o "$out/$name" --overwrite "$@"
}

build base-fp32 --quantize none
build base-int8 --quantize int8
build sparse80-fp32 --quantize none --sparsity 0.8
build sparse80-int8 --quantize int8 --sparsity 0.8
build heads25-int8 --quantize int8 --prune-heads 0.25
build heads50-int8 --quantize int8 --prune-heads 0.5
build ffn50-int8 --quantize int8 --prune-ffn 0.5
build layers3-int8 --quantize int8 --drop-layers "${DROP_LAYERS:-1,3,5}"
build vocab-int8 --quantize int8 --prune-vocab

if [ "$bench" = 1 ]; then
    models=()
    for name in base-fp32 base-int8 sparse80-fp32 sparse80-int8 heads25-int8 heads50-int8 ffn50-int8 layers3-int8 vocab-int8; do
        models+=(-m "$out/$name")
    done
    # the default --data: bern2-benchmark-1k.jsonl of the shared data
    "$biotag" bench "${models[@]}" --eval-corpus ncbi-disease \
        --limit 200 --export '' --latency-docs 30 --no-hf-pipeline -o "$out/bench" ${BENCH_DOCS:+--update-docs "$BENCH_DOCS" --docs-key compression}
fi
