#!/usr/bin/env bash
# Train pix2pix on Cityscapes labels -> photos as the paper does: pix2pix's settings (unet_256,
# 256x256, batch 1, lr 0.0002, beta1 0.5, 100 epochs + 100 of linear decay) with Adam (the
# baseline) or TRAdam (lambda 0.1, S 10). GPU.
#
#   scripts/train_cityscapes.sh adam|tradam [SEED] [more train.py flags...]
#
# Needs datasets/cityscapes prepared by data/prepare_cityscapes.py (labels/ included, for FCN-score).
# Then: scripts/eval_cityscapes.sh cityscapes_<optimizer>_seed<SEED>
# The whole grid (Adam and TRAdam over 3 seeds, the report): python scripts/reproduce.py --scale cityscapes
set -euo pipefail
cd "$(dirname "$0")/.."
OPTIMIZER="${1:?usage: scripts/train_cityscapes.sh adam|tradam [SEED] [train.py flags...]}"
case "$OPTIMIZER" in
  adam) TR_FLAGS=() ;;
  tradam) TR_FLAGS=(--tr_lambda 0.1 --tr_inner_steps 10) ;;
  *) echo "error: optimizer must be adam or tradam, got '$OPTIMIZER'" >&2; exit 2 ;;
esac
SEED="${2:-0}"
shift 2 || shift $#
python train.py --dataroot ./datasets/cityscapes --name "cityscapes_${OPTIMIZER}_seed${SEED}" \
  --netG unet_256 --ngf 64 --ndf 64 --load_size 286 --crop_size 256 --batch_size 1 \
  --n_epochs 100 --n_epochs_decay 100 --save_epoch_freq 20 --lr 0.0002 --beta1 0.5 \
  --optimizer "$OPTIMIZER" "${TR_FLAGS[@]}" --seed "${SEED}" --device auto "$@"
