"""The compiled ops ``torch.ops.eav.*``: one typed Python wrapper per op, its fake beside it.

The schemas are registered in C++ (``csrc/registration.cpp``); each op validates its own input
there (``TORCH_CHECK``), so these wrappers add no checks. Each fake (the meta implementation that
``torch.compile`` traces) runs the preconditions of its C++ entry, so that a traced call fails
the way an eager one does, and a device mismatch that dispatches to it (meta + cpu) is an error
rather than a silent meta result. Without the extension nothing is registered and the wrappers
are never called (the backends that need them say why they cannot run).
"""

from __future__ import annotations

import torch

from ._extension import compiled_extension
from .validation import check_query_key, check_scale, check_temporal_attention

__all__ = ["cross_frame_intensity", "temporal_attention_with_cfi"]


def cross_frame_intensity(
    query: torch.Tensor,  # [B, H, F*S, D] frame-major video tokens, any strides
    key: torch.Tensor,  # [B, Hk, F*S, D], H % Hk == 0
    num_frames: int,
    scale: float,
) -> torch.Tensor:  # [B] float32
    """``eav::cross_frame_intensity``: the per-sample CFI, on the inputs' device (CPU or CUDA)."""
    return torch.ops.eav.cross_frame_intensity.default(query, key, num_frames, scale)


def _cross_frame_intensity_fake(
    query: torch.Tensor,  # [B, H, F*S, D]
    key: torch.Tensor,  # [B, Hk, F*S, D]
    num_frames: int,
    scale: float,
) -> torch.Tensor:  # [B] float32
    check_query_key(query, key, num_frames, enable_gqa=True)
    check_scale(scale)
    return query.new_empty((query.shape[0],), dtype=torch.float32)


def temporal_attention_with_cfi(
    query: torch.Tensor,  # [N_seq, H, F, D]: N_seq sequences of F frames, any strides
    key: torch.Tensor,  # [N_seq, Hk, F, D], H % Hk == 0
    value: torch.Tensor,  # [N_seq, Hk, F, Dv]
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``eav::temporal_attention_with_cfi``: unmasked, non-causal attention over each sequence's
    frames and each sequence's CFI in one pass. Returns ``out [N_seq, H, F, Dv]`` (query's dtype)
    and ``cfi [N_seq]`` float32."""
    return torch.ops.eav.temporal_attention_with_cfi.default(query, key, value, scale)


def _temporal_attention_with_cfi_fake(
    query: torch.Tensor,  # [N_seq, H, F, D]
    key: torch.Tensor,  # [N_seq, Hk, F, D]
    value: torch.Tensor,  # [N_seq, Hk, F, Dv]
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    check_temporal_attention(query, key, value)
    check_scale(scale)
    sequences, heads, frames, _ = query.shape
    out = query.new_empty((sequences, heads, frames, value.shape[3]))
    return out, query.new_empty((sequences,), dtype=torch.float32)


if compiled_extension() is not None:
    torch.library.register_fake("eav::cross_frame_intensity")(_cross_frame_intensity_fake)
    torch.library.register_fake("eav::temporal_attention_with_cfi")(_temporal_attention_with_cfi_fake)
