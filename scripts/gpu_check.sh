#!/usr/bin/env bash
# Everything in this project that needs a CUDA GPU, in one command per stage, for a GPU machine
# (CI has none): the CUDA tests, then the GPU benchmarks whose figures the README records.
#
#   bash scripts/gpu_check.sh tests        # tests/e2e/test_cuda.py + the suites whose default device is cuda
#   bash scripts/gpu_check.sh bench        # bench/optim.py + bench/train.py (fp32; bf16 + channels_last)
#   bash scripts/gpu_check.sh compile      # bench/train.py with torch.compile (+ CUDA graphs) and bench/eval.py
#
# Logs and JSON figures go to $OUT (default results/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
stage=${1:-tests}
status=0
run() { echo "+ $*"; "$@" 2>&1 | tee -a "$OUT/$stage.log"; status=$(( status | ${PIPESTATUS[0]} )); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/$stage.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    | tee -a "$OUT/$stage.log"
case $stage in
  tests)
    run python3 -m pytest -q -p no:cacheprovider tests/e2e/test_cuda.py tests/optim/test_compiled.py
    run python3 -m pytest -q -p no:cacheprovider -n 8 tests/evaluate/test_fcn_score.py tests/evaluate/test_segmenters.py \
        tests/e2e/test_train.py tests/e2e/test_test_py.py tests/models/test_pix2pix.py tests/optim/test_contract.py \
        tests/optim/test_trajectory.py tests/evaluate/test_metrics.py ;;
  bench)
    run python3 scripts/bench/optim.py --device cuda --steps 200 --generic
    run python3 scripts/bench/train.py --device cuda --rounds 40 --warmup 5 --json "$OUT/train_fp32.json"
    run python3 scripts/bench/train.py --device cuda --rounds 40 --warmup 5 --amp --channels_last \
        --variants "plain adam,ours adam,ours tradam" --json "$OUT/train_amp_cl.json" ;;
  compile)
    run python3 scripts/bench/train.py --device cuda --rounds 40 --warmup 5 --amp --channels_last --compile \
        --variants "plain adam,ours adam,ours tradam" --json "$OUT/train_amp_cl_compile.json"
    run python3 scripts/bench/train.py --device cuda --rounds 40 --warmup 5 --amp --channels_last --compile \
        --compile_mode reduce-overhead --variants "plain adam,ours adam,ours tradam" \
        --json "$OUT/train_amp_cl_cudagraphs.json"
    run python3 scripts/bench/eval.py --device cuda --repeats 3 --frames 200 ;;   # 16 frames: worker start-up dominates
  *) echo "unknown stage $stage (tests | bench | compile)"; exit 2 ;;
esac
exit $status
