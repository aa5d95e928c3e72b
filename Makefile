# eav-kernels: `make test` and `make demo` work on a fresh machine (they create .venv/ first).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTENSION_SOURCES := $(shell find csrc cmake -type f 2>/dev/null) CMakeLists.txt setup.py tools/build_manifest.py

.PHONY: all venv build test demo bench clean cuda-check wheel-env wheel wheel-compat gpu-rehearsal comfyui-env test-comfyui

all: build

# The environment: torch pinned first (an unpinned torch would pull GBs of CUDA wheels), then the
# build tools, then the package with its test extras, built without build isolation.
$(VENV)/.environment: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)" "setuptools>=64" wheel "cmake>=3.18" ninja
	$(PIP) install --quiet --no-build-isolation -e ".[test]"
	touch $@

venv: $(VENV)/.environment

# Rebuilds the extension (incrementally, in build/cmake) whenever a C++/CUDA/CMake source changed.
$(VENV)/.extension: $(VENV)/.environment $(EXTENSION_SOURCES)
	$(PIP) install --quiet --no-build-isolation --no-deps -e .
	touch $@

build: $(VENV)/.extension

test: build
	$(PY) -m pytest tests -m "not slow"

# The project's main job: CFI backends vs the paper's code, enhanced_sdpa vs SDPA, on real shapes
# (table on stdout, build/demo.csv, build/demo.png). About 1 min on 2 CPU cores.
DEMO_FLAGS ?= --preset cogvideox-2b --preset wan2.1-1.3b --preset ltx-video --preset latte-temporal --repeats 3
demo: build
	@mkdir -p build
	$(VENV)/bin/eav bench $(DEMO_FLAGS) --csv build/demo.csv --plot build/demo.png

# Compiles every .cu for sm_80 and sm_90a with this machine's nvcc and lists the cubins (no GPU,
# no CUDA torch needed); also syntax-checks the torch-facing CUDA launcher against .venv's torch.
cuda-check: venv
	PYTHON=$(PY) tools/cuda_check.sh

# Wheels for named CUDA arches: make wheel EAV_CUDA_ARCHS="80;90a". Built in build/wheel-env, a
# separate environment with the CUDA build of torch and the wheel's check tools
# (tools/wheel_env.sh), never in .venv; then made manylinux and checked (tools/verify_wheel.sh):
# dist/eav_kernels-<version>+cu<CUDA>-cp310-abi3-manylinux_*.whl. docs/wheels.md.
WHEEL_ENV ?= build/wheel-env
EAV_CUDA_ARCHS ?= 80;90a
# The toolkit nvcc builds with (its directory: an nvcc wrapper script on PATH hides it).
CUDA_HOME ?= /usr/local/cuda
wheel-env:
	WHEEL_ENV=$(WHEEL_ENV) tools/wheel_env.sh

wheel: wheel-env
	rm -rf build/wheel-raw
	EAV_CUDA_ARCHS="$(EAV_CUDA_ARCHS)" EAV_BUILD_DIR=build/wheel-cmake MAX_JOBS=$${MAX_JOBS:-1} \
	  CUDA_HOME=$(CUDA_HOME) \
	  $(WHEEL_ENV)/bin/python -m pip wheel --no-build-isolation --no-deps --no-index -w build/wheel-raw .
	PYTHON=$(WHEEL_ENV)/bin/python tools/verify_wheel.sh "$$(ls build/wheel-raw/eav_kernels-*.whl)" "$(EAV_CUDA_ARCHS)" dist

# Before submitting: the newest wheel in dist/ installed with another torch (default 2.11.0, in
# build/compat-env) passes the CPU test suite there (tools/wheel_compat.sh).
COMPAT_TORCH_VERSION ?= 2.11.0
wheel-compat:
	COMPAT_TORCH_VERSION=$(COMPAT_TORCH_VERSION) tools/wheel_compat.sh "$$(ls -t dist/eav_kernels-*.whl | head -1)"

# benchmarks/gpu_check.sh --rehearsal, run as the lent GPU machine runs it: its python3 is itself a
# venv with torch 2.11 (CUDA 13 build) and Triton 3.6, no diffusers. Makes that venv here
# (build/rehearsal-venv, Python 3.12 when there is one; ~4 GB of wheels the first time), builds the
# CUDA kernels for sm_90a by cmake (or, with a wheel in dist/, installs it instead; GPU_CHECK_WHEEL=never
# builds anyway), and stops before the first step that needs a GPU. Output in build/gpu-rehearsal/;
# docs/testing.md shows both runs.
# A source-build rehearsal leaves the checkout's _C built for the rehearsal's torch: the target
# forgets .venv's build stamp, so the next `make build` / `make test` rebuilds it for .venv.
gpu-rehearsal:
	@set -e; venv=build/rehearsal-venv; \
	if [ ! -x $$venv/bin/python3 ]; then \
	  for p in $${REHEARSAL_PYTHON:-} python3.12 python3; do \
	    if [ -n "$$p" ] && $$p -c 'import sys' 2>/dev/null; then $$p -m venv $$venv; break; fi; done; fi; \
	$$venv/bin/python3 -m pip install --quiet "torch==2.11.0" "triton==3.6.0" pytest numpy "setuptools>=64" cmake ninja; \
	rc=0; CUDA_HOME=$(CUDA_HOME) PATH=$(CUDA_HOME)/bin:$$PATH PYTHON=$$venv/bin/python3 MAX_JOBS=$${MAX_JOBS:-2} \
	  bash benchmarks/gpu_check.sh --rehearsal || rc=$$?; \
	rm -f $(VENV)/.extension; exit $$rc

# The real-ComfyUI tests: build/comfyui-env (tools/comfyui_env.sh: torch 2.11 + what ComfyUI
# imports + eav-kernels built for that torch), then tests/test_comfyui_real*.py there against the
# ComfyUI checkout EAV_COMFYUI_PATH names (not fetched: ComfyUI is not on PyPI). Run from the env's
# directory with its bin/pytest, so that the installed eav_kernels is imported, not the checkout's.
# The package is installed, not editable: any change to its sources installs it again.
COMFYUI_ENV ?= build/comfyui-env
PACKAGE_SOURCES := $(shell find eav_kernels triton_kernels -name '*.py' 2>/dev/null)
$(COMFYUI_ENV)/.environment: tools/comfyui_env.sh pyproject.toml $(EXTENSION_SOURCES) $(PACKAGE_SOURCES)
	COMFYUI_ENV=$(COMFYUI_ENV) tools/comfyui_env.sh
	touch $@

comfyui-env: $(COMFYUI_ENV)/.environment

test-comfyui: comfyui-env
	@test -n "$(EAV_COMFYUI_PATH)" || { echo "test-comfyui: set EAV_COMFYUI_PATH=/path/to/a/ComfyUI/checkout"; exit 2; }
	cd $(COMFYUI_ENV) && EAV_COMFYUI_PATH="$(abspath $(EAV_COMFYUI_PATH))" bin/pytest \
	  $(addprefix "$(CURDIR)/",$(wildcard tests/test_comfyui_real*.py)) -p no:cacheprovider -v

clean:
	rm -rf build $(VENV) eav_kernels/_C*.so eav_kernels/_C_build.json *.egg-info
