"""One call's path: a validated problem, the backend for it, the kernel(s), the score.

Every public op and the diffusers adapters end here. A pure temporal problem goes to the first
backend with the fused temporal kernel (contract 2: SDPA's output and the CFI in one pass); any
other problem runs SDPA and the CFI kernel of the first backend that can (contract 1).
"""

from __future__ import annotations

import struct

import torch
import torch.nn.functional as F

from .backends import CROSS_FRAME_INTENSITY, backend_for, fused_backend_for
from .problem import AttentionProblem

__all__ = [
    "attention_with_cross_frame_intensity", "batch_mean", "enhanced_attention", "multiply_in_float32",
    "per_sample_cross_frame_intensity", "scale_rows", "score_in_place", "whole_batch_score",
]


def per_sample_cross_frame_intensity(problem: AttentionProblem, backend: str) -> torch.Tensor:
    """``[B]`` float32: the CFI of each batch element's video tokens (a constant for autograd)."""
    return backend_for(CROSS_FRAME_INTENSITY, problem, backend).cross_frame_intensity(problem)


def attention_with_cross_frame_intensity(
    problem: AttentionProblem, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out [B, H, N, Dv], cfi [B] float32)``: the attention output, not yet scaled, and the
    per-sample CFI of the video tokens; from the fused kernel when the problem is pure temporal
    and a backend has it, else SDPA (exactly ``F.scaled_dot_product_attention``) and the CFI."""
    if problem.is_pure_temporal():
        fused = fused_backend_for(problem, backend)
        if fused is not None:
            return fused.temporal_attention_with_cfi(problem)
    out = F.scaled_dot_product_attention(
        problem.query, problem.key, problem.value, problem.attn_mask, problem.dropout_p,
        problem.is_causal, scale=problem.sdpa_scale, enable_gqa=problem.enable_gqa,
    )
    return out, per_sample_cross_frame_intensity(problem, backend)


def batch_mean(cfi: torch.Tensor) -> torch.Tensor:
    """``cfi [B]`` (owned by the caller) averaged over the batch, 0-d. One element is its own
    mean: it is made 0-d in place (the same bits, and no reduction kernel nor new tensor, which
    are most of a tiny call's host time)."""
    return cfi.squeeze_(0) if cfi.shape[0] == 1 else cfi.mean()


def score_in_place(
    cfi: torch.Tensor,  # 0-d or [B] float32, owned by the caller (overwritten)
    num_frames: int,
    enhance_weight: float,
) -> torch.Tensor:
    """``cfi`` overwritten with ``max(1, cfi * (num_frames + enhance_weight))`` (the bits of
    ``api.enhance_score``, without its conversions and copies)."""
    return cfi.mul_(num_frames + enhance_weight).clamp_min_(1.0)


def enhanced_attention(problem: AttentionProblem, enhance_weight: float, backend: str) -> torch.Tensor:
    """``[B, H, N, Dv]``: the attention output with its video rows multiplied by the score of the
    whole batch's CFI; in place unless autograd needs the unscaled output."""
    out, cfi = attention_with_cross_frame_intensity(problem, backend)
    if problem.num_frames == 1:  # score is exactly 1: the output is SDPA's, untouched
        return out
    score = whole_batch_score(cfi, problem.num_frames, enhance_weight)
    return scale_rows(out, score, problem.video_start, problem.video_length, inplace=not out.requires_grad)


def whole_batch_score(
    cfi: torch.Tensor,  # [B] float32, owned by the caller (may be overwritten)
    num_frames: int,
    enhance_weight: float,
) -> torch.Tensor:
    """0-d float32: ``max(1, mean(cfi) * (num_frames + enhance_weight))``, bit for bit what
    ``score_in_place(batch_mean(cfi), ...)`` gives.

    On CPU, outside ``torch.compile``, reading the mean on the host costs nothing (no device to
    wait for), and the score is made in Python: the product of two float32 values is exact in a
    Python float, so rounding it once to float32 (``scalar_tensor``) gives the float32 product's
    bits, and the clamp commutes with that rounding; NaN stays NaN. That is one tensor op where the
    tensor path takes three (most of a small call's host time). Elsewhere the score stays on the
    device: no host sync, and a traced graph stays whole.
    """
    if cfi.is_cpu and not torch.compiler.is_compiling():
        mean = cfi.item() if cfi.shape[0] == 1 else cfi.mean().item()
        score = mean * _round_to_float32(num_frames + enhance_weight)
        return torch.scalar_tensor(1.0 if score < 1.0 else score, dtype=torch.float32)
    return score_in_place(batch_mean(cfi), num_frames, enhance_weight)


def _round_to_float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (as a float32 tensor op rounds a Python scalar)."""
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


_FLOAT32 = struct.Struct("f")


def scale_rows(
    hidden: torch.Tensor,  # [B, ..., N, ...]: token axis ``token_dim``
    factor: torch.Tensor,  # float32 0-d or [B], on hidden's device
    start: int,
    length: int,
    *,
    inplace: bool,
    token_dim: int = 2,
) -> torch.Tensor:
    """``hidden`` with tokens ``[start, start + length)`` multiplied by ``factor`` in float32."""
    tokens = hidden.shape[token_dim]
    if start == 0 and length == tokens:
        return multiply_in_float32(hidden, factor, inplace=inplace)
    video = hidden.narrow(token_dim, start, length)
    if inplace:
        multiply_in_float32(video, factor, inplace=True)
        return hidden
    scaled = multiply_in_float32(video, factor, inplace=False)
    before = hidden.narrow(token_dim, 0, start)
    after = hidden.narrow(token_dim, start + length, tokens - start - length)
    return torch.cat([before, scaled, after], dim=token_dim)


def multiply_in_float32(
    video: torch.Tensor,  # [B, ...]
    factor: torch.Tensor,  # float32, 0-d or [B], on video's device
    *,
    inplace: bool,
) -> torch.Tensor:
    """``video * factor`` with the product taken in float32 and rounded once to ``video.dtype``.

    CPU kernels read a 0-d CPU tensor as a float32 scalar: one pass, no copies (a dimensioned
    float32 factor would make them convert all of ``video`` to float32 and back, ~10x slower).
    CUDA kernels cast a dimensioned float32 factor inside the kernel, whereas a 0-d CUDA tensor
    would first be rounded to ``video.dtype``.
    """
    if video.is_cpu:
        if factor.dim() == 0:
            return video.mul_(factor) if inplace else video * factor
        parts = [v.mul_(f) if inplace else v * f for v, f in zip(video.unbind(0), factor.unbind(0))]
        return video if inplace else torch.stack(parts)
    shaped = factor.reshape((-1,) + (1,) * (video.dim() - 1))
    return video.mul_(shaped) if inplace else (video * shaped).to(video.dtype)
