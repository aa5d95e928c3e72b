#!/usr/bin/env bash
# One command for a GPU machine (issue #4): build the extension with its CUDA kernels for the
# visible GPU, run the CUDA and Triton tests (pytest -m gpu), print `eav_kernels.info`, and run the
# benchmark table (benchmarks/bench_cuda_gpu.py, CSV). Everything goes to a log: $OUT/gpu_check.log
# when $OUT is set (the device tool's output folder), else build/gpu-check/gpu_check.log.
#
# Assumes what such a machine has: python with torch (CUDA build), triton, pytest, nvcc, ninja; no
# internet, no diffusers. Uses its own environment (build/gpu-env, a venv that sees the system
# site-packages, so the system torch is the one built against), installs nothing from an index.
# Budget: fits one 10-minute device call (build ~3 min with all cores, tests ~2 min, bench ~2 min).
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
step() { echo; echo "=== $* ($(date +%T))"; }

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
  timeout 420 "$PY" -m pip install --no-build-isolation --no-deps --no-index -e . || status=1
else
  echo "no cmake here: building with torch.utils.cpp_extension instead (tools/build_with_torch.py)"
  timeout 420 "$PY" tools/build_with_torch.py || status=1
fi

step "eav_kernels.info"
"$PY" -m eav_kernels.info || status=1

step "GPU tests: pytest -m gpu (CUDA and Triton)"
timeout 240 "$PY" -m pytest -m gpu tests -q -rs -p no:cacheprovider || status=1

step "benchmark table"
timeout 150 "$PY" benchmarks/bench_cuda_gpu.py --csv "$LOG_DIR/bench_cuda_gpu.csv" || status=1

step "done: status $status; log $LOG"
exit $status
