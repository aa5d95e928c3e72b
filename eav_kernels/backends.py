"""Backends and their dispatch.

Every backend implements the same contract (docs/design.md):
``per_batch_cross_frame_intensity(query [B, H, F*S, D], key [B, Hk, F*S, D], num_frames, scale)
-> [B] float32``, and says *why* it cannot take an input (the xformers fmha pattern).
``backend="auto"`` takes the first backend, in ``BACKEND_PRIORITY`` order, that can; the
environment variable ``EAV_BACKEND`` replaces what "auto" means (e.g. ``EAV_BACKEND=reference``).
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ._extension import compiled_extension, extension_import_error
from .reference import cross_frame_intensity_reference

__all__ = ["Backend", "BACKENDS", "BACKEND_PRIORITY", "available_backends", "select_backend"]

# Returns None when the backend can take (query, key), else the reason it cannot.
UnsupportedReason = Callable[[torch.Tensor, torch.Tensor], Optional[str]]
PerBatchCFI = Callable[[torch.Tensor, torch.Tensor, int, float], torch.Tensor]


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    unsupported_reason: UnsupportedReason
    per_batch_cross_frame_intensity: PerBatchCFI


def _extension_op_reason(device_type: str) -> UnsupportedReason:
    """Reason function of a backend that runs the compiled op for one device type."""

    def reason(query: torch.Tensor, key: torch.Tensor) -> Optional[str]:
        extension = compiled_extension()
        if extension is None:
            return f"the extension eav_kernels._C is not built ({extension_import_error()})"
        if query.device.type != device_type:
            return f"runs on {device_type} tensors, got {query.device.type}"
        if device_type == "cuda" and not extension.cuda_archs():
            return "eav_kernels._C was built without CUDA kernels"
        return None

    return reason


def _compiled_op(query: torch.Tensor, key: torch.Tensor, num_frames: int, scale: float) -> torch.Tensor:
    return torch.ops.eav.cross_frame_intensity(query, key, num_frames, scale)


def _triton_reason(query: torch.Tensor, key: torch.Tensor) -> Optional[str]:
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'eav-kernels[triton]')"
    interpreting = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if query.device.type == "cpu" and not interpreting:
        return "runs on cuda tensors (cpu tensors only in Triton's interpreter, TRITON_INTERPRET=1)"
    if query.device.type not in ("cuda", "cpu"):
        return f"runs on cuda tensors, got {query.device.type}"
    return None


def _triton(query: torch.Tensor, key: torch.Tensor, num_frames: int, scale: float) -> torch.Tensor:
    from .triton_kernels.cross_frame_intensity import per_batch_cross_frame_intensity

    return per_batch_cross_frame_intensity(query, key, num_frames, scale)


def _reference(query: torch.Tensor, key: torch.Tensor, num_frames: int, scale: float) -> torch.Tensor:
    per_batch = cross_frame_intensity_reference(query, key, num_frames, scale=scale, per_batch=True)
    return per_batch.to(torch.float32)


BACKENDS: types.MappingProxyType[str, Backend] = types.MappingProxyType({
    backend.name: backend
    for backend in (
        Backend(
            "cuda",
            "CUDA kernel compiled into eav_kernels._C",
            _extension_op_reason("cuda"),
            _compiled_op,
        ),
        Backend(
            "triton",
            "Triton kernel (eav_kernels.triton_kernels), read in place, batched tl.dot",
            _triton_reason,
            _triton,
        ),
        Backend(
            "cpu",
            "fused C++ kernel (at::vec, OpenMP) compiled into eav_kernels._C",
            _extension_op_reason("cpu"),
            _compiled_op,
        ),
        Backend(
            "reference",
            "plain PyTorch, float64, materialises every F x F map (the truth for tests)",
            lambda query, key: None,
            _reference,
        ),
    )
})

# "auto" takes the first of these that can run the input.
BACKEND_PRIORITY: tuple[str, ...] = ("cuda", "triton", "cpu", "reference")


def available_backends(query: torch.Tensor, key: torch.Tensor) -> dict[str, Optional[str]]:
    """Every known backend with None (usable for these tensors) or the reason it is not."""
    return {name: backend.unsupported_reason(query, key) for name, backend in BACKENDS.items()}


def select_backend(name: str, query: torch.Tensor, key: torch.Tensor) -> Backend:
    """The backend called ``name`` (or the best one for "auto"), or ValueError saying why not."""
    if name == "auto":
        name = os.environ.get("EAV_BACKEND", "auto") or "auto"
    if name == "auto":
        reasons = available_backends(query, key)
        for candidate in BACKEND_PRIORITY:
            if candidate in BACKENDS and reasons[candidate] is None:
                return BACKENDS[candidate]
        details = "; ".join(f"{n}: {r}" for n, r in reasons.items())
        raise ValueError(f"no backend can take this input ({details})")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)} or 'auto'")
    backend = BACKENDS[name]
    reason = backend.unsupported_reason(query, key)
    if reason is not None:
        raise ValueError(f"backend {name!r} cannot take this input: {reason}")
    return backend
