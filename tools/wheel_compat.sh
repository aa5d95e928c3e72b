#!/usr/bin/env bash
# The check to run before submitting a wheel: installs it into a separate environment with
# another torch than the one it was built against (default torch 2.11.0, the CUDA build from the
# configured index; it runs on CPU here) and runs the CPU test suite there, from the installed
# wheel (not the source tree). Usage: tools/wheel_compat.sh dist/eav_kernels-...whl
# Environment: COMPAT_ENV (default build/compat-env), COMPAT_TORCH_VERSION (default 2.11.0),
# PYTHON (creates the venv; default python3), PYTEST_ARGS (default: -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=$(realpath "$1")
ENV=${COMPAT_ENV:-build/compat-env}
TORCH_VERSION=${COMPAT_TORCH_VERSION:-2.11.0}
PYTHON=${PYTHON:-python3}

[[ -x "$ENV/bin/python" ]] || "$PYTHON" -m venv "$ENV"
# The CUDA build of torch: a find-links directory may offer +cpu of the same version, which pip
# would prefer. The constraint keeps that torch while the wheel's test extras are resolved.
constraint="$ENV/torch-constraint.txt"
echo "torch==$TORCH_VERSION,!=$TORCH_VERSION+cpu" >"$constraint"
# numpy older than 2.4 as well: the Triton that torch 2.11 pins (3.6) converts one-element arrays
# with int() in its interpreter, which numpy 2.4 refuses (the interpreter tests would fail there).
echo "numpy<2.4" >>"$constraint"
"$ENV/bin/python" -m pip install --quiet -c "$constraint" "torch==$TORCH_VERSION" numpy
"$ENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel"
"$ENV/bin/python" -m pip install --quiet -c "$constraint" "$wheel[test]"
# tests/test_cuda_compile.py lists cubins: a cuobjdump that knows sm_90a (Triton's may not).
"$ENV/bin/python" -m pip install --quiet "nvidia-cuda-cuobjdump>=13,<14"

# From outside the source tree, so that the installed package is the one imported.
(cd "$ENV" && bin/python - <<'PY')
import torch, eav_kernels
from eav_kernels._extension import compiled_extension, extension_import_error
extension = compiled_extension()
assert "site-packages" in eav_kernels.__file__, eav_kernels.__file__
assert extension is not None, extension_import_error()
print(f"wheel-compat: torch {torch.__version__} (CUDA {torch.version.cuda}) loads {extension.__file__}"
      f" (CUDA archs: {extension.cuda_archs() or 'none'})")
PY
# From $ENV, with bin/pytest (not `python -m pytest`): the tests and the interpreters they start
# must not find the source tree's eav_kernels on sys.path before the installed one.
root=$(pwd)
cd "$ENV" && bin/pytest "$root/tests" -p no:cacheprovider -q ${PYTEST_ARGS:--m "not slow"}
