#!/usr/bin/env bash
# One command for a GPU machine: build the extension with its CUDA kernels for the
# visible GPU, run the CUDA and Triton tests (pytest -m gpu), print `eav_kernels.info`, and run the
# benchmark tables, each writing a CSV:
#   bench_cuda_gpu.csv    benchmarks/bench_cuda_gpu.py: CUDA CFI kernel's HBM roofline, enhanced_sdpa vs SDPA
#   bench_triton_gpu.csv  benchmarks/bench_triton_gpu.py: Latte temporal sweep, fused Triton vs SDPA (+ CFI)
#   eav_bench_cuda.csv    eav bench --device cuda --no-sdpa: every CFI backend vs the paper's path
# Everything goes to $OUT (the device tool's output folder: the log and 3 CSVs) when set, else
# build/gpu-check/.
#
# Assumes what such a machine has: python with torch (CUDA build), triton, pytest, tqdm, nvcc,
# ninja; no internet, no diffusers (nothing here imports it). Uses its own environment
# (build/gpu-env, a venv that sees the system site-packages, so the system torch is the one built
# against), installs nothing from an index.
# Budget: fits one 10-minute device call. Steps share a deadline (GPU_CHECK_BUDGET seconds from the
# start, default 570): each gets at most its own cap and what is left, and once less than 20 s is
# left the remaining steps are skipped and say so (build ~3 min with all cores, tests ~2 min, benchmarks
# ~1 min each).
#
#     bash benchmarks/gpu_check.sh            # or: OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR=${OUT:-build/gpu-check}
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_check.log"
exec > >(tee "$LOG") 2>&1
PYTHON=${PYTHON:-python3}
ENV_DIR=${GPU_ENV:-build/gpu-env}
status=0
step() { echo; echo "=== $* ($(date +%T), ${SECONDS}s)"; }
BUDGET=${GPU_CHECK_BUDGET:-570}
# limited CAP CMD...: runs CMD under `timeout min(CAP, what is left of the budget)`; skips it when
# less than 20 s of the budget is left. A failure or a skip sets status=1.
limited() {
  local cap=$1; shift
  local left=$((BUDGET - SECONDS))
  if (( left < 20 )); then
    echo "skipped: ${left}s left of the ${BUDGET}s budget: $*"
    status=1
    return
  fi
  (( left < cap )) && cap=$left
  timeout "$cap" "$@" || { echo "failed or timed out (limit ${cap}s): $*"; status=1; }
}

step "machine"
nvidia-smi -L || true
"$PYTHON" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
nvcc --version | tail -2 || true

step "environment $ENV_DIR (system site-packages: the system torch)"
[[ -x "$ENV_DIR/bin/python" ]] || "$PYTHON" -m venv --system-site-packages "$ENV_DIR"
PY="$ENV_DIR/bin/python"

step "build (pip install --no-build-isolation -e ., CUDA arch of the visible GPU)"
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export EAV_BUILD_DIR=${EAV_BUILD_DIR:-build/gpu-cmake}
if [[ -z "${EAV_CUDA_ARCHS:-}" ]]; then
  cap=$("$PY" -c 'import torch; m, n = torch.cuda.get_device_capability(); print(f"{m}{n}" + ("a" if m == 9 else ""))' 2>/dev/null || true)
  [[ -n "$cap" ]] && export EAV_CUDA_ARCHS=$cap
fi
echo "EAV_CUDA_ARCHS=${EAV_CUDA_ARCHS:-<cmake detects>} MAX_JOBS=$MAX_JOBS"
if command -v cmake >/dev/null || "$PY" -c 'import cmake' 2>/dev/null; then
  limited 420 "$PY" -m pip install --no-build-isolation --no-deps --no-index -e .
else
  echo "no cmake here: building with torch.utils.cpp_extension instead (tools/build_with_torch.py)"
  limited 420 "$PY" tools/build_with_torch.py
fi

step "eav_kernels.info"
"$PY" -m eav_kernels.info || status=1

step "GPU tests: pytest -m gpu (CUDA and Triton)"
limited 240 "$PY" -m pytest -m gpu tests -q -rs -p no:cacheprovider

step "benchmark: CUDA CFI kernel roofline, enhanced_sdpa vs SDPA (benchmarks/bench_cuda_gpu.py)"
limited 90 "$PY" benchmarks/bench_cuda_gpu.py --csv "$LOG_DIR/bench_cuda_gpu.csv"

step "benchmark: Latte temporal attention, fused Triton vs SDPA (benchmarks/bench_triton_gpu.py)"
limited 90 "$PY" benchmarks/bench_triton_gpu.py --csv "$LOG_DIR/bench_triton_gpu.csv"

step "benchmark: every CFI backend vs the paper's path (eav bench --device cuda --no-sdpa)"
limited 120 "$PY" -m eav_kernels.cli bench --device cuda --no-sdpa --no-progress \
  --preset hunyuan-video --preset cogvideox-2b --preset wan2.1-1.3b --csv "$LOG_DIR/eav_bench_cuda.csv"

step "done: status $status; log $LOG"
exit $status
