#!/usr/bin/env bash
# One short GPU session: test suite on CUDA, the Gatys benchmark, and a 1024 px example.
# Made for a machine with PyTorch + CUDA and no network (see benchmarks/README.md):
# impasto's pure-Python dependencies that are missing there can be put in .gpu/site.
# Results go to $OUT (default /tmp/impasto-gpu).
set -uo pipefail
OUT=${OUT:-/tmp/impasto-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu/site ] && export PYTHONPATH="$PWD/.gpu/site:$PYTHONPATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== tests (CUDA visible: device auto picks it) =="
timeout 240 python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -30 | tee "$OUT/pytest.txt"

echo "== benchmark: per-step and end to end, no compile =="
timeout 240 python3 benchmarks/bench_gatys.py --devices cuda --no-compile ${E2E:+--e2e-sizes $E2E} \
  --out "$OUT/bench.json" 2> "$OUT/bench.log" > /dev/null
tail -5 "$OUT/bench.log"

echo "== benchmark: torch.compile at 512 and 1024 =="
timeout 200 python3 benchmarks/bench_gatys.py --devices cuda --sizes 512 1024 \
  --variants compiled --e2e-sizes --out "$OUT/bench_compile.json" 2> "$OUT/bench_compile.log" > /dev/null
tail -5 "$OUT/bench_compile.log"

[ -n "${SKIP_EXAMPLE:-}" ] && exit 0
echo "== example: 1024 px, real EfficientNet-Lite0 weights =="
timeout 90 python3 -m impasto stylize src/impasto/assets/washington_monument.jpg \
  src/impasto/assets/vangogh_bedroom_in_arles.jpg -o "$OUT/lite0_1024.jpg" --size 1024 \
  --backbone efficientnet-lite0 --quiet 2>&1 | tail -2
