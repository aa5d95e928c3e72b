#!/usr/bin/env bash
# The one command for a lent GPU machine, and its rehearsal on a CPU machine.
#
#     bash benchmarks/gpu_check.sh                 # on the GPU machine; OUT=/dir to choose the folder
#     make gpu-rehearsal                           # here: --rehearsal with a python like the lent one
#
# Writes to $OUT (the device tool's output folder) when set, else build/gpu-check/
# (build/gpu-rehearsal/ with --rehearsal):
#   gpu_check.log    the whole log, written as it goes (python unbuffered): a step killed by its
#                    timeout, or the whole call killed by the device's limit, leaves its output
#   steps.tsv        one line per finished step: step, status, seconds (also written as it goes)
#   pytest_*.xml     JUnit reports of the correctness steps
#   bench_cuda_gpu.csv, bench_triton_gpu.csv, eav_bench_cuda.csv    the benchmark tables
#
# Order, most valuable first: machine; environment; preflight (exit 2 within seconds when torch,
# Triton, pytest or a CUDA device is missing); wheel (a carried wheel, below) or build (cmake, for
# the visible GPU's arch); eav_kernels.info; the correctness of every kernel (pytest -m gpu: CUDA
# CFI kernel, Triton kernels, CUDA temporal op, then any other gpu test, each its own run); the
# three benchmarks; last the Triton ahead-of-time register check with this machine's Triton.
#
# Interpreter: $PYTHON (default python3). When it is itself a virtual environment (the lent
# machine's python3 is /opt/torch/.venv/bin/python3), it is used directly: a venv made from it with
# --system-site-packages would see the *base* interpreter's packages, without torch. Otherwise a
# venv ($GPU_ENV, default build/gpu-env) is made over the system site-packages; if torch is still
# not importable there, a .pth file adds $PYTHON's site-packages. Nothing is downloaded. Without
# pip the package is built in place (setup.py build_ext --inplace) and imported from the checkout.
#
# A carried wheel (the device tool's carry ["dist"] after `make wheel`, docs/wheels.md): the newest
# dist/eav_kernels-*-abi3-*.whl (or GPU_CHECK_WHEEL=path/to.whl) is installed into that
# interpreter's environment (pip --no-deps --no-index --force-reinstall: the lent machine's venv is
# thrown away after the lease; a reused venv, the rehearsal's, gets the source build back from the
# next run without a wheel, whose `pip install -e .` replaces it) and nothing is compiled. It is
# used only when, imported from outside the checkout, its _C loads and its CUDA archs run on the
# GPU's arch; otherwise the log says why (WHEEL NOT USED), the step fails (exit status 1) and the
# package is built from source as without a wheel. GPU_CHECK_WHEEL=never, or GPU_CHECK_BUILD set
# (pip or inplace, the build to use), builds from source. Every step after it runs from a temporary
# directory outside the checkout (tests and scripts by absolute path), so that the checkout's
# eav_kernels, which has no _C of its own, cannot shadow the installed one.
#
# Budget: GPU_CHECK_BUDGET seconds from the start (default 540, inside one 600 s device call). Each
# step gets at most its cap and what is left; with under 20 s left the remaining steps are skipped
# and say so. Exit status: 0 all steps passed, 1 a step failed or was skipped, 2 preflight failed.
#
# --rehearsal       the same on a CPU machine: CUDA kernels built for (or a carried wheel checked
#                   against) EAV_CUDA_ARCHS (default 90a, the lent H200), every GPU test collected
#                   and skipped with a reason (checked), the benchmarks only --dry-run; it stops
#                   before the first step that needs a GPU.
# --stop-after=STEP stop after machine, environment, preflight, build (the wheel or the build), info
#                   or tests.
set -uo pipefail
cd "$(dirname "$0")/.."

REHEARSAL=0
STOP_AFTER=
for arg in "$@"; do
  case $arg in
    --rehearsal) REHEARSAL=1 ;;
    --stop-after=*) STOP_AFTER=${arg#--stop-after=} ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

ROOT=$PWD
if (( REHEARSAL )); then LOG_DIR=${OUT:-build/gpu-rehearsal}; else LOG_DIR=${OUT:-build/gpu-check}; fi
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)  # absolute: the steps after the build run outside the checkout
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-run.XXXXXX")
LOG="$LOG_DIR/gpu_check.log"
STEPS="$LOG_DIR/steps.tsv"
printf 'step\tstatus\tseconds\n' > "$STEPS"
exec > >(tee "$LOG") 2>&1
TEE_PID=$!
trap 'exec 1>&- 2>&-; wait "$TEE_PID" 2>/dev/null; rm -rf "$RUN_DIR"' EXIT  # the log is complete at the end
export PYTHONUNBUFFERED=1

BUDGET=${GPU_CHECK_BUDGET:-540}
status=0
CURRENT=
STEP_START=0
STEP_STATUS=ok

end_step() {
  [[ -n $CURRENT ]] && printf '%s\t%s\t%s\n' "$CURRENT" "$STEP_STATUS" $((SECONDS - STEP_START)) >> "$STEPS"
  CURRENT=
}
step() {  # step NAME DESCRIPTION: starts a step (and ends the one before)
  end_step
  CURRENT=$1 STEP_START=$SECONDS STEP_STATUS=ok
  echo; echo "=== $1: $2 ($(date +%T), ${SECONDS}s of ${BUDGET}s)"
}
stop_after() {  # stop_after NAME: ends the run here when --stop-after=NAME
  if [[ $STOP_AFTER == "$1" ]]; then
    end_step; echo; echo "stopped after '$1' (--stop-after); status $status"; exit "$status"
  fi
}
fatal() {
  echo "FATAL: $*"; STEP_STATUS=fatal; end_step; exit 2
}
# limited CAP CMD...: CMD under `timeout min(CAP, what is left of the budget)`; skipped when less
# than 20 s is left. A failure, timeout or skip marks the step and sets status=1.
limited() {
  local cap=$1; shift
  local left=$((BUDGET - SECONDS))
  if (( left < 20 )); then
    echo "skipped: ${left}s left of the ${BUDGET}s budget: $*"; STEP_STATUS=skipped; status=1; return 1
  fi
  (( left < cap )) && cap=$left
  timeout -k 10 "$cap" "$@"
  local rc=$?
  (( rc == 0 )) && return 0
  if (( rc == 124 || rc == 137 )); then echo "TIMED OUT after ${cap}s: $*"; else echo "FAILED (exit $rc): $*"; fi
  STEP_STATUS=failed; status=1; return 1
}

step machine "host, GPUs, CUDA toolkit"
echo "$(hostname), $(nproc) CPUs, $(date -u +%FT%TZ), rehearsal: $REHEARSAL, budget ${BUDGET}s"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: no GPU listed"
{ nvcc --version | tail -2; } 2>/dev/null || echo "nvcc: not on PATH"
stop_after machine

step environment "the interpreter that has torch"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || fatal "no interpreter '$PYTHON' (set PYTHON)"
in_venv=$("$PYTHON" -c 'import sys; print(int(sys.prefix != sys.base_prefix))') || fatal "$PYTHON does not run"
if [[ -z ${GPU_ENV:-} && $in_venv == 1 ]]; then
  PY=$(command -v "$PYTHON")
  echo "$PY is a virtual environment: using it directly (a venv made from it would not see its packages)"
else
  ENV_DIR=${GPU_ENV:-build/gpu-env}
  mkdir -p "$ENV_DIR" && ENV_DIR=$(cd "$ENV_DIR" && pwd)
  if [[ ! -x $ENV_DIR/bin/python ]]; then
    "$PYTHON" -m venv --system-site-packages "$ENV_DIR" || fatal "could not create $ENV_DIR with $PYTHON"
  fi
  PY=$ENV_DIR/bin/python
  if ! "$PY" -c 'import torch' 2>/dev/null && "$PYTHON" -c 'import torch' 2>/dev/null; then
    pth="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gpu-check-parent.pth"
    "$PYTHON" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' > "$pth"
    echo "torch was not visible in $ENV_DIR: $pth adds $PYTHON's site-packages"
  fi
  echo "environment $ENV_DIR over $PYTHON (system site-packages)"
fi
[[ $PY == /* ]] || PY=$ROOT/$PY  # absolute: the steps after the build run outside the checkout
echo "interpreter: $PY"
stop_after environment

step preflight "torch, Triton, pytest, a CUDA device (exit 2 when one is missing)"
rehearsal_flag=()
(( REHEARSAL )) && rehearsal_flag=(--rehearsal)
timeout -k 10 120 "$PY" benchmarks/gpu_check_steps.py preflight "${rehearsal_flag[@]}"
rc=$?
(( rc == 0 )) || fatal "preflight exit $rc: see above"
stop_after preflight

# The GPU's arch: what the build compiles for and what a carried wheel must run on.
if [[ -z ${EAV_CUDA_ARCHS:-} ]]; then
  if (( REHEARSAL )); then
    EAV_CUDA_ARCHS=90a  # the lent machine's H200
  else
    EAV_CUDA_ARCHS=$("$PY" -c 'import torch; m, n = torch.cuda.get_device_capability(); print(f"{m}{n}" + ("a" if m == 9 else ""))') \
      || echo "could not read the GPU's capability: cmake detects the arch"
  fi
  export EAV_CUDA_ARCHS
fi

# from_outside CAP CMD...: `limited` from $RUN_DIR, outside the checkout (see the top).
from_outside() {
  cd "$RUN_DIR" || fatal "no directory $RUN_DIR"
  limited "$@"
  local rc=$?
  cd "$ROOT" || fatal "no directory $ROOT"
  return "$rc"
}

# The wheel to install instead of building (see the top), and why.
if [[ -n ${GPU_CHECK_BUILD:-} ]]; then
  WHEEL= WHEEL_WHY="GPU_CHECK_BUILD=$GPU_CHECK_BUILD asks for a source build"
elif [[ ${GPU_CHECK_WHEEL:-auto} == never ]]; then
  WHEEL= WHEEL_WHY="GPU_CHECK_WHEEL=never"
elif [[ ${GPU_CHECK_WHEEL:-auto} == auto ]]; then
  WHEEL=$("$PY" benchmarks/gpu_check_steps.py select-wheel dist)
  WHEEL_WHY=${WHEEL:+"the newest dist/eav_kernels-*-abi3-*.whl, GPU_CHECK_WHEEL=auto"}
  WHEEL_WHY=${WHEEL_WHY:-"no dist/eav_kernels-*-abi3-*.whl carried"}
else
  WHEEL=$GPU_CHECK_WHEEL WHEEL_WHY="GPU_CHECK_WHEEL=$GPU_CHECK_WHEEL"
fi
WHEEL_USED=0
if [[ -n $WHEEL ]]; then
  step wheel "eav_kernels from a carried wheel, instead of compiling here"
  echo "wheel: $WHEEL ($WHEEL_WHY), installed into $PY's environment instead of building"
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "no pip for $PY: the wheel cannot be installed"
  elif limited 120 "$PY" -m pip install --no-deps --no-index --force-reinstall "$WHEEL" \
      && from_outside 60 "$PY" "$ROOT/benchmarks/gpu_check_steps.py" installed-extension --source-root "$ROOT" \
         --serve-archs "${EAV_CUDA_ARCHS:-}"; then
    WHEEL_USED=1
  fi
  if (( ! WHEEL_USED )); then
    STEP_STATUS=failed status=1
    echo "!!! WHEEL NOT USED: $WHEEL is not usable here (above); building from source instead (exit status 1) !!!"
  fi
else
  echo "no wheel: $WHEEL_WHY; building from source"
fi

in_place() {  # the editable install's package mapping, by hand: import from the checkout
  ln -sfn ../triton_kernels eav_kernels/triton_kernels
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  echo "importing eav_kernels from the checkout (PYTHONPATH=$PWD, eav_kernels/triton_kernels -> ../triton_kernels)"
}
build_from_source() {
  step build "eav_kernels with its CUDA kernels, by cmake"
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  export EAV_BUILD_DIR=${EAV_BUILD_DIR:-build/gpu-cmake}
  echo "EAV_CUDA_ARCHS=${EAV_CUDA_ARCHS:-<cmake detects>} MAX_JOBS=$MAX_JOBS EAV_BUILD_DIR=$EAV_BUILD_DIR"
  if [[ ${GPU_CHECK_BUILD:-pip} == pip ]] && "$PY" -m pip --version >/dev/null 2>&1; then
    limited 420 "$PY" -m pip install --no-build-isolation --no-deps --no-index -e .
  elif command -v cmake >/dev/null || "$PY" -c 'import cmake' 2>/dev/null; then
    echo "no pip for $PY (or GPU_CHECK_BUILD=${GPU_CHECK_BUILD:-}): setup.py build_ext --inplace"
    in_place
    limited 420 "$PY" setup.py build_ext --inplace
  else
    echo "no pip and no cmake: torch.utils.cpp_extension (tools/build_with_torch.py)"
    in_place
    limited 420 "$PY" tools/build_with_torch.py
  fi
  if ! (cd "$RUN_DIR" && "$PY" -c 'import eav_kernels.triton_kernels' 2>/dev/null); then
    echo "eav_kernels is not importable after the build: the Triton tests can still run from the checkout"
    in_place
  fi
}
(( WHEEL_USED )) || build_from_source
stop_after build

step info "python -m eav_kernels.info (from $RUN_DIR, as every step from here on)"
from_outside 60 "$PY" -m eav_kernels.info
stop_after info

# The correctness of every kernel, each its own pytest run (a crash in one leaves the others).
pytest_step() {  # pytest_step NAME CAP ARGS...
  local name=$1 cap=$2; shift 2
  local report="$LOG_DIR/pytest_$name.xml" check=()
  (( REHEARSAL )) && check=(--expect-all-skipped)
  step "tests-$name" "pytest -m gpu $*"
  from_outside "$cap" "$PY" -m pytest -m gpu "$@" -v -rfEs -p no:cacheprovider --junitxml="$report" \
    -o faulthandler_timeout=120
  if [[ -f $report ]]; then
    "$PY" benchmarks/gpu_check_steps.py pytest-summary "$report" "${check[@]}" || { STEP_STATUS=failed; status=1; }
  else
    echo "no report $report"; STEP_STATUS=failed; status=1
  fi
}
pytest_step cuda-cfi 150 "$ROOT/tests/test_cuda_kernel.py"
pytest_step triton 180 "$ROOT/tests/test_triton_gpu.py"
pytest_step cuda-temporal 90 "$ROOT/tests/test_temporal_attention_op.py"
# Any other file with gpu tests; only those files, so that a module failing to import for an
# unrelated reason (a missing optional package) cannot stop the GPU tests from running.
mapfile -t OTHER_GPU_TESTS < <(grep -l "mark.gpu" "$ROOT"/tests/test_*.py | grep -v -x \
  -e "$ROOT/tests/test_cuda_kernel.py" -e "$ROOT/tests/test_triton_gpu.py" -e "$ROOT/tests/test_temporal_attention_op.py")
if (( ${#OTHER_GPU_TESTS[@]} )); then
  pytest_step other 60 "${OTHER_GPU_TESTS[@]}"
else
  echo; echo "(no other test file has gpu tests)"
fi
stop_after tests

if (( REHEARSAL )); then
  step benchmarks-dry-run "each benchmark's plan (imports and arguments; nothing measured)"
  from_outside 60 "$PY" "$ROOT/benchmarks/bench_cuda_gpu.py" --dry-run
  from_outside 60 "$PY" "$ROOT/benchmarks/bench_triton_gpu.py" --dry-run
  from_outside 60 "$PY" -m eav_kernels.cli bench --help > /dev/null && echo "eav bench --help: ok"
  end_step
  echo; echo "rehearsal: stopping before the benchmarks, the first steps that need a GPU"
else
  step bench-cuda "CUDA CFI kernel roofline, enhanced_sdpa vs SDPA (benchmarks/bench_cuda_gpu.py)"
  from_outside 90 "$PY" "$ROOT/benchmarks/bench_cuda_gpu.py" --csv "$LOG_DIR/bench_cuda_gpu.csv"

  step bench-triton "Latte temporal attention, fused Triton vs SDPA (benchmarks/bench_triton_gpu.py)"
  from_outside 90 "$PY" "$ROOT/benchmarks/bench_triton_gpu.py" --csv "$LOG_DIR/bench_triton_gpu.csv"

  step bench-eav "every CFI backend vs the paper's path (eav bench --device cuda --no-sdpa)"
  from_outside 100 "$PY" -m eav_kernels.cli bench --device cuda --no-sdpa --no-progress \
    --preset hunyuan-video --preset cogvideox-2b --preset wan2.1-1.3b --csv "$LOG_DIR/eav_bench_cuda.csv"

  step triton-aot "registers and stack of every Triton launch, this machine's Triton (pytest -m aot)"
  from_outside 120 "$PY" -m pytest -m "aot and not slow" "$ROOT/tests/test_triton_aot.py" -q -rfEs -p no:cacheprovider
  end_step
fi

echo; echo "=== done: status $status (${SECONDS}s); log $LOG"
column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"
exit "$status"
