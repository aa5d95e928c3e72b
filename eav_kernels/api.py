"""The public ops: cross-frame intensity, the enhance score, and enhanced attention.

Each validates its arguments once into an ``AttentionProblem`` and hands it to ``dispatch.py``.
"""

from __future__ import annotations

import torch

from . import dispatch
from ._deprecation import renamed_keyword
from .problem import attention_problem, cross_frame_problem
from .validation import check_enhance_weight, resolve_video_tokens

__all__ = [
    "cross_frame_intensity",
    "enhance_score",
    "attention_with_enhance_score",
    "scale_video_tokens",
    "enhanced_sdpa",
]


def cross_frame_intensity(
    query: torch.Tensor,  # [B, H, F*S, D] video tokens, frame-major (token t*S + s), any strides
    key: torch.Tensor,  # [B, Hk, F*S, D], H % Hk == 0 (key heads shared as in SDPA's enable_gqa)
    num_frames: int,
    *,
    scale: float | None = None,
    per_sample: bool = False,
    backend: str = "auto",
    per_batch: bool | None = None,
) -> torch.Tensor:
    """Cross-frame intensity of the temporal attention of ``query`` and ``key``.

    For every (batch, head, spatial position) the ``num_frames`` frames form an F x F softmax of
    ``scale * q k^T`` (``scale`` defaults to ``head_dim ** -0.5``); CFI is the mean of its
    off-diagonal entries, averaged over everything. Returns a 0-d float32 tensor on the inputs'
    device, or ``[B]`` (one CFI per batch element) with ``per_sample=True``. ``num_frames == 1``
    gives 0. NaN inputs give NaN. The result is a constant for autograd (q and k are detached).
    ``per_batch`` is the deprecated spelling of ``per_sample``.
    """
    if per_batch is not None:
        per_sample = renamed_keyword("per_batch", per_batch, "per_sample", per_sample, False)
    problem = cross_frame_problem(query, key, num_frames, scale)
    cfi = dispatch.per_sample_cross_frame_intensity(problem, backend)
    return cfi if per_sample else dispatch.batch_mean(cfi)


def enhance_score(
    cfi: torch.Tensor | float,  # 0-d or [B]
    num_frames: int,
    enhance_weight: float,
) -> torch.Tensor:
    """``max(1, cfi * (num_frames + enhance_weight))``, elementwise, in float32. A NaN CFI gives a
    NaN score; a NaN or infinite ``enhance_weight`` is a ValueError."""
    check_enhance_weight(enhance_weight)
    cfi = torch.as_tensor(cfi, dtype=torch.float32)
    return (cfi.to(torch.float32) * (num_frames + enhance_weight)).clamp(min=1.0)


def attention_with_enhance_score(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    value: torch.Tensor,  # [B, Hk, N, Dv]
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    num_frames: int,
    enhance_weight: float,
    video_tokens: slice | None = None,
    per_sample: bool = False,
    backend: str = "auto",
    per_batch: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.scaled_dot_product_attention`` unscaled, and the enhance score of its video tokens.

    Returns ``(out [B, H, N, Dv], score)``: ``score`` is 0-d float32 (``[B]`` with
    ``per_sample=True``), computed from ``query[:, :, video_tokens]`` and
    ``key[:, :, video_tokens]`` with the attention's own ``scale``. For adapters that apply the
    score somewhere else (after the output projection, as the paper's code does): see
    ``scale_video_tokens``. ``per_batch`` is the deprecated spelling of ``per_sample``.
    """
    if per_batch is not None:
        per_sample = renamed_keyword("per_batch", per_batch, "per_sample", per_sample, False)
    check_enhance_weight(enhance_weight)
    problem = attention_problem(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                                num_frames, video_tokens)
    out, cfi = dispatch.attention_with_cross_frame_intensity(problem, backend)
    return out, dispatch.score_in_place(cfi if per_sample else dispatch.batch_mean(cfi), num_frames,
                                        enhance_weight)


def scale_video_tokens(
    hidden: torch.Tensor,  # [B, ..., N, ...]: token axis ``token_dim``
    score: torch.Tensor,  # 0-d, or [B] (one score per batch element)
    video_tokens: slice | None = None,
    *,
    token_dim: int,
    inplace: bool = False,
) -> torch.Tensor:
    """``hidden`` with its video tokens multiplied by ``score``; every other token untouched.

    The product is taken in float32 and rounded once to ``hidden.dtype``. With ``inplace=True``
    ``hidden`` itself is updated (only for tensors the caller owns and autograd does not need).
    """
    token_dim = token_dim % hidden.dim()
    start, length = resolve_video_tokens(video_tokens, hidden.shape[token_dim])
    factor = score.to(device=hidden.device, dtype=torch.float32)
    if factor.dim() == 1 and factor.shape[0] != hidden.shape[0]:
        raise ValueError(
            f"per-batch score has {factor.shape[0]} entries for a batch of {hidden.shape[0]}"
        )
    return dispatch.scale_rows(hidden, factor, start, length, inplace=inplace, token_dim=token_dim)


def enhanced_sdpa(
    query: torch.Tensor,  # [B, H, N, D], any strides ([B, N, H, D] transposed views welcome)
    key: torch.Tensor,  # [B, Hk, N, D]
    value: torch.Tensor,  # [B, Hk, N, Dv]
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    num_frames: int,
    enhance_weight: float,
    video_tokens: slice | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Enhance-A-Video attention: ``F.scaled_dot_product_attention`` with the rows of the video
    tokens multiplied by ``max(1, CFI * (num_frames + enhance_weight))``.

    ``video_tokens`` (a slice of the token axis, ``None`` = all) holds the frame-major video
    tokens; other tokens (text) are attended normally and never scaled. Pure temporal attention
    (every token is video, ``N == num_frames``, no mask, dropout or autograd) runs the fused
    temporal kernel of the first backend that has one for the inputs (CUDA, Triton). Returns
    ``[B, H, N, Dv]``.
    """
    check_enhance_weight(enhance_weight)
    problem = attention_problem(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                                num_frames, video_tokens)
    return dispatch.enhanced_attention(problem, enhance_weight, backend)
