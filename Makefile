# eav-kernels: `make test` and `make demo` work on a fresh machine (they create .venv/ first).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTENSION_SOURCES := $(shell find csrc cmake -type f 2>/dev/null) CMakeLists.txt setup.py

.PHONY: all venv build test demo bench clean

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
	$(PY) -m pytest tests

demo: build
	$(PY) benchmarks/bench_cfi.py --preset cogvideox-2b --preset wan2.1-1.3b --repeats 3

clean:
	rm -rf build $(VENV) eav_kernels/_C*.so *.egg-info
