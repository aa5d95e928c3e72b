#!/usr/bin/env bash
# The environment the real-ComfyUI tests run in (tests/test_comfyui_real.py): its own venv
# (default build/comfyui-env, never .venv) with what a ComfyUI checkout needs to import and sample
# on CPU, as docs/testing.md says, and eav-kernels installed into it (not editable, built
# against this torch without build isolation, CPU op only, its own CMake directory).
#
# ComfyUI itself is not on PyPI: this script does not fetch it. Point EAV_COMFYUI_PATH at a
# checkout when running the tests (`make test-comfyui EAV_COMFYUI_PATH=/path/to/ComfyUI`).
#
# torch 2.11.0 with torchvision 0.26.0 and torchaudio 2.11.0: the index's torchaudio stops at
# 2.11.x and its torchvision does not import next to the CPU torch 2.13 that .venv has, so this
# environment has another torch. These are the CUDA builds of torch (a find-links directory may
# offer +cpu of the same version, which pip would prefer: the constraint excludes it); they run on
# CPU. Packages come from pip's configured index (this script names none).
# Environment: COMFYUI_ENV (default build/comfyui-env), PYTHON (creates the venv; default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${COMFYUI_ENV:-build/comfyui-env}
PYTHON=${PYTHON:-python3}
start=$(date +%s)

TORCH=("torch==2.11.0" "torchvision==0.26.0" "torchaudio==2.11.0")
# What ComfyUI's core imports (its requirements.txt, less the frontend and API-node packages
# that nothing here loads); ComfyUI's own two packages pinned at the versions checked here.
COMFYUI_DEPS=(einops safetensors psutil tqdm Pillow numpy scipy torchsde transformers tokenizers
  sentencepiece pyyaml aiohttp yarl av requests simpleeval blake3 alembic SQLAlchemy filelock
  "comfy-kitchen==0.2.31" "comfy-aimdo==0.4.13" packaging pydantic pydantic-settings)
TEST_DEPS=("pytest>=8")
BUILD_DEPS=("setuptools>=64" wheel "cmake>=3.18" ninja)

[[ -x "$ENV/bin/python" ]] || "$PYTHON" -m venv "$ENV"
constraint="$ENV/torch-constraint.txt"
printf '%s\n' "torch==2.11.0,!=2.11.0+cpu" "torchvision==0.26.0,!=0.26.0+cpu" \
  "torchaudio==2.11.0,!=2.11.0+cpu" >"$constraint"
"$ENV/bin/python" -m pip install --quiet --upgrade pip
"$ENV/bin/python" -m pip install --quiet -c "$constraint" "${TORCH[@]}" "${COMFYUI_DEPS[@]}" \
  "${TEST_DEPS[@]}" "${BUILD_DEPS[@]}"
installed=$(date +%s)

# eav-kernels, built against this torch: the CPU op only (nvcc would otherwise compile the CUDA
# kernels for this CUDA torch), in build/comfyui-cmake so that .venv's build stays untouched, and
# not editable, so that the checkout's own _C (built for .venv's torch) is never replaced.
EAV_SKIP_CUDA_BUILD=1 EAV_BUILD_DIR=build/comfyui-cmake MAX_JOBS=${MAX_JOBS:-2} \
  "$ENV/bin/python" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall .
built=$(date +%s)

(cd "$ENV" && bin/python -c 'import torch, torchvision, torchaudio, eav_kernels
from eav_kernels._extension import compiled_extension, extension_import_error
assert "site-packages" in eav_kernels.__file__, eav_kernels.__file__
assert compiled_extension() is not None, extension_import_error()
print(f"comfyui-env: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"torchaudio {torchaudio.__version__}, eav_kernels from {eav_kernels.__file__}")')
echo "comfyui-env: $ENV ready: packages $((installed - start)) s, eav-kernels build $((built - installed)) s"
