#!/usr/bin/env bash
# int8 exports of the best single-corpus models (issue 9), the type teachers of the all-types
# student (configs/distill/all-types-*-type-teachers.json): runs/teachers-int8/<model>
set -eu
cd "$(dirname "$0")/.."
BIOTAG=${BIOTAG:-.venv/bin/biotag}
for n in ncbi-disease-mpnet-crf bc5cdr-mpnet-features-crf bc2gm-l6-features-crf jnlpba-l6-features-crf linnaeus-l6-features-crf s800-l6-features-crf; do
  [ -f "runs/teachers-int8/$n/biotag.json" ] || "$BIOTAG" export "runs/knowledge/$n/model" -o "runs/teachers-int8/$n" --quantize int8
done
