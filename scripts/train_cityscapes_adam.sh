#!/usr/bin/env bash
# Train pix2pix on Cityscapes labels -> photos with Adam: the paper's baseline, pix2pix's settings
# (unet_256, 256x256, batch 1, lr 0.0002, beta1 0.5, 100 epochs + 100 of linear decay). GPU.
#
#   scripts/train_cityscapes_adam.sh [SEED] [more train.py flags...]
#
# Needs datasets/cityscapes prepared by data/prepare_cityscapes.py (labels/ included, for FCN-score).
# Then: scripts/eval_cityscapes.sh cityscapes_adam_seed0
# The whole grid (Adam and TRAdam over 3 seeds, the report): python scripts/reproduce.py --scale cityscapes
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${1:-0}"
shift || true
python train.py --dataroot ./datasets/cityscapes --name "cityscapes_adam_seed${SEED}" \
  --netG unet_256 --ngf 64 --ndf 64 --load_size 286 --crop_size 256 --batch_size 1 \
  --n_epochs 100 --n_epochs_decay 100 --save_epoch_freq 20 --lr 0.0002 --beta1 0.5 \
  --optimizer adam --seed "${SEED}" --device auto "$@"
