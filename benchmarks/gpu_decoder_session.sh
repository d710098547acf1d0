#!/usr/bin/env bash
# One short GPU session for the arbitrary-style methods (issue 12), for a machine with PyTorch
# + CUDA and no network (benchmarks/README.md). In order:
#   1. bench_arbitrary.py on CUDA: AdaIN and WCT at 512 and 1024 (reference fp32 NCHW eager,
#      impasto's fp16 channels_last, AdaIN compiled): the 1024x1024 AdaIN target is 2 ms;
#   2. AdaIN decoders trained for at most TRAIN_SECONDS each, one per style weight in
#      STYLE_WEIGHTS (the shipped CPU decoder: 10, 1958 steps at 192 px), at 256 px: a run
#      out of time is stopped (SIGTERM: a checkpoint) and finished with --resume --steps
#      <step reached>, so every folder is complete;
#   3. a WCT decoder set trained the same way;
#   4. each new decoder scored beside the original AdaIN's published outputs, when REFERENCE
#      (a copy of xunhuang1995/AdaIN-style's examples/ folder) is there.
# Training photos in .gpu/photos and styles in .gpu/styles (or set PHOTOS, STYLES); missing
# pure-Python dependencies in .gpu/site. Results: $OUT (default /tmp/impasto-gpu-decoders):
# session.log, decoders.tgz, results.tgz.
set -uo pipefail
OUT=${OUT:-/tmp/impasto-gpu-decoders}
PHOTOS=${PHOTOS:-.gpu/photos}
STYLES=${STYLES:-.gpu/styles}
REFERENCE=${REFERENCE:-.gpu/adain-examples}
STYLE_WEIGHTS=${STYLE_WEIGHTS:-"10 30"}
STEPS=${STEPS:-20000}
TRAIN_SECONDS=${TRAIN_SECONDS:-150}
WORK=/tmp/impasto-gpu-work
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK"
source benchmarks/gpu_session_start.sh

stamp "1. bench_arbitrary on CUDA"
timeout 150 python3 benchmarks/bench_arbitrary.py --devices cuda --sizes 512 1024 \
  --out "$WORK/bench_arbitrary.json" 2> "$WORK/bench_arbitrary.log" > /dev/null
echo "exit $?"; tail -3 "$WORK/bench_arbitrary.log"

train() {  # train FOLDER [flags]: in a subshell, exec makes $! python's own pid
  local folder=$1; shift
  exec python3 -m impasto train decoder --data "$PHOTOS" -o "$folder" --size 256 --batch 8 \
    --preview-every 1000 --checkpoint-every 250 --quiet "$@"
}
timed_training() {  # timed_training FOLDER [flags]
  local folder=$1; shift
  (train "$folder" --steps "$STEPS" "$@") > "$folder.log" 2>&1 &
  local pid=$!
  timeout "$TRAIN_SECONDS" tail --pid="$pid" -f /dev/null || { kill -TERM "$pid"; echo "time is up"; }
  wait "$pid"
  tail -2 "$folder.log"
  if [ ! -f "$folder/model.safetensors" ] && [ -f "$folder/training/checkpoint.pt" ]; then
    local reached
    reached=$(python3 -c "import sys, torch
print(int(torch.load(sys.argv[1], weights_only=True)['step']))" "$folder/training/checkpoint.pt")
    stamp "finishing $folder at step $reached"
    (train "$folder" --steps "$reached" --resume "$@") 2>&1 | tail -1
  fi
}
for weight in $STYLE_WEIGHTS; do
  stamp "2. AdaIN decoder, style weight $weight"
  timed_training "$WORK/adain-w$weight" --method adain --styles "$STYLES" --style-weight "$weight"
done
stamp "3. WCT decoders"
timed_training "$WORK/wct" --method wct

if [ -d "$REFERENCE" ]; then
  for weight in $STYLE_WEIGHTS; do
    stamp "4. scores beside the original AdaIN, style weight $weight"
    timeout 120 python3 benchmarks/score_adain_reference.py --examples "$REFERENCE" \
      --decoder "adain=$WORK/adain-w$weight" --decoder "wct=$WORK/wct" \
      > "$WORK/reference-w$weight.json" 2> "$WORK/reference-w$weight.log"
    tail -5 "$WORK/reference-w$weight.log"
  done
fi
(cd "$WORK" && tar czf "$OUT/decoders.tgz" --exclude='*/training/checkpoint.pt' adain-* wct \
  *.log 2>/dev/null)
(cd "$WORK" && tar czf "$OUT/results.tgz" *.json *.log 2>/dev/null)
ls -la "$OUT"
stamp "end"
