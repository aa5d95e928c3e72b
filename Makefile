# eav-kernels: `make test` and `make demo` work on a fresh machine (they create .venv/ first).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTENSION_SOURCES := $(shell find csrc cmake -type f 2>/dev/null) CMakeLists.txt setup.py

.PHONY: all venv build test demo bench clean cuda-check wheel-env wheel gpu-rehearsal

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
# (table on stdout, build/demo.csv, build/demo.png). About 80 s on 2 CPU cores.
DEMO_FLAGS ?= --preset cogvideox-2b --preset wan2.1-1.3b --preset ltx-video --preset latte-temporal --repeats 3
demo: build
	@mkdir -p build
	$(VENV)/bin/eav bench $(DEMO_FLAGS) --csv build/demo.csv --plot build/demo.png

# Compiles every .cu for sm_80 and sm_90a with this machine's nvcc and lists the cubins (no GPU,
# no CUDA torch needed); also syntax-checks the torch-facing CUDA launcher against .venv's torch.
cuda-check: venv
	PYTHON=$(PY) tools/cuda_check.sh

# Wheels for named CUDA arches: make wheel EAV_CUDA_ARCHS="80;90a". Built in build/wheel-env, a
# separate environment with the CUDA build of torch (tools/wheel_env.sh), never in .venv.
WHEEL_ENV ?= build/wheel-env
EAV_CUDA_ARCHS ?= 80;90a
# The toolkit's real directory: torch's CMake (FindCUDA) looks there for headers and libcudart; an
# nvcc wrapper script on PATH (/usr/local/bin/nvcc here) would make it guess /usr/local.
CUDA_HOME ?= /usr/local/cuda
wheel-env:
	WHEEL_ENV=$(WHEEL_ENV) tools/wheel_env.sh

wheel: wheel-env
	EAV_CUDA_ARCHS="$(EAV_CUDA_ARCHS)" EAV_BUILD_DIR=build/wheel-cmake MAX_JOBS=$${MAX_JOBS:-1} \
	  CUDA_PATH=$(CUDA_HOME) CUDACXX=$(CUDA_HOME)/bin/nvcc PATH=$(CUDA_HOME)/bin:$$PATH \
	  $(WHEEL_ENV)/bin/python -m pip wheel --no-build-isolation --no-deps --no-index -w dist .
	tools/verify_wheel.sh "$$(ls -t dist/eav_kernels-*.whl | head -1)" "$(EAV_CUDA_ARCHS)"

# benchmarks/gpu_check.sh --rehearsal, run as the lent GPU machine runs it: its python3 is itself a
# venv with torch 2.11 (CUDA 13 build) and Triton 3.6, no diffusers. Makes that venv here
# (build/rehearsal-venv, Python 3.12 when there is one; ~4 GB of wheels the first time), builds the
# CUDA kernels for sm_90a by cmake, and stops before the first step that needs a GPU. Output in
# build/gpu-rehearsal/; docs/testing.md shows a run.
gpu-rehearsal:
	@set -e; venv=build/rehearsal-venv; \
	if [ ! -x $$venv/bin/python3 ]; then \
	  for p in $${REHEARSAL_PYTHON:-} python3.12 python3; do \
	    if [ -n "$$p" ] && $$p -c 'import sys' 2>/dev/null; then $$p -m venv $$venv; break; fi; done; fi; \
	$$venv/bin/python3 -m pip install --quiet "torch==2.11.0" "triton==3.6.0" pytest numpy "setuptools>=64" cmake ninja; \
	CUDA_HOME=$(CUDA_HOME) PATH=$(CUDA_HOME)/bin:$$PATH PYTHON=$$venv/bin/python3 MAX_JOBS=$${MAX_JOBS:-2} \
	  bash benchmarks/gpu_check.sh --rehearsal

clean:
	rm -rf build $(VENV) eav_kernels/_C*.so *.egg-info
