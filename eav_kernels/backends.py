"""Backends, the contracts each implements, and the choice among them (xformers' fmha pattern).

Two contracts (docs/design.md):

- ``CROSS_FRAME_INTENSITY``: ``cross_frame_intensity(problem) -> [B] float32``, the CFI of each
  batch element's video tokens;
- ``TEMPORAL_ATTENTION``: ``temporal_attention_with_cfi(problem) -> (out [B, H, F, Dv], cfi [B])``
  for a pure temporal problem (``AttentionProblem.is_pure_temporal``): SDPA's output and the
  CFI of each sequence in one pass.

Each backend declares the contracts it implements and, for a whole problem,
``not_supported_reasons(problem, contract)`` (empty when it can run it). ``backend="auto"`` takes
the first backend in ``BACKEND_PRIORITY`` order with no reason; the environment variable
``EAV_BACKEND``, read per call, replaces what "auto" means (e.g. ``EAV_BACKEND=reference``).
"""

from __future__ import annotations

import importlib
import types

import torch

from . import ops
from ._extension import compiled_extension, extension_import_error
from .capabilities import (
    backend_override, cached_constant, compiled_cuda_archs, triton_importable, triton_interpreting,
)
from .problem import AttentionProblem
from .reference import cross_frame_intensity_reference

__all__ = [
    "BACKENDS", "BACKEND_PRIORITY", "CROSS_FRAME_INTENSITY", "TEMPORAL_ATTENTION", "Backend",
    "available_backends", "backend_for", "fused_backend_for", "select_backend",
]

CROSS_FRAME_INTENSITY = "cross-frame intensity"
TEMPORAL_ATTENTION = "fused temporal attention + CFI"


class Backend:
    """One implementation of some of the contracts (declared in ``contracts``).

    Its reasons come in two kinds: ``device_reasons`` depend only on the device type and on what
    this process can run (found once per device type and contract, and cached: "auto" asks on
    every call), ``problem_reasons`` on the problem itself (asked per call).
    """

    name: str
    description: str
    contracts: frozenset[str]

    def not_supported_reasons(self, problem: AttentionProblem, contract: str) -> tuple[str, ...]:
        """Why this backend cannot run ``contract`` on ``problem`` (empty: it can)."""
        if contract not in self.contracts:
            return (f"does not implement the {contract} contract",)
        device_reasons = _device_reasons(self.name, problem.device_type(), contract)
        return device_reasons + self.problem_reasons(problem, contract)

    def device_reasons(self, device_type: str, contract: str) -> tuple[str, ...]:
        """Why not, for any problem on ``device_type`` tensors (must not change between calls)."""
        return ()

    def problem_reasons(self, problem: AttentionProblem, contract: str) -> tuple[str, ...]:
        """Why not, for this problem (only asked when the device reasons are empty under "auto")."""
        return ()

    def cross_frame_intensity(self, problem: AttentionProblem) -> torch.Tensor:  # [B] float32
        raise NotImplementedError

    def temporal_attention_with_cfi(
        self, problem: AttentionProblem
    ) -> tuple[torch.Tensor, torch.Tensor]:  # out [B, H, F, Dv], cfi [B] float32
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<backend {self.name!r}: {self.description}>"


class CompiledBackend(Backend):
    """The ops of ``eav_kernels._C`` for one device type.

    ``temporal_reason``: a reason the fused temporal op, although compiled for this device, is
    not chosen (on CPU it is slower than SDPA + the CFI kernel; the op stays as the CUDA
    kernel's twin for tests). Tests may set it to ``None`` to run the twin through the dispatch.
    """

    contracts = frozenset((CROSS_FRAME_INTENSITY, TEMPORAL_ATTENTION))

    def __init__(self, device_type: str, description: str, temporal_reason: str | None = None):
        self.name, self.device_type, self.description = device_type, device_type, description
        self.temporal_reason = temporal_reason

    def device_reasons(self, device_type: str, contract: str) -> tuple[str, ...]:
        if compiled_extension() is None:
            return (f"the extension eav_kernels._C is not built ({extension_import_error()})",)
        if device_type != self.device_type:
            return (f"runs on {self.device_type} tensors, got {device_type}",)
        if device_type == "cuda" and not compiled_cuda_archs():
            return ("eav_kernels._C was built without CUDA kernels",)
        return ()

    def problem_reasons(self, problem: AttentionProblem, contract: str) -> tuple[str, ...]:
        if contract == TEMPORAL_ATTENTION and self.temporal_reason is not None:
            return (self.temporal_reason,)
        return ()

    def cross_frame_intensity(self, problem: AttentionProblem) -> torch.Tensor:
        query, key = problem.video_query_key()
        return ops.cross_frame_intensity(query, key, problem.num_frames, problem.scale)

    def temporal_attention_with_cfi(self, problem: AttentionProblem) -> tuple[torch.Tensor, torch.Tensor]:
        return ops.temporal_attention_with_cfi(problem.query, problem.key, problem.value, problem.scale)


def _triton_module(name: str) -> types.ModuleType:
    """``eav_kernels.triton_kernels.<name>``, imported on first use (importing Triton takes ~1 s);
    looked up per call, so that tests may replace a kernel's entry point."""
    return importlib.import_module(f".triton_kernels.{name}", __package__)


class TritonBackend(Backend):
    """The Triton kernels of ``eav_kernels.triton_kernels`` (CUDA tensors; CPU tensors in Triton's
    interpreter)."""

    name = "triton"
    description = "Triton kernels (eav_kernels.triton_kernels), read in place, batched tl.dot"
    contracts = frozenset((CROSS_FRAME_INTENSITY, TEMPORAL_ATTENTION))

    def device_reasons(self, device_type: str, contract: str) -> tuple[str, ...]:
        if not triton_importable():
            return ("triton is not installed (pip install 'eav-kernels[triton]')",)
        if device_type == "cuda" or (device_type == "cpu" and triton_interpreting()):
            return ()
        if device_type == "cpu":
            return ("runs on cuda tensors (cpu tensors only in Triton's interpreter, TRITON_INTERPRET=1)",)
        return (f"runs on cuda tensors, got {device_type}",)

    def cross_frame_intensity(self, problem: AttentionProblem) -> torch.Tensor:
        query, key = problem.video_query_key()
        return _triton_module("cross_frame_intensity").per_batch_cross_frame_intensity(
            query, key, problem.num_frames, problem.scale
        )

    def temporal_attention_with_cfi(self, problem: AttentionProblem) -> tuple[torch.Tensor, torch.Tensor]:
        out, cfi = _triton_module("temporal_attention").temporal_attention_with_cfi(
            problem.query, problem.key, problem.value, problem.scale
        )
        return out, cfi


class ReferenceBackend(Backend):
    """Plain PyTorch in float64 (``reference.py``): the truth the kernels are tested against."""

    name = "reference"
    description = "plain PyTorch, float64, materialises every F x F map (the truth for tests)"
    contracts = frozenset((CROSS_FRAME_INTENSITY,))

    def cross_frame_intensity(self, problem: AttentionProblem) -> torch.Tensor:
        query, key = problem.video_query_key()
        per_sample = cross_frame_intensity_reference(
            query, key, problem.num_frames, scale=problem.scale, per_sample=True
        )
        return per_sample.to(torch.float32)


CPU_TEMPORAL_REASON = (
    "on CPU the fused temporal op is slower than SDPA + the CFI kernel (benchmarks/RESULTS.md); "
    "it is kept as the CUDA kernel's twin for tests"
)

BACKENDS: types.MappingProxyType[str, Backend] = types.MappingProxyType({
    backend.name: backend
    for backend in (
        CompiledBackend("cuda", "CUDA kernels compiled into eav_kernels._C"),
        TritonBackend(),
        CompiledBackend("cpu", "fused C++ kernel (at::vec, torch's thread pool) compiled into eav_kernels._C",
                        temporal_reason=CPU_TEMPORAL_REASON),
        ReferenceBackend(),
    )
})

# "auto" takes the first of these that can run the problem.
BACKEND_PRIORITY: tuple[str, ...] = ("cuda", "triton", "cpu", "reference")


@cached_constant
def _device_reasons(backend: str, device_type: str, contract: str) -> tuple[str, ...]:
    return BACKENDS[backend].device_reasons(device_type, contract)


@cached_constant
def _candidates_on(device_type: str, contract: str) -> tuple[str, ...]:
    """The backends of ``BACKEND_PRIORITY`` implementing ``contract`` with no device reason."""
    return tuple(name for name in BACKEND_PRIORITY
                 if contract in BACKENDS[name].contracts and not _device_reasons(name, device_type, contract))


def _requested(name: str) -> str:
    """``name``, with "auto" replaced by ``EAV_BACKEND`` when set; ValueError for unknown names."""
    if name == "auto":
        name = backend_override()
        if name == "auto":
            return name
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)} or 'auto'")
    return name


def _first_usable(contract: str, problem: AttentionProblem) -> Backend | None:
    """"auto": the first backend in priority order that can run ``problem``."""
    for name in _candidates_on(problem.device_type(), contract):
        backend = BACKENDS[name]
        if not backend.problem_reasons(problem, contract):
            return backend
    return None


def backend_for(contract: str, problem: AttentionProblem, name: str = "auto") -> Backend:
    """The backend called ``name`` (the first usable one for "auto") for ``contract``, or
    ValueError saying why none can run ``problem``."""
    requested = _requested(name)
    if requested == "auto":
        backend = _first_usable(contract, problem)
        if backend is None:
            details = "; ".join(f"{n}: {'; '.join(b.not_supported_reasons(problem, contract))}"
                                for n, b in BACKENDS.items())
            raise ValueError(f"no backend can take this input ({details})")
        return backend
    backend = BACKENDS[requested]
    reasons = backend.not_supported_reasons(problem, contract)
    if reasons:
        raise ValueError(f"backend {requested!r} cannot take this input: {'; '.join(reasons)}")
    return backend


def fused_backend_for(problem: AttentionProblem, name: str = "auto") -> Backend | None:
    """The backend that runs ``problem`` (pure temporal) with the fused kernel: the first
    candidate of ``name`` implementing ``TEMPORAL_ATTENTION`` for it, or ``None`` (then the
    general path runs: SDPA, and the CFI on ``backend_for(CROSS_FRAME_INTENSITY, ...)``)."""
    requested = _requested(name)
    if requested == "auto":
        return _first_usable(TEMPORAL_ATTENTION, problem)
    backend = BACKENDS[requested]
    return None if backend.not_supported_reasons(problem, TEMPORAL_ATTENTION) else backend


def _unchecked_problem(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
) -> AttentionProblem:
    """The CFI problem of ``query`` and ``key`` without validation, for asking backends why not."""
    return AttentionProblem(query, key, None, 1, 0, query.shape[2], 1.0, True)


def select_backend(name: str, query: torch.Tensor, key: torch.Tensor) -> Backend:
    """The backend that ``cross_frame_intensity(query, key, ..., backend=name)`` would use, or
    ValueError saying why none can."""
    return backend_for(CROSS_FRAME_INTENSITY, _unchecked_problem(query, key), name)


def available_backends(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
) -> dict[str, str | None]:
    """Every known backend with None (it can compute the CFI of these tensors) or why it cannot."""
    problem = _unchecked_problem(query, key)
    return {
        name: "; ".join(reasons) or None
        for name, backend in BACKENDS.items()
        for reasons in (backend.not_supported_reasons(problem, CROSS_FRAME_INTENSITY),)
    }
