#!/usr/bin/env bash
# Lists the cubins inside a wheel's extension (cuobjdump --list-elf) and fails unless every
# requested architecture is there. Usage: tools/verify_wheel.sh dist/eav_kernels-*.whl "80;90a"
set -euo pipefail
wheel=$1
archs=${2:-80;90a}
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || true)}
for candidate in /usr/local/cuda/bin/cuobjdump .venv/lib/python3*/site-packages/triton/backends/nvidia/bin/cuobjdump; do
  [[ -z "$CUOBJDUMP" && -x $candidate ]] && CUOBJDUMP=$candidate
done
[[ -n "$CUOBJDUMP" ]] || { echo "verify-wheel: cuobjdump not found (set CUOBJDUMP)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m zipfile -e "$wheel" "$tmp"
so=$(find "$tmp" -name '_C*.so' | head -1)
[[ -n "$so" ]] || { echo "verify-wheel: no _C*.so in $wheel" >&2; exit 1; }
echo "$(basename "$wheel"): $(du -h "$wheel" | cut -f1); $(basename "$so"): $(du -h "$so" | cut -f1)"
listing=$("$CUOBJDUMP" --list-elf "$so")
echo "cuobjdump --list-elf $(basename "$so"):"
echo "$listing" | sed 's/^/  /'
status=0
for arch in ${archs//;/ }; do
  arch=${arch%+PTX}
  grep -q "sm_${arch}\b" <<<"$listing" || { echo "verify-wheel: no sm_${arch} cubin" >&2; status=1; }
done
[[ $status -eq 0 ]] && echo "verify-wheel: OK, cubins for ${archs}"
exit $status
