"""Loads ``eav_kernels._C`` only where it can work, and says why not otherwise.

``_C`` uses torch's stable C ABI of one torch version (``torch_target``) and later, and, when it
carries CUDA kernels, libtorch_cuda (a CUDA build of torch). The build writes what it targeted
next to the library (``_C_build.json``, tools/build_manifest.py); this module compares that with
the running torch before the library is loaded, so a mismatch is an ImportError naming both
versions rather than an undefined-symbol error from the dynamic loader (or worse). The package
then falls back to its pure-Python backends (eav_kernels/_extension.py).
"""

from __future__ import annotations

import importlib
import json
import types
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

__all__ = ["build_record", "incompatibility", "load_compiled_extension"]

RECORD_PATH = Path(__file__).with_name("_C_build.json")


def build_record(path: Path = RECORD_PATH) -> dict[str, Any] | None:
    """What the build of ``_C`` targeted (torch_target, torch_built_with, cuda), or None when
    there is no record (no build, or one from before records were written)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def incompatibility(record: dict[str, Any], torch_version: str, torch_cuda: str | None) -> str | None:
    """Why a ``_C`` built as ``record`` says cannot load in torch ``torch_version`` (CUDA
    ``torch_cuda``, None for a CPU build), or None when it can."""
    built = f"eav_kernels._C was built with torch {record['torch_built_with']} for torch >= {record['torch_target']}"
    if TorchVersion(torch_version) < record["torch_target"]:
        return (f"{built}, but the running torch is {torch_version}: upgrade torch to >= "
                f"{record['torch_target']}, or rebuild eav-kernels against this torch")
    if record.get("cuda") and not torch_cuda:
        return (f"{built} with CUDA {record['cuda']} kernels, which need a CUDA build of torch; the "
                f"running torch {torch_version} has no CUDA: install a CUDA build of torch, or "
                "rebuild eav-kernels with EAV_SKIP_CUDA_BUILD=1")
    return None


def load_compiled_extension(record_path: Path = RECORD_PATH) -> types.ModuleType:
    """``eav_kernels._C``, or ImportError saying why it cannot be used with the running torch
    (its message names the torch ``_C`` was built with and the running one)."""
    record = build_record(record_path)
    if record is not None:
        reason = incompatibility(record, torch.__version__, torch.version.cuda)
        if reason is not None:
            raise ImportError(reason)
    try:
        return importlib.import_module("eav_kernels._C")
    except ImportError as error:
        if record is None:
            raise
        raise ImportError(f"eav_kernels._C (built with torch {record['torch_built_with']} for "
                          f"torch >= {record['torch_target']}) failed to load in torch "
                          f"{torch.__version__}: {error}") from error
