"""Layers shared by the seed-model twins (tests/twin_open_sora.py, tests/twin_open_sora_plan.py),
written from scratch from the models' published descriptions: per-head RMSNorm, rotary
embeddings (1-D over frames, 3-D over frame/height/width), timestep embedding, and a stand-in
for flash-attn's ``flash_attn_func``.
"""

from __future__ import annotations

import importlib.util
import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMSNorm over the last axis (head_dim for per-head QK-norm), computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., dim]
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:  # [..., D]: (x0, x1) pairs -> (-x1, x0)
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def rotary_angles(positions: torch.Tensor, dim: int, theta: float = 10000.0) -> torch.Tensor:
    """``[len(positions), dim]`` angles, each frequency repeated for its pair of channels."""
    frequencies = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    return (positions.float()[:, None] * frequencies[None]).repeat_interleave(2, dim=-1)


class RotaryEmbedding1D:
    """1-D RoPE over the sequence axis -2 (Open-Sora's temporal blocks: the frames)."""

    def __init__(self, dim: int):
        self.dim = dim

    def rotate_queries_or_keys(self, x: torch.Tensor) -> torch.Tensor:  # [..., N, D]
        angles = rotary_angles(torch.arange(x.shape[-2]), self.dim).to(x.device)
        return (x * angles.cos() + rotate_pairs(x) * angles.sin()).to(x.dtype)


def rope_3d(x: torch.Tensor,  # [B, H, T*h*w, D], frame-major
            frame: int, height: int, width: int) -> torch.Tensor:
    """3-D RoPE: head_dim split in three equal parts rotated by frame, row and column."""
    part = x.shape[-1] // 3
    grid = torch.stack(torch.meshgrid(torch.arange(frame), torch.arange(height), torch.arange(width),
                                      indexing="ij"), dim=-1).reshape(-1, 3)  # [T*h*w, 3]
    angles = torch.cat([rotary_angles(grid[:, axis], part) for axis in range(3)], dim=-1).to(x.device)
    return (x * angles.cos() + rotate_pairs(x) * angles.sin()).to(x.dtype)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden: int, frequencies: int = 32):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:  # [B] -> [B, C]
        half = self.frequencies // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        angles = timestep.float()[:, None] * frequencies[None]
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=-1).to(dtype))


def randomise_(model: nn.Module, seed: int) -> nn.Module:
    """Every parameter random (zero-initialised gates would make an equality test blind)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            scale = 1 / math.sqrt(parameter[0].numel()) if parameter.dim() >= 2 else 0.5
            parameter.copy_(noise * scale)
    return model.eval()


# ---- flash-attn ------------------------------------------------------------------------------
# flash-attn (>= 2.6) defines flash_attn_func over the torch.library op
# flash_attn::_flash_attn_forward. Where flash-attn is not installed, the same op is registered
# here with the same schema, computed on CPU by SDPA, so code calling it runs unchanged.
FLASH_ATTN_INSTALLED = importlib.util.find_spec("flash_attn") is not None

if not FLASH_ATTN_INSTALLED and not hasattr(torch.ops.flash_attn, "_flash_attn_forward"):

    @torch.library.custom_op("flash_attn::_flash_attn_forward", mutates_args=())
    def _flash_attn_forward(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float, softmax_scale: float,
        causal: bool, window_size_left: int, window_size_right: int, softcap: float,
        alibi_slopes: torch.Tensor | None, return_softmax: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = F.scaled_dot_product_attention(  # [B, N, H, D] in, [B, N, H, D] out
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=softmax_scale,
            is_causal=causal, enable_gqa=q.shape[2] != k.shape[2],
        ).transpose(1, 2).contiguous()
        lse = q.new_zeros(q.shape[0], q.shape[2], q.shape[1], dtype=torch.float32)
        return out, lse, q.new_empty(0), torch.zeros(2, dtype=torch.int64)

    @_flash_attn_forward.register_fake
    def _(q, k, v, dropout_p, softmax_scale, causal, window_size_left, window_size_right, softcap,
          alibi_slopes, return_softmax):
        return (torch.empty_like(q), q.new_empty(q.shape[0], q.shape[2], q.shape[1], dtype=torch.float32),
                q.new_empty(0), q.new_empty(2, dtype=torch.int64))

    @torch.library.custom_op("flash_attn::_flash_attn_varlen_forward", mutates_args=())
    def _flash_attn_varlen_forward(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
        cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, dropout_p: float,
        softmax_scale: float, causal: bool, window_size_left: int = -1, window_size_right: int = -1,
        softcap: float = 0.0, alibi_slopes: torch.Tensor | None = None, return_softmax: bool = False,
        block_table: torch.Tensor | None = None, leftpad_k: torch.Tensor | None = None,
        seqused_k: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        starts = cu_seqlens_q.tolist()
        out = torch.cat([  # [total, H, D]: each packed sequence attends within itself
            F.scaled_dot_product_attention(
                q[a:b].transpose(0, 1), k[a:b].transpose(0, 1), v[a:b].transpose(0, 1),
                scale=softmax_scale, is_causal=causal, enable_gqa=q.shape[1] != k.shape[1],
            ).transpose(0, 1)
            for a, b in zip(starts[:-1], starts[1:])
        ])
        lse = q.new_zeros(q.shape[1], q.shape[0], dtype=torch.float32)
        return out, lse, q.new_empty(0), torch.zeros(2, dtype=torch.int64)


def flash_attn_func(q: torch.Tensor,  # [B, N, H, D]
                    k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0,
                    softmax_scale: float | None = None, causal: bool = False) -> torch.Tensor:
    """flash-attn's ``flash_attn_func`` (forward), over its op: ``[B, N, H, D]``."""
    if FLASH_ATTN_INSTALLED:
        from flash_attn import flash_attn_func as installed

        return installed(q, k, v, dropout_p=dropout_p, softmax_scale=softmax_scale, causal=causal)
    scale = q.shape[-1] ** -0.5 if softmax_scale is None else softmax_scale
    return torch.ops.flash_attn._flash_attn_forward(q, k, v, dropout_p, scale, causal, -1, -1, 0.0, None, False)[0]
