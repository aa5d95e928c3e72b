"""Structural twins of Open-Sora-Plan, written from scratch from its description.

- v1.0 / v1.1, ``LatteT2V`` (Latte's layout): ``transformer_blocks`` (spatial, over ``(b f) t d``)
  and ``temporal_transformer_blocks`` (over ``(b t) f d``: sequence ``b * S + s`` holds position
  ``s``'s frames), both ada-norm-single blocks with ``attn1`` through
  ``F.scaled_dot_product_attention``; v1.1 may rotate the temporal q and k over the frames.
- v1.2, ``OpenSoraT2V``: full 3D attention; ``transformer_blocks.*.attn1`` is video-only
  self-attention over frame-major ``b (t n) c``, called with ``frame=``, ``height=``,
  ``width=`` (its 3D RoPE reads them), ``attn2`` cross-attention to the text.

Attention modules are diffusers-style (``to_q``/``to_k``/``to_v`` with bias, ``to_out`` =
[Linear, Dropout], a processor calling SDPA on ``[B, H, N, D]``). Small sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from twin_layers import RotaryEmbedding1D, TimestepEmbedder, randomise_, rope_3d


class AttnProcessor:
    """Projections, optional RoPE on q and k, SDPA on ``[B, H, N, D]``, output projection."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 frame=None, height=None, width=None):
        q, k, v = query_key_value(attn, hidden_states, encoder_hidden_states, frame, height, width)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        out = out.transpose(1, 2).flatten(2).to(q.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def query_key_value(attn, hidden_states, encoder_hidden_states=None, frame=None, height=None, width=None):
    """q, k, v ``[B, H, N, D]`` as the processor hands them to attention (after RoPE)."""
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    q, k, v = (projection(x).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
               for projection, x in ((attn.to_q, hidden_states), (attn.to_k, context), (attn.to_v, context)))
    if attn.rope == "1d":  # v1.1 temporal blocks: over the frames
        q, k = attn.rotary.rotate_queries_or_keys(q), attn.rotary.rotate_queries_or_keys(k)
    elif attn.rope == "3d":  # v1.2: over frame, row, column
        q, k = rope_3d(q, frame, height, width), rope_3d(k, frame, height, width)
    return q, k, v


class Attention(nn.Module):
    def __init__(self, query_dim: int, heads: int, cross_attention_dim: int | None = None, bias: bool = True,
                 rope: str | None = None):
        super().__init__()
        self.heads = heads
        self.rope = rope
        self.rotary = RotaryEmbedding1D(query_dim // heads) if rope == "1d" else None
        self.to_q = nn.Linear(query_dim, query_dim, bias=bias)
        self.to_k = nn.Linear(cross_attention_dim or query_dim, query_dim, bias=bias)
        self.to_v = nn.Linear(cross_attention_dim or query_dim, query_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(query_dim, query_dim, bias=True), nn.Dropout(0.0)])
        self.processor = AttnProcessor()

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **cross_attention_kwargs):
        return self.processor(self, hidden_states, encoder_hidden_states, attention_mask, **cross_attention_kwargs)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """ada-norm-single block: modulated self-attention ``attn1``, optional cross ``attn2``, FF."""

    def __init__(self, dim: int, heads: int, cross_attention_dim: int | None, rope: str | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn1 = Attention(dim, heads, rope=rope)
        self.attn2 = Attention(dim, heads, cross_attention_dim) if cross_attention_dim else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)

    def forward(self, hidden_states, encoder_hidden_states=None, timestep=None, **frame_kwargs):
        B = hidden_states.shape[0]  # hidden [B, N, C], timestep [B, 6C]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + timestep.reshape(B, 6, -1)
        ).chunk(6, dim=1)
        norm_hidden_states = self.norm1(hidden_states) * (1 + scale_msa) + shift_msa
        hidden_states = hidden_states + gate_msa * self.attn1(norm_hidden_states, attention_mask=None, **frame_kwargs)
        if self.attn2 is not None:
            hidden_states = hidden_states + self.attn2(hidden_states, encoder_hidden_states=encoder_hidden_states,
                                                       **frame_kwargs)
        norm_hidden_states = self.norm2(hidden_states) * (1 + scale_mlp) + shift_mlp
        return hidden_states + gate_mlp * self.ff(norm_hidden_states)


class _VideoTransformer(nn.Module):
    """Shared embedding and output of both twins: 2x2 patches per frame, frame-major tokens."""

    def __init__(self, in_channels: int, hidden: int, caption_channels: int):
        super().__init__()
        self.pos_embed = nn.Conv2d(in_channels, hidden, kernel_size=2, stride=2)
        self.adaln_single = TimestepEmbedder(hidden)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))
        self.caption_projection = nn.Linear(caption_channels, hidden)
        self.proj_out = nn.Linear(hidden, 4 * in_channels)

    def embed(self, hidden_states, timestep, encoder_hidden_states):
        B, C, T, H, W = hidden_states.shape  # [B, C, T, H, W] -> [B, T, S, hidden]
        frames = hidden_states.transpose(1, 2).reshape(B * T, C, H, W)
        tokens = self.pos_embed(frames).flatten(2).transpose(1, 2)
        t = self.t_block(self.adaln_single(timestep, dtype=tokens.dtype))  # [B, 6 hidden]
        return tokens.unflatten(0, (B, T)), t, self.caption_projection(encoder_hidden_states)

    def unpatchify(self, tokens, shape):  # [B, T, S, hidden] -> [B, C, T, H, W]
        B, C, T, H, W = shape
        out = self.proj_out(tokens).view(B, T, H // 2, W // 2, C, 2, 2).permute(0, 4, 1, 2, 5, 3, 6)
        return out.reshape(B, C, T, H, W)


class LatteT2V(_VideoTransformer):
    """Open-Sora-Plan v1.0 / v1.1: spatial and temporal blocks alternate."""

    def __init__(self, in_channels=4, hidden=32, heads=2, depth=2, caption_channels=16, temporal_rope=False):
        super().__init__(in_channels, hidden, caption_channels)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(hidden, heads, cross_attention_dim=hidden) for _ in range(depth)])
        self.temporal_transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(hidden, heads, None, rope="1d" if temporal_rope else None) for _ in range(depth)])

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        shape = hidden_states.shape
        tokens, t, text = self.embed(hidden_states, timestep, encoder_hidden_states)
        B, T, S, C = tokens.shape
        for spatial, temporal in zip(self.transformer_blocks, self.temporal_transformer_blocks):
            # (b f) t d: every frame's S positions, text repeated per frame
            x = spatial(tokens.reshape(B * T, S, C), text.repeat_interleave(T, dim=0), t.repeat_interleave(T, dim=0))
            # (b f) t d -> (b t) f d: every position's T frames, sequence b * S + s
            x = x.view(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)
            x = temporal(x, None, t.repeat_interleave(S, dim=0))
            tokens = x.view(B, S, T, C).transpose(1, 2)
        return (self.unpatchify(tokens, shape),)


class OpenSoraT2V(_VideoTransformer):
    """Open-Sora-Plan v1.2: full 3D attention over frame-major ``b (t n) c``."""

    def __init__(self, in_channels=4, hidden=48, heads=2, depth=2, caption_channels=16):
        super().__init__(in_channels, hidden, caption_channels)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(hidden, heads, cross_attention_dim=hidden, rope="3d") for _ in range(depth)])

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        shape = hidden_states.shape
        tokens, t, text = self.embed(hidden_states, timestep, encoder_hidden_states)
        B, T, S, C = tokens.shape
        x = tokens.reshape(B, T * S, C)
        for block in self.transformer_blocks:
            x = block(x, text, t, frame=T, height=shape[3] // 2, width=shape[4] // 2)
        return (self.unpatchify(x.view(B, T, S, C), shape),)


def build_latte(seed: int = 1, **kwargs) -> LatteT2V:
    return randomise_(LatteT2V(**kwargs), seed)


def build_v1_2(seed: int = 2, **kwargs) -> OpenSoraT2V:
    return randomise_(OpenSoraT2V(**kwargs), seed)


def inputs(batch_size: int, frames: int, generator: torch.Generator, height: int = 4, width: int = 6,
           dtype: torch.dtype = torch.float32) -> dict:
    return dict(
        hidden_states=torch.randn(batch_size, 4, frames, height, width, generator=generator).to(dtype),
        timestep=torch.full((batch_size,), 500.0),
        encoder_hidden_states=torch.randn(batch_size, 5, 16, generator=generator).to(dtype),
    )
