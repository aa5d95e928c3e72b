"""A structural twin of Open-Sora v1.2's STDiT3, written from scratch from its description.

Same module names and layout: ``spatial_blocks`` and ``temporal_blocks`` (interleaved), each an
``STDiT3Block`` with ``norm1``, ``attn``, ``cross_attn``, ``norm2``, ``mlp`` and a
``scale_shift_table``; the block rearranges ``B (T S) C -> (B S) T C`` (temporal) or
``-> (B T) S C`` (spatial) around ``self.attn(x)`` and adds ``gate * x_attn`` to the residual.
``Attention``: ``qkv`` Linear with bias, per-head RMSNorm ``q_norm``/``k_norm``, 1-D RoPE over
the frames (temporal blocks, ``rotary_emb``), then ``q * scale``, ``(q @ kᵀ).float().softmax(-1)``
cast back, ``@ v``, and ``proj`` (Linear with bias). There is no SDPA call; the flash-attn path
is taken only when enabled and ``N > B``. Small sizes; the real model is 28 x 2 blocks, hidden
1152, 16 heads.
"""

from __future__ import annotations

import torch
from torch import nn

from twin_layers import RMSNorm, RotaryEmbedding1D, TimestepEmbedder, flash_attn_func, randomise_


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, qk_norm: bool = True,
                 rope=None, enable_flash_attn: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.enable_flash_attn = enable_flash_attn
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)
        self.rope = rope is not None
        if self.rope:
            self.rotary_emb = rope

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, C] -> [B, N, C]
        B, N, C = x.shape
        use_flash = self.enable_flash_attn and N > B
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, H, N, D]
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope:
            q, k = self.rotary_emb(q), self.rotary_emb(k)
        if use_flash:
            x = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=self.scale)
        else:
            dtype = q.dtype
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.to(torch.float32).softmax(dim=-1).to(dtype)
            x = (self.attn_drop(attn) @ v).transpose(1, 2)
        return self.proj_drop(self.proj(x.reshape(B, N, C)))


class MultiHeadCrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # [B, N, C], [B, L, C]
        B, N, C = x.shape
        q = self.q_linear(x).view(B, N, self.num_heads, -1).transpose(1, 2)
        k, v = self.kv_linear(y).view(B, y.shape[1], 2, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def t2i_modulate(x, shift, scale):
    return x * (1 + scale) + shift


class STDiT3Block(nn.Module):
    def __init__(self, hidden: int, num_heads: int, temporal: bool, rope=None, enable_flash_attn=False):
        super().__init__()
        self.temporal = temporal
        self.norm1 = nn.LayerNorm(hidden, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(hidden, num_heads, rope=rope, enable_flash_attn=enable_flash_attn)
        self.cross_attn = MultiHeadCrossAttention(hidden, num_heads)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(hidden)
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden) / hidden ** 0.5)

    def forward(self, x, y, t, T, S):  # x [B, T*S, C] frame-major, y [B, L, C], t [B, 6C]
        B = x.shape[0]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + t.reshape(B, 6, -1)
        ).chunk(6, dim=1)
        x_m = t2i_modulate(self.norm1(x), shift_msa, scale_msa)
        C = x.shape[-1]
        if self.temporal:  # B (T S) C -> (B S) T C: sequence b * S + s holds position s's frames
            x_m = x_m.view(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)
            x_m = self.attn(x_m)
            x_m = x_m.view(B, S, T, C).transpose(1, 2).reshape(B, T * S, C)
        else:  # B (T S) C -> (B T) S C
            x_m = self.attn(x_m.reshape(B * T, S, C)).reshape(B, T * S, C)
        x = x + gate_msa * x_m
        x = x + self.cross_attn(x, y)
        x_m = t2i_modulate(self.norm2(x), shift_mlp, scale_mlp)
        return x + gate_mlp * self.mlp(x_m)


class STDiT3(nn.Module):
    def __init__(self, in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2,
                 caption_channels=16, enable_flash_attn=False):
        super().__init__()
        self.patch_size = patch_size
        self.out_channels = in_channels
        self.x_embedder = nn.Conv3d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))
        self.y_embedder = nn.Linear(caption_channels, hidden_size)
        self.rope = RotaryEmbedding1D(hidden_size // num_heads)
        self.spatial_blocks = nn.ModuleList(
            [STDiT3Block(hidden_size, num_heads, temporal=False, enable_flash_attn=enable_flash_attn)
             for _ in range(depth)])
        self.temporal_blocks = nn.ModuleList(
            [STDiT3Block(hidden_size, num_heads, temporal=True, rope=self.rope.rotate_queries_or_keys,
                         enable_flash_attn=enable_flash_attn)
             for _ in range(depth)])
        self.final_layer = nn.Linear(hidden_size, in_channels * patch_size[0] * patch_size[1] * patch_size[2])

    def forward(self, x, timestep, y, mask=None, x_mask=None, fps=None, height=None, width=None):
        # x [B, C, Tx, Hx, Wx] latents, timestep [B], y [B, 1, L, caption_channels]
        B, _, Tx, Hx, Wx = x.shape
        pt, ph, pw = self.patch_size
        T, H, W = Tx // pt, Hx // ph, Wx // pw
        S = H * W
        tokens = self.x_embedder(x).flatten(2).transpose(1, 2)  # [B, T*S, C], frame-major
        t = self.t_embedder(timestep, dtype=tokens.dtype)
        t_mlp = self.t_block(t)
        y = self.y_embedder(y.squeeze(1))
        for spatial_block, temporal_block in zip(self.spatial_blocks, self.temporal_blocks):
            tokens = spatial_block(tokens, y, t_mlp, T, S)
            tokens = temporal_block(tokens, y, t_mlp, T, S)
        out = self.final_layer(tokens)  # [B, T*S, C_out * pt * ph * pw]
        out = out.view(B, T, H, W, -1, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return out.reshape(B, -1, Tx, Hx, Wx).float()


def build(seed: int = 0, **kwargs) -> STDiT3:
    return randomise_(STDiT3(**kwargs), seed)


def inputs(batch_size: int, frames: int, generator: torch.Generator, height: int = 4, width: int = 6,
           dtype: torch.dtype = torch.float32) -> dict:
    """Forward kwargs: ``frames`` latent frames of ``height x width`` (S = h*w/4 positions)."""
    return dict(
        x=torch.randn(batch_size, 4, frames, height, width, generator=generator).to(dtype),
        timestep=torch.full((batch_size,), 500.0),
        y=torch.randn(batch_size, 1, 5, 16, generator=generator).to(dtype),
    )


def query_key(attn: Attention, x: torch.Tensor  # [B', N, C]: the layer's input
              ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """q, k ``[B', H, N, D]`` as the layer hands them to attention, recomputed from its own
    submodules (qkv, q_norm, k_norm, rotary_emb), and its scale."""
    B, N, C = x.shape
    q, k, _ = attn.qkv(x).view(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if attn.rope:
        q, k = attn.rotary_emb(q), attn.rotary_emb(k)
    return q, k, attn.scale
