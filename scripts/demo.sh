#!/usr/bin/env bash
# The whole job on a fresh machine: install into .venv/, start the visdom live viewer on 127.0.0.1,
# train pix2pix with TRAdam on SynthCity, synthesize the val split with test.py, and print the
# FCN-score report.
#
#   bash scripts/demo.sh                     # VISDOM_PORT=8098 for another port
#
# Each step is one of the plain commands in the README, printed before it runs (run them yourself in
# .venv/: `. .venv/bin/activate`). A second run installs nothing and reuses the dataset and the
# segmenter; it trains the run again (a few minutes) and overwrites its results.
#
# The preset (below) is small so that it fits 15 minutes on a 2-core machine, data and the FCN-score
# segmenter included: SynthCity at 128x128 (400 train, 100 val frames); pix2pix's unet_128 at ngf/ndf
# 16 for 3 + 3 epochs (2,400 iterations at batch 1, as a cell of scripts/reproduce.py's synthcity
# scale; pix2pix's lr and beta1, TRAdam's λ 0.1 and S 10); and, trained alongside, a small stand-in
# segmenter for FCN-score (600 steps of evaluate/train_segmenter.py's recipe). Each process runs one
# torch thread, the two trainings one core each: where the 2 cores are shared with other jobs, two
# threads per process spin-wait on each other (measured: 300 iterations took 367 s at 2 threads, 28 s
# at 1).
# The numbers it prints are a smoke test of the pipeline, not the paper's experiment
# (scripts/reproduce.py, docs/reproduce.md).
#
# The viewer: if something already answers on the port, the demo uses it and leaves it alone.
# Otherwise it starts scripts/visdom_server.py and stops it at the end; on a terminal it first waits
# for Enter, so the finished run can still be looked at in the browser. The same images stay in
# checkpoints/demo_tradam/web/index.html, the losses in its loss_log.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

# --- the preset ---
NAME=demo_tradam
DATAROOT=datasets/synthcity_demo128
SEGMENTER=checkpoints/segmenters/demo_synthcity_128px
PORT="${VISDOM_PORT:-8097}"
SYNTHCITY_FLAGS=(--num_train 400 --num_val 100 --size 128)
SEGMENTER_FLAGS=(--steps 600 --threads 1)
TRAIN_FLAGS=(--optimizer tradam --netG unet_128 --ngf 16 --ndf 16 --load_size 142 --crop_size 128
             --n_epochs 3 --n_epochs_decay 3 --save_epoch_freq 3 --print_freq 50 --display_freq 200
             --num_threads 0)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
VIEWER="http://127.0.0.1:$PORT"

run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

say "live viewer: $VIEWER/env/$NAME  (once the install below is done)"
ensure_venv requirements.txt
ensure_visdom_assets
PY=.venv/bin/python

# --- the live viewer ---
server_pid="" segmenter_pid=""
cleanup() {
  [ -n "$segmenter_pid" ] && kill "$segmenter_pid" 2>/dev/null || true
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
answers() { "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$VIEWER" 2>/dev/null; }
mkdir -p checkpoints
if answers; then
  say "live viewer: $VIEWER/env/$NAME  (a server already runs there: using it, leaving it running)"
else
  "$PY" scripts/visdom_server.py --port "$PORT" >checkpoints/visdom_server.log 2>&1 &
  server_pid=$!
  for _ in $(seq 60); do answers && break; kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
  answers || { cat checkpoints/visdom_server.log >&2; die "the visdom server did not start (log above)"; }
  say "live viewer: $VIEWER/env/$NAME  (open it now: losses and images appear as the run trains)"
fi

# --- data, and the FCN-score segmenter in the background (one core) ---
if [ -f "$DATAROOT/metadata.json" ]; then
  say "dataset: $DATAROOT exists, reusing it"
else
  run "$PY" data/synthcity.py --output_dir "$DATAROOT" "${SYNTHCITY_FLAGS[@]}"
fi
if [ -f "$SEGMENTER/segmenter.json" ]; then
  say "segmenter: $SEGMENTER exists, reusing it"
else
  mkdir -p "$(dirname "$SEGMENTER")"
  printf '\n$ %s &   # in the background, log: %s\n' \
    "$PY evaluate/train_segmenter.py --dataroot $DATAROOT --output_dir $SEGMENTER ${SEGMENTER_FLAGS[*]}" \
    "$SEGMENTER.log" >&2
  "$PY" evaluate/train_segmenter.py --dataroot "$DATAROOT" --output_dir "$SEGMENTER" "${SEGMENTER_FLAGS[@]}" \
    >"$SEGMENTER.log" 2>&1 &
  segmenter_pid=$!
fi

# --- train (the other core), synthesize, score ---
run "$PY" train.py --dataroot "$DATAROOT" --name "$NAME" "${TRAIN_FLAGS[@]}" \
    --display_server http://127.0.0.1 --display_port "$PORT"
run "$PY" test.py --dataroot "$DATAROOT" --name "$NAME" --num_threads 0
if [ -n "$segmenter_pid" ]; then
  say "waiting for the segmenter ($SEGMENTER.log)"
  wait "$segmenter_pid" || { tail -n 20 "$SEGMENTER.log" >&2; die "training the segmenter failed (above; log: $SEGMENTER.log)"; }
  segmenter_pid=""
  grep "segmenter trained" "$SEGMENTER.log" >&2 || true
fi
run "$PY" evaluate/fcn_score.py --results_dir "results/$NAME/val_latest" --dataroot "$DATAROOT" \
    --segmenter "$SEGMENTER" --gt --num_workers 0

printf '\nDone. Images: results/%s/val_latest/index.html; training pages: checkpoints/%s/web/index.html\n' "$NAME" "$NAME"
if [ -n "$server_pid" ]; then
  if [ -t 0 ] && [ -t 1 ]; then
    read -r -p "The live viewer still shows the run at $VIEWER/env/$NAME; press Enter to stop it. " _ || true
  fi
  say "stopping the visdom server this demo started (python scripts/visdom_server.py starts one again)"
fi
