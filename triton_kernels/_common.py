"""What both Triton kernels share: interpreter detection, tile sizes, dtype checks."""

from __future__ import annotations

import os

import torch
import triton

LOG2_E = 1.4426950408889634  # logits are scaled by scale * log2(e) so the kernels can use exp2


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``).

    Triton reads the variable when a ``@triton.jit`` function is decorated, i.e. when this package
    is imported: set it before the first import of ``eav_kernels.triton_kernels``.
    """
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def upcast_operands() -> bool:
    """The interpreter multiplies bfloat16 *bits* in ``tl.dot``: upcast to float32 after loading.

    On a GPU the dot operands stay in fp16/bf16 (tensor cores) with float32 accumulation.
    """
    return interpreting()


def frame_block(num_frames: int, largest: int = 64) -> int:
    """Frames per query/key chunk: a power of two >= 16 (``tl.dot`` needs M, N, K >= 16)."""
    return max(16, min(largest, triton.next_power_of_2(num_frames)))


def head_dim_block(head_dim: int) -> int:
    """Head dim padded to a power of two >= 16 (D = 40, 72 are masked)."""
    return max(16, triton.next_power_of_2(head_dim))


def check_device(*tensors: torch.Tensor) -> None:
    for tensor in tensors:
        if tensor.device.type == "cuda":
            continue
        if tensor.device.type == "cpu" and interpreting():
            continue
        raise ValueError(
            f"Triton kernels run on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), "
            f"got a {tensor.device.type} tensor"
        )
