#!/usr/bin/env bash
# Compile check of the CUDA sources without a GPU and without a CUDA build of torch (the sources
# are those of csrc/build_manifest.txt):
#  1. every cuda_kernel (.cu) with nvcc into one object per file carrying sm_80 and sm_90a cubins,
#     listed with `cuobjdump --list-elf`; fails when an expected cubin is missing;
#  2. every cuda_host source (torch-facing launchers) syntax-only against the installed torch's
#     stable-ABI headers (a CPU torch wheel ships them; -DUSE_CUDA declares the CUDA stream API,
#     the CUDA runtime headers come from the toolkit), with the manifest's TORCH_TARGET_VERSION;
#     linking needs libtorch_cuda (a CUDA torch), not done here.
# Both run in parallel. Results are cached in build/cuda-check by a hash of the inputs, so a
# second run (e.g. from the test suite after `make cuda-check`) only re-lists the cubins.
#
# Environment: NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc), PYTHON (the
# interpreter whose torch headers are used; default .venv/bin/python, else python3),
# CUDA_CHECK_ARCHS (default "80 90a"), CUDA_CHECK_DIR (default build/cuda-check).
set -euo pipefail
cd "$(dirname "$0")/.."

NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[[ -x "$NVCC" ]] || { echo "cuda-check: nvcc not found (set NVCC)" >&2; exit 2; }
# /usr/local/bin/nvcc may be a wrapper script: ask nvcc itself where its toolkit is.
NVCC_TOP=$("$NVCC" --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
[[ -n "$NVCC_TOP" ]] && NVCC_TOP=$(cd "$NVCC_TOP" && pwd)
CUDA_HOME=${CUDA_HOME:-${NVCC_TOP:-$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)}}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# cuobjdump: $CUOBJDUMP, the toolkit's, PATH, the nvidia-cuda-cuobjdump package of $PYTHON, else
# the copy Triton bundles (a toolkit installed without its binary utilities, as here, has nvcc but
# no cuobjdump; an older Triton's copy names sm_90a cubins sm_90, which fails the check).
if [[ -z "${CUOBJDUMP:-}" ]]; then
  for candidate in "$CUDA_HOME/bin/cuobjdump" "$(command -v cuobjdump || true)" \
      "$("$PYTHON" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13/bin/cuobjdump"))' 2>/dev/null || true)" \
      "$("$PYTHON" -c 'import os, triton; print(os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump"))' 2>/dev/null || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then CUOBJDUMP=$candidate; break; fi
  done
fi
[[ -n "${CUOBJDUMP:-}" ]] || { echo "cuda-check: cuobjdump not found (set CUOBJDUMP, or pip install triton or nvidia-cuda-cuobjdump)" >&2; exit 2; }
ARCHS=${CUDA_CHECK_ARCHS:-80 90a}
OUT=${CUDA_CHECK_DIR:-build/cuda-check}
mkdir -p "$OUT"

mapfile -t CU_SOURCES < <(python3 tools/build_manifest.py sources cuda_kernel)
mapfile -t LAUNCHERS < <(python3 tools/build_manifest.py sources cuda_host)
TORCH_TARGET_HEX=$(python3 tools/build_manifest.py torch_target_hex)
[[ ${#CU_SOURCES[@]} -gt 0 ]] || { echo "cuda-check: no cuda_kernel in csrc/build_manifest.txt" >&2; exit 1; }

GENCODE=()
for arch in $ARCHS; do GENCODE+=("-gencode=arch=compute_${arch},code=sm_${arch}"); done
NVCC_FLAGS=(-std=c++17 -O3 -lineinfo -Xptxas=-warn-spills "${GENCODE[@]}")

TORCH_INCLUDE=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true)

# The cache key: compiler versions, flags and every header/source under csrc.
key=$({ "$NVCC" --version; echo "${NVCC_FLAGS[*]}" "$TORCH_INCLUDE";
        find csrc -type f \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name '*.cpp' -o -name '*.txt' \) \
          -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)

pids=()
names=()
if [[ "$(cat "$OUT/key" 2>/dev/null)" != "$key" ]]; then
  rm -f "$OUT"/*.o "$OUT"/*.log "$OUT/key"
  echo "cuda-check: $NVCC ($("$NVCC" --version | grep -o 'release [0-9.]*')), archs: $ARCHS"
  for source in "${CU_SOURCES[@]}"; do
    object="$OUT/$(basename "${source%.cu}").o"
    "$NVCC" "${NVCC_FLAGS[@]}" -c "$source" -o "$object" >"$object.log" 2>&1 &
    pids+=($!); names+=("nvcc $source")
  done
  if [[ -n "$TORCH_INCLUDE" ]]; then
    includes=()
    for dir in $TORCH_INCLUDE "$CUDA_HOME/include"; do includes+=(-I"$dir"); done
    for source in "${LAUNCHERS[@]}"; do
      ${CXX:-g++} -std=c++17 -fsyntax-only -Wall -DUSE_CUDA \
        -DTORCH_TARGET_VERSION="$TORCH_TARGET_HEX" "${includes[@]}" \
        "$source" >"$OUT/$(basename "$source").log" 2>&1 &
      pids+=($!); names+=("c++ -fsyntax-only $source")
    done
  else
    echo "cuda-check: no torch for $PYTHON: launcher syntax check skipped"
  fi
  failed=0
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then echo "  ok      ${names[$i]}"; else echo "  FAILED  ${names[$i]}"; failed=1; fi
  done
  if [[ $failed -ne 0 ]]; then
    for log in "$OUT"/*.log; do [[ -s "$log" ]] && { echo "--- $log"; cat "$log"; }; done
    exit 1
  fi
  grep -h "spill" "$OUT"/*.o.log 2>/dev/null | grep -v " 0 bytes spill" || true
  echo "$key" >"$OUT/key"
else
  echo "cuda-check: sources unchanged since the last check ($OUT/key = $key); re-listing cubins"
fi

status=0
for source in "${CU_SOURCES[@]}"; do
  object="$OUT/$(basename "${source%.cu}").o"
  echo "cuobjdump --list-elf $object:"
  listing=$("$CUOBJDUMP" --list-elf "$object")
  echo "$listing" | sed 's/^/  /'
  for arch in $ARCHS; do
    if ! grep -q "sm_${arch}\b" <<<"$listing"; then
      echo "cuda-check: $object has no sm_${arch} cubin" >&2
      status=1
    fi
  done
done
[[ $status -eq 0 ]] && echo "cuda-check: OK (${#CU_SOURCES[@]} .cu file(s), cubins for: $ARCHS; ${#LAUNCHERS[@]} launcher(s))"
exit $status
