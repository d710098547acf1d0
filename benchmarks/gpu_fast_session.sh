#!/usr/bin/env bash
# One short GPU session for fast style transfer (issue 4): the fast tests on CUDA, the inference
# and training benchmark, and the training of a model to ship. Made for a machine with PyTorch +
# CUDA and no network (see benchmarks/README.md); missing pure-Python dependencies can be put
# in .gpu/site. The training photos must travel with the tree (shared/data/train/photos, or
# set PHOTOS). Results go to $OUT (default /tmp/impasto-gpu-fast).
set -uo pipefail
OUT=${OUT:-/tmp/impasto-gpu-fast}
PHOTOS=${PHOTOS:-shared/data/train/photos}
STYLE=${STYLE:-src/impasto/assets/vangogh_bedroom_in_arles.jpg}
STEPS=${STEPS:-4000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu/site ] && export PYTHONPATH="$PWD/.gpu/site:$PYTHONPATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

echo "== fast tests with CUDA visible =="
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_fast.py tests/test_cli_fast.py \
  2>&1 | tail -15 | tee "$OUT/pytest.txt"

echo "== inference benchmark: 720p, 1080p, 4K, batch 1 and 4; training throughput =="
timeout 240 python3 benchmarks/bench_fast.py --device cuda --repeats 10 --warmup 3 \
  --out "$OUT/bench_fast.json" 2> "$OUT/bench_fast.log" > /dev/null
tail -8 "$OUT/bench_fast.log"

[ -n "${SKIP_TRAINING:-}" ] && exit 0
echo "== train a model to ship: $STEPS steps at 256 px =="
timeout 420 python3 -m impasto train fast --style "$STYLE" --data "$PHOTOS" \
  -o "$OUT/model" --steps "$STEPS" --quiet 2>&1 | tail -4
timeout 60 python3 -m impasto stylize --method fast --model "$OUT/model" \
  src/impasto/assets/washington_monument.jpg tests/data/kodim23_macaws.jpg -o "$OUT/examples" \
  2>&1 | tail -2
timeout 60 python3 benchmarks/bench_fast.py --device cuda --model "$OUT/model" \
  --resolutions 4k --batches 1 --variants reference fast compiled --no-training \
  --out "$OUT/bench_model_4k.json" 2> /dev/null > /dev/null
ls -la "$OUT" "$OUT/model"
