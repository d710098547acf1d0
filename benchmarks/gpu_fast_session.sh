#!/usr/bin/env bash
# One short GPU session for fast style transfer (issue 4), made for a machine with PyTorch +
# CUDA and no network (benchmarks/README.md). In order:
#   1. a model trained for at most TRAIN_SECONDS (GPU to itself): if time runs out the run is
#      stopped (SIGTERM: a checkpoint) and finished with --resume --steps <step reached>, so
#      the model folder is complete and its metadata says how many steps it had;
#   2. examples from it through the CLI on the GPU;
#   3. bench_fast.py: single kernels, inference at 1080p and 4K (eager and compiled, with and
#      without the 8-channel RGB convolutions), a 16-wide network at 4K, training throughput.
# Missing pure-Python dependencies go in .gpu/site, the training photos in .gpu/photos (or set
# PHOTOS). Results: $OUT (default /tmp/impasto-gpu-fast): session.log, model.tgz, results.tgz.
# Dry run on a CPU: DEVICE=cpu STEPS=4 TRAIN_ARGS="--size 64 --device cpu" BENCH_ARGS="..."
set -uo pipefail
OUT=${OUT:-/tmp/impasto-gpu-fast}
PHOTOS=${PHOTOS:-.gpu/photos}
STYLE=${STYLE:-src/impasto/assets/vangogh_bedroom_in_arles.jpg}
STEPS=${STEPS:-4000}
CHANNELS=${CHANNELS:-16}
STYLE_WEIGHT=${STYLE_WEIGHT:-10}
TRAIN_SECONDS=${TRAIN_SECONDS:-150}
DEVICE=${DEVICE:-cuda}
BENCH_ARGS=${BENCH_ARGS:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
DATA_NOTE="296 photos of the BSD100, Urban100, Sun-Hays80, Set14 and Set5 benchmark sets, \
re-encoded copies from jbhuang0604/SelfExSR (no licence file; distributed for research use); \
not shipped, only the weights trained on them."
WORK=/tmp/impasto-gpu-work
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK"
source benchmarks/gpu_session_start.sh

MODEL="$WORK/model"
train() {  # always run in a subshell (& or |): exec makes $! python's own pid
  exec python3 -m impasto train fast --style "$STYLE" --data "$PHOTOS" -o "$MODEL" \
    --channels "$CHANNELS" --style-weight "$STYLE_WEIGHT" --backbone efficientnet-lite0 \
    --preview-every 500 --checkpoint-every 250 --data-note "$DATA_NOTE" --quiet $TRAIN_ARGS "$@"
}
stamp "1. training: width $CHANNELS, style weight $STYLE_WEIGHT, up to $STEPS steps or $TRAIN_SECONDS s"
train --steps "$STEPS" > "$WORK/train.log" 2>&1 &
pid=$!
timeout "$TRAIN_SECONDS" tail --pid="$pid" -f /dev/null || { kill -TERM "$pid"; echo "time is up: stopped"; }
wait "$pid"
cat "$WORK/train.log"
if [ ! -f "$MODEL/model.safetensors" ] && [ -f "$MODEL/training/checkpoint.pt" ]; then
  reached=$(python3 -c "import sys, torch
print(int(torch.load(sys.argv[1], weights_only=True)['step']))" "$MODEL/training/checkpoint.pt")
  stamp "finishing at step $reached"
  train --steps "$reached" --resume 2>&1 | tail -2
fi
stamp "training done"

stamp "2. examples through the CLI"
timeout 60 python3 -m impasto stylize --method fast --model "$MODEL" \
  src/impasto/assets/washington_monument.jpg tests/data/kodim23_macaws.jpg \
  -o "$WORK/examples" 2>&1 | tail -2

(cd "$WORK" && tar czf "$OUT/model.tgz" --exclude='model/training/checkpoint.pt' train.log \
  examples model 2>/dev/null)

stamp "3a. bench: kernels, 1080p and 4K batch 1, training throughput (paper width)"
timeout 120 python3 benchmarks/bench_fast.py --device "$DEVICE" --repeats 10 --warmup 3 \
  --resolutions 1080p 4k --batches 1 --kernels --no-profile --train-steps 30 \
  --variants reference fast fast_aligned compiled compiled_unaligned \
  --out "$WORK/bench_fast.json" $BENCH_ARGS 2> "$WORK/bench_fast.log" > /dev/null
echo "exit $?"; tail -2 "$WORK/bench_fast.log"
stamp "3b. bench: width 16 at 4K, training throughput"
timeout 80 python3 benchmarks/bench_fast.py --device "$DEVICE" --repeats 10 --warmup 3 \
  --resolutions 4k --batches 1 4 --channels 16 --no-kernels --no-profile --train-steps 30 \
  --variants reference fast compiled \
  --out "$WORK/bench_fast_c16.json" $BENCH_ARGS 2> "$WORK/bench_fast_c16.log" > /dev/null
echo "exit $?"; tail -2 "$WORK/bench_fast_c16.log"

(cd "$WORK" && tar czf "$OUT/results.tgz" bench*.log bench*.json 2>/dev/null)
ls -la "$OUT"
stamp "end"
