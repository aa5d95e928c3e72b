"""What this process can run, found once, and the backend switch, read per call.

Found once (``functools.cache``; they cannot change while the process lives): whether Triton is
importable, the CUDA architectures compiled into ``eav_kernels._C``, and whether Triton runs its
interpreter (``TRITON_INTERPRET``: Triton itself reads it once, when the kernels are decorated at
import, so a later change of the variable would not change the kernels either). Finding Triton
costs ~40 µs, importing it a second: neither happens per call.

Read per call (under a microsecond): ``EAV_BACKEND``, which replaces what ``backend="auto"``
means, so that a test or a script can change it between calls. Nothing here imports Triton.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Callable, TypeVar

import torch

from ._extension import compiled_extension

__all__ = ["backend_override", "cached_constant", "compiled_cuda_archs", "triton_importable",
           "triton_interpreting"]

Result = TypeVar("Result")


def cached_constant(function: Callable[..., Result]) -> Callable[..., Result]:
    """``functools.cache`` for a function of hashable arguments whose result never changes in this
    process, which ``torch.compile`` calls while tracing and takes as a constant (tracing through
    the cache itself would warn in every compiled model)."""
    cached = functools.cache(function)

    def constant(*args):
        return cached(*args)

    constant.__name__, constant.__qualname__, constant.__doc__ = (
        function.__name__, function.__qualname__, function.__doc__)
    return torch.compiler.assume_constant_result(constant)


@cached_constant
def triton_importable() -> bool:
    """Whether ``import triton`` would find a module (it is not imported here)."""
    return importlib.util.find_spec("triton") is not None


@cached_constant
def compiled_cuda_archs() -> str:
    """The CUDA architectures compiled into ``eav_kernels._C`` ('' without CUDA kernels or without
    the extension), e.g. ``"80 90a"``."""
    extension = compiled_extension()
    return extension.cuda_archs() if extension is not None else ""


@cached_constant
def triton_interpreting() -> bool:
    """True when ``TRITON_INTERPRET`` asks for Triton's CPU interpreter (any value but '' or '0'),
    as it was when first asked: set it before the process uses eav_kernels (Triton reads it when
    ``eav_kernels.triton_kernels`` is first imported)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def backend_override() -> str:
    """What ``backend="auto"`` means in this call: ``EAV_BACKEND`` when set and not empty."""
    return os.environ.get("EAV_BACKEND") or "auto"
