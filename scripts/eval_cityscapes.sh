#!/usr/bin/env bash
# FCN-score trained Cityscapes runs as the paper's tables do: synthesize the 500 val frames with
# test.py, score them with the default segmenters (and the real photos: the ground-truth row),
# and, given several runs, put them in one table.
#
#   scripts/eval_cityscapes.sh NAME [NAME...]            e.g. cityscapes_adam_seed0 cityscapes_tradam_seed0
#   EPOCH=100 scripts/eval_cityscapes.sh NAME            a saved epoch instead of the last one
#
# Writes results/<NAME>/val_<EPOCH>/{images/,fcn_scores.json,fcn_scores.md}; with several names also
# results/cityscapes_compare/. The segmenters come from the model hub (first use downloads them);
# offline, pass local save_pretrained folders: SEGMENTERS="--segmenter DIR1 --segmenter DIR2".
# The papers' unit, pix2pix's FCN-8s (its download_fcn8s.sh fetches the file):
#   SEGMENTERS="--segmenter path/fcn-8s-cityscapes.caffemodel --segmenter smp-hub/segformer-b5-1024x1024-city-160k"
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -lt 1 ]; then
  echo "usage: $0 NAME [NAME...]  (runs under checkpoints/)" >&2
  exit 2
fi
EPOCH="${EPOCH:-latest}"
DATAROOT="${DATAROOT:-./datasets/cityscapes}"
read -r -a SEG_FLAGS <<< "${SEGMENTERS:-}"
DIRS=()
for NAME in "$@"; do
  OUT="results/${NAME}/val_${EPOCH}"
  python test.py --dataroot "${DATAROOT}" --name "${NAME}" --phase val --epoch "${EPOCH}" --num_test 500
  python evaluate/fcn_score.py --results_dir "${OUT}/images" --dataroot "${DATAROOT}" --phase val \
    --gt --output_dir "${OUT}" ${SEG_FLAGS[@]+"${SEG_FLAGS[@]}"}
  DIRS+=("${OUT}")
done
if [ "${#DIRS[@]}" -gt 1 ]; then
  python evaluate/fcn_score.py --compare "${DIRS[@]}" --output_dir results/cityscapes_compare
fi
