"""The public ops: cross-frame intensity, the enhance score, and enhanced attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .backends import select_backend
from .validation import check_query_key, check_scale, resolve_video_tokens

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
    per_batch: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """Cross-frame intensity of the temporal attention of ``query`` and ``key``.

    For every (batch, head, spatial position) the ``num_frames`` frames form an F x F softmax of
    ``scale * q k^T`` (``scale`` defaults to ``head_dim ** -0.5``); CFI is the mean of its
    off-diagonal entries, averaged over everything. Returns a 0-d float32 tensor on the inputs'
    device, or ``[B]`` (one CFI per batch element) with ``per_batch=True``. ``num_frames == 1``
    gives 0. NaN inputs give NaN. The result is a constant for autograd (q and k are detached).
    """
    check_query_key(query, key, num_frames)
    check_scale(scale)
    scale = query.shape[-1] ** -0.5 if scale is None else float(scale)
    impl = select_backend(backend, query, key)
    per_batch_cfi = impl.per_batch_cross_frame_intensity(query.detach(), key.detach(), num_frames, scale)
    return per_batch_cfi if per_batch else per_batch_cfi.mean()


def enhance_score(
    cfi: torch.Tensor | float,  # 0-d or [B]
    num_frames: int,
    enhance_weight: float,
) -> torch.Tensor:
    """``max(1, cfi * (num_frames + enhance_weight))``, elementwise, in float32. NaN stays NaN."""
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
    per_batch: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.scaled_dot_product_attention`` unscaled, and the enhance score of its video tokens.

    Returns ``(out [B, H, N, Dv], score)``: ``score`` is 0-d float32 (``[B]`` with
    ``per_batch=True``), computed from ``query[:, :, video_tokens]`` and
    ``key[:, :, video_tokens]`` with the attention's own ``scale``. For adapters that apply the
    score somewhere else (after the output projection, as the paper's code does): see
    ``scale_video_tokens``.
    """
    check_query_key(query, key, num_frames=1, enable_gqa=enable_gqa)
    start, length = resolve_video_tokens(video_tokens, query.shape[2])
    check_query_key(
        query.narrow(2, start, length), key.narrow(2, start, length), num_frames,
        enable_gqa=enable_gqa,
    )
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
        scale=scale, enable_gqa=enable_gqa,
    )
    cfi = cross_frame_intensity(
        query.narrow(2, start, length), key.narrow(2, start, length), num_frames,
        scale=scale, per_batch=per_batch, backend=backend,
    )
    return out, enhance_score(cfi, num_frames, enhance_weight)


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
    video = hidden.narrow(token_dim, start, length)
    factor = score.to(device=hidden.device, dtype=torch.float32)
    if factor.dim() == 1 and factor.shape[0] != hidden.shape[0]:
        raise ValueError(
            f"per-batch score has {factor.shape[0]} entries for a batch of {hidden.shape[0]}"
        )
    if inplace:
        _multiply_in_float32(video, factor, inplace=True)
        return hidden
    scaled = _multiply_in_float32(video, factor, inplace=False)
    before = hidden.narrow(token_dim, 0, start)
    after = hidden.narrow(token_dim, start + length, hidden.shape[token_dim] - start - length)
    return torch.cat([before, scaled, after], dim=token_dim)


def _multiply_in_float32(
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
    if video.device.type == "cpu":
        if factor.dim() == 0:
            return video.mul_(factor) if inplace else video * factor
        parts = [v.mul_(f) if inplace else v * f for v, f in zip(video.unbind(0), factor.unbind(0))]
        return video if inplace else torch.stack(parts)
    shaped = factor.reshape((-1,) + (1,) * (video.dim() - 1))
    return video.mul_(shaped) if inplace else (video * shaped).to(video.dtype)


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
    tokens; other tokens (text) are attended normally and never scaled. Returns ``[B, H, N, Dv]``.
    """
    fused = _fused_temporal_attention(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
        num_frames=num_frames, enhance_weight=enhance_weight, video_tokens=video_tokens,
        backend=backend,
    )
    if fused is not None:
        return fused
    out, score = attention_with_enhance_score(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
        num_frames=num_frames, enhance_weight=enhance_weight, video_tokens=video_tokens,
        backend=backend,
    )
    if num_frames == 1:  # score is exactly 1: the output is SDPA's, untouched
        return out
    return scale_video_tokens(
        out, score, video_tokens, token_dim=2, inplace=not out.requires_grad
    )


def _fused_temporal_attention(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    value: torch.Tensor,  # [B, Hk, N, Dv]
    attn_mask: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
    *,
    num_frames: int,
    enhance_weight: float,
    video_tokens: slice | None,
    backend: str,
) -> torch.Tensor | None:
    """``enhanced_sdpa`` in one pass when the call is pure temporal attention: the compiled op
    ``torch.ops.eav.temporal_attention_with_cfi`` when ``backend`` resolves to "cuda", the Triton
    kernel when it resolves to "triton"; any other backend takes the general path.

    Pure temporal attention: every token is video and the sequence is the frames (``N ==
    num_frames``, a batch of B*S sequences as in Latte's temporal blocks), no mask, no dropout,
    not causal, no autograd. Returns the enhanced output ``[B, H, N, Dv]``, or None to take the
    general path (which also reports invalid input).
    """
    tensors = (query, key, value)
    if not all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in tensors):
        return None
    tokens = query.shape[2]
    if (attn_mask is not None or dropout_p != 0.0 or is_causal or num_frames < 2
            or tokens != num_frames or key.shape[2] != tokens or value.shape[:3] != key.shape[:3]
            or not query.dtype == key.dtype == value.dtype):
        return None
    if video_tokens is not None and resolve_video_tokens(video_tokens, tokens) != (0, tokens):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None  # the fused kernels are forward-only
    check_query_key(query, key, num_frames, enable_gqa=enable_gqa)
    check_scale(scale)
    name = select_backend(backend, query, key).name
    if name == "cuda":
        scale = query.shape[-1] ** -0.5 if scale is None else float(scale)
        out, _, per_sequence_cfi = torch.ops.eav.temporal_attention_with_cfi(query, key, value, scale)
    elif name == "triton":
        from .triton_kernels.temporal_attention import temporal_attention_with_cfi

        out, _, per_sequence_cfi = temporal_attention_with_cfi(query, key, value, scale)
    else:
        return None
    score = enhance_score(per_sequence_cfi.mean(), num_frames, enhance_weight)
    return scale_video_tokens(out, score, token_dim=2, inplace=True)
