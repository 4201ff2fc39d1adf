#!/usr/bin/env bash
# GPU check for the lent machine (see ../shared/device-wheels/README.md), under 5 minutes:
#   1. the quickstart study on CUDA with the NVML meter (trials cut to 8);
#   2. NVML total-energy counter versus polled power on the same window;
#   3. the overhead ratio on GPU;
#   4. (when present) the technique ablation on GPU;
#   5. econas train of the GPU quickstart's most accurate trial (2 epochs on 20,000 images):
#      projection, NVML-metered full-budget training and its projection error.
# Usage on the device (from the repository root, with .whl carried):
#   bash benchmarks/gpu_check.sh            # results under ${OUT:-/tmp/gpu_check}
set -uo pipefail
OUT_DIR="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
if [ -d .whl ] && ! "$PY" -c "import optuna" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}"
nvidia-smi --query-gpu=name,power.draw,power.limit --format=csv > "$OUT_DIR/nvidia-smi.csv" 2>&1

echo "== 1. quickstart on CUDA with NVML" >&2
(cd "$OUT_DIR" && timeout 150 "$PY" -m nas.cli search "$OLDPWD/studies/quickstart.toml" \
  --device cuda --meter nvml --trials 8 --study-name gpu_quickstart --json \
  > quickstart_front.json 2> quickstart.log; echo "rc=$?" >> quickstart.log)

echo "== 2. NVML counter vs polled power" >&2
timeout 60 "$PY" - > "$OUT_DIR/nvml_counter_vs_poll.json" 2> "$OUT_DIR/nvml_counter_vs_poll.log" <<'EOF'
import json, time
import torch
from nas.energy import NvmlMeter

x = torch.randn(4096, 4096, device="cuda")
counter = NvmlMeter(device="cuda:0")
real = NvmlMeter._counter_supported
NvmlMeter._counter_supported = lambda self: False  # force the polled-power path
polled = NvmlMeter(device="cuda:0")
NvmlMeter._counter_supported = real
assert counter.method == "counter" and polled.method == "polling", (counter.method, polled.method)
counter.begin_window("w"); polled.begin_window("w")
t0 = time.perf_counter()
while time.perf_counter() - t0 < 10:
    y = x @ x
torch.cuda.synchronize()
a = counter.end_window("w"); b = polled.end_window("w")
print(json.dumps({
    "duration_s": a.duration_s,
    "counter_energy_j": a.total_energy_j,
    "polled_energy_j": b.total_energy_j,
    "polled_over_counter": b.total_energy_j / a.total_energy_j,
    "counter_kind": a.kind, "polled_details": {k: str(v) for k, v in b.details.items()},
}, indent=2))
EOF

echo "== 3. overhead on GPU" >&2
timeout 90 "$PY" benchmarks/overhead.py --device cuda --rounds 5 --out "$OUT_DIR/overhead_gpu.json" \
  > "$OUT_DIR/overhead_gpu.stdout" 2> "$OUT_DIR/overhead_gpu.log"

if [ -f benchmarks/techniques.py ]; then
  echo "== 4. technique ablation on GPU" >&2
  timeout 150 "$PY" benchmarks/techniques.py --gpu --repeats 2 --out "$OUT_DIR/techniques_gpu.json" \
    > "$OUT_DIR/techniques_gpu.stdout" 2> "$OUT_DIR/techniques_gpu.log"
fi
echo "== 5. econas train on GPU" >&2
(cd "$OUT_DIR" && timeout 120 "$PY" -m nas.cli train --storage sqlite:///runs/gpu_quickstart/study.db \
  --study gpu_quickstart --top 1 --epochs 2 --train-size 20000 --device cuda --meter nvml --json \
  > train_gpu.json 2> train_gpu.log; echo "rc=$?" >> train_gpu.log)
ls -la "$OUT_DIR" >&2
