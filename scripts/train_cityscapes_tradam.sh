#!/usr/bin/env bash
# Train pix2pix on Cityscapes labels -> photos with TRAdam, as the paper did: pix2pix's settings
# with Adam replaced by TRAdam (lambda 0.1, S 10, the rest as Adam). GPU.
#
#   scripts/train_cityscapes_tradam.sh [SEED] [more train.py flags...]
#
# Needs datasets/cityscapes prepared by data/prepare_cityscapes.py (labels/ included, for FCN-score).
# Then: scripts/eval_cityscapes.sh cityscapes_tradam_seed0
# The whole grid (Adam and TRAdam over 3 seeds, the report): python scripts/reproduce.py --scale cityscapes
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${1:-0}"
shift || true
python train.py --dataroot ./datasets/cityscapes --name "cityscapes_tradam_seed${SEED}" \
  --netG unet_256 --ngf 64 --ndf 64 --load_size 286 --crop_size 256 --batch_size 1 \
  --n_epochs 100 --n_epochs_decay 100 --save_epoch_freq 20 --lr 0.0002 --beta1 0.5 \
  --optimizer tradam --tr_lambda 0.1 --tr_inner_steps 10 --seed "${SEED}" --device auto "$@"
