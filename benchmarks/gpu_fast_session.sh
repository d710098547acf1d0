#!/usr/bin/env bash
# One short GPU session for fast style transfer (issue 4), made for a machine with PyTorch +
# CUDA and no network (benchmarks/README.md). In order:
#   1. three models of the paper's network trained at once (style weights 5, 10, 20), while the
#      fast-method tests run on the CPU side with CUDA visible;
#   2. once the GPU is free: bench_fast.py (single kernels, profiler table, inference at 720p,
#      1080p and 4K, batch 1 and 4, training throughput), compiled inference at batch 1, and a
#      16-wide network at 4K;
#   3. examples from each trained model; everything packed into a few files under $OUT.
# Missing pure-Python dependencies go in .gpu/site, the training photos in .gpu/photos (or set
# PHOTOS). Results: $OUT (default /tmp/impasto-gpu-fast).
set -uo pipefail
OUT=${OUT:-/tmp/impasto-gpu-fast}
PHOTOS=${PHOTOS:-.gpu/photos}
STYLE=${STYLE:-src/impasto/assets/vangogh_bedroom_in_arles.jpg}
STEPS=${STEPS:-4000}
WEIGHTS=${WEIGHTS:-5 10 20}
TRAIN_WAIT=${TRAIN_WAIT:-240}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu BENCH_ARGS=... TRAIN_ARGS=... STEPS=4: a dry run of the script
BENCH_ARGS=${BENCH_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
DATA_NOTE="296 photos of the BSD100, Urban100, Sun-Hays80, Set14 and Set5 benchmark sets, \
re-encoded copies from jbhuang0604/SelfExSR (no licence file; distributed for research use); \
not shipped, only the weights trained on them."
WORK=/tmp/impasto-gpu-work
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 IMPASTO_OFFLINE=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu/site ] && export PYTHONPATH="$PWD/.gpu/site:$PYTHONPATH"
LOG="$OUT/session.log"
exec > >(tee -a "$LOG") 2>&1
started=$SECONDS
stamp() { echo "== [$((SECONDS - started)) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

stamp "1. training ${WEIGHTS// /, } x $STEPS steps in parallel"
pids=()
for weight in $WEIGHTS; do
  python3 -m impasto train fast --style "$STYLE" --data "$PHOTOS" -o "$WORK/model-sw$weight" \
    --steps "$STEPS" --style-weight "$weight" --backbone efficientnet-lite0 \
    --preview-every 1000 --checkpoint-every 500 --data-note "$DATA_NOTE" --quiet $TRAIN_ARGS \
    > "$WORK/train-sw$weight.log" 2>&1 &
  pids+=($!)
done
stamp "fast tests with CUDA visible (beside the training)"
# (the shipped-model test needs efficientnet-lite2's package, which does not travel: too large)
[ -z "${SKIP_TESTS:-}" ] && timeout 110 python3 -m pytest -q -p no:cacheprovider tests/test_fast.py tests/test_cli_fast.py \
  -k "not the_shipped_model" > "$WORK/pytest.log" 2>&1
echo "pytest exit $?"; tail -5 "$WORK/pytest.log"
for pid in "${pids[@]}"; do
  left=$((TRAIN_WAIT - (SECONDS - started)))
  [ "$left" -lt 1 ] && left=1
  timeout "$left" tail --pid="$pid" -f /dev/null || { echo "training $pid still running: stopped"; kill -INT "$pid"; sleep 5; }
done
wait "${pids[@]}"
for weight in $WEIGHTS; do
  echo "sw$weight:"; tail -2 "$WORK/train-sw$weight.log"
  folder="$WORK/model-sw$weight"
  if [ ! -f "$folder/model.safetensors" ] && [ -f "$folder/training/checkpoint.pt" ]; then
    python3 -c "import sys, torch; from safetensors.torch import save_file
c = torch.load(sys.argv[1], weights_only=True)
save_file(c['model'], sys.argv[2], {'step': str(c['step'])}); print('partial at step', c['step'])" \
      "$folder/training/checkpoint.pt" "$OUT/model-sw$weight-partial.safetensors"
  fi
done
stamp "training done"

stamp "2a. bench_fast: kernels, profile, inference (eager variants), training throughput"
timeout 200 python3 benchmarks/bench_fast.py --device "$DEVICE" --repeats 10 --warmup 3 \
  --variants reference fp16_channels_last_torch fp16_channels_last_group_norm fp16_contiguous \
  fast fast_var_mean fast_zero_padding --train-steps 30 --out "$WORK/bench_fast.json" $BENCH_ARGS \
  2> "$WORK/bench_fast.log" > /dev/null
echo "exit $?"; tail -3 "$WORK/bench_fast.log"
stamp "2b. compiled inference, batch 1"
timeout 150 python3 benchmarks/bench_fast.py --device "$DEVICE" --repeats 10 --warmup 3 --batches 1 \
  --variants reference fast compiled --no-training --no-kernels --no-profile \
  --out "$WORK/bench_fast_compiled.json" $BENCH_ARGS 2> "$WORK/bench_fast_compiled.log" > /dev/null
echo "exit $?"; tail -3 "$WORK/bench_fast_compiled.log"
stamp "2c. a 16-wide network at 4K"
timeout 70 python3 benchmarks/bench_fast.py --device "$DEVICE" --repeats 10 --warmup 3 --batches 1 4 \
  --resolutions 4k --channels 16 --variants reference fast compiled --no-training --no-kernels \
  --no-profile --out "$WORK/bench_fast_c16.json" $BENCH_ARGS 2> "$WORK/bench_fast_c16.log" > /dev/null
echo "exit $?"; tail -3 "$WORK/bench_fast_c16.log"

stamp "3. examples"
for weight in $WEIGHTS; do
  [ -f "$WORK/model-sw$weight/model.safetensors" ] || continue
  timeout 40 python3 -m impasto stylize --method fast --model "$WORK/model-sw$weight" \
    src/impasto/assets/washington_monument.jpg tests/data/kodim23_macaws.jpg \
    -o "$WORK/examples-sw$weight" 2>&1 | tail -2
done
(cd "$WORK" && tar czf "$OUT/results.tgz" --exclude='model-sw*/training/checkpoint.pt' \
  --exclude='model-sw*/model.safetensors' *.log *.json examples-sw* model-sw* 2>/dev/null)
for weight in $WEIGHTS; do
  [ -f "$WORK/model-sw$weight/model.safetensors" ] && cp "$WORK/model-sw$weight/model.safetensors" "$OUT/model-sw$weight.safetensors"
done
ls -la "$OUT"
stamp "end"
