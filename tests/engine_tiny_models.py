"""A tiny video model whose self-attention goes through one chosen library call (flash-attn's
op, its varlen op, xformers, SageAttention, torch SDPA, flex_attention or a hand-written softmax), as test cases
of tests/seed_model_reference.py.

flash-attn is the torch.library op (tests/twin_layers.py registers it where flash-attn is not
installed). xformers and SageAttention, where not installed, are stand-in modules put in
``sys.modules`` under their real names for the duration of a test (``stand_in_packages``),
computing with SDPA: the engine finds them exactly where it finds the real ones.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.flex_attention import flex_attention

from eav_kernels.engine import AdapterSpec
from seed_model_reference import TwinCase
from twin_layers import flash_attn_func, randomise_


def _sdpa_bnhd(q, k, v, scale=None):  # [B, N, H, D] in and out
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale,
                                          enable_gqa=q.shape[2] != k.shape[2]).transpose(1, 2)


def memory_efficient_attention(query, key, value, attn_bias=None, p=0.0, scale=None, *, op=None):
    """xformers' signature on ``[B, M, H, K]``, computed by SDPA (dense biases only)."""
    return _sdpa_bnhd(query, key, value, scale)


def sageattn(q, k, v, tensor_layout="HND", is_causal=False, sm_scale=None, return_lse=False, **kwargs):
    """SageAttention's signature, computed by SDPA."""
    if tensor_layout == "NHD":
        return _sdpa_bnhd(q, k, v, sm_scale)
    return F.scaled_dot_product_attention(q, k, v, scale=sm_scale, is_causal=is_causal,
                                          enable_gqa=q.shape[1] != k.shape[1])


@contextlib.contextmanager
def stand_in_packages():
    """``xformers.ops`` and ``sageattention`` in ``sys.modules`` (stand-ins where not installed)."""
    added = []
    for name, attribute, function in (("xformers.ops", "memory_efficient_attention", memory_efficient_attention),
                                      ("sageattention", "sageattn", sageattn)):
        if name in sys.modules:
            continue
        if importlib.util.find_spec(name.partition(".")[0]) is not None:  # the real package
            importlib.import_module(name)
            continue
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        setattr(module, attribute, function)
        sys.modules[name] = module
        added.append(name)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def _flash_varlen(q, k, v):  # [B, N, H, D], every sequence packed into [B*N, H, D]
    B, N = q.shape[:2]
    starts = torch.arange(0, (B + 1) * N, N, dtype=torch.int32, device=q.device)
    packed = [x.flatten(0, 1) for x in (q, k, v)]
    out = torch.ops.flash_attn._flash_attn_varlen_forward(*packed, starts, starts, N, N, 0.0, q.shape[-1] ** -0.5,
                                                         False)[0]
    return out.view(B, N, *out.shape[1:])


def _hand_written(q, k, v):  # [B, N, H, D], key heads shared by H / Hk query heads
    q, k, v = q.transpose(1, 2), *(x.transpose(1, 2).repeat_interleave(q.shape[2] // k.shape[2], 1) for x in (k, v))
    attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    return (attn.float().softmax(-1).to(q.dtype) @ v).transpose(1, 2)


# how each layer attends, on [B, N, H, D] q, k, v (module attribute lookups happen at call time)
ATTEND = {
    "flash_attn": lambda q, k, v: flash_attn_func(q, k, v),
    "flash_attn_varlen": _flash_varlen,
    "xformers": lambda q, k, v: sys.modules["xformers.ops"].memory_efficient_attention(q, k, v),
    "sageattn_nhd": lambda q, k, v: sys.modules["sageattention"].sageattn(q, k, v, tensor_layout="NHD"),
    "sageattn_hnd": lambda q, k, v: sys.modules["sageattention"].sageattn(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2),
    "hand_written": _hand_written,
    "sdpa": _sdpa_bnhd,
    # called by the name imported above: the engine taps it in this module too
    "flex_attention": lambda q, k, v: flex_attention(*(x.transpose(1, 2) for x in (q, k, v)),
                                                     enable_gqa=q.shape[2] != k.shape[2]).transpose(1, 2),
}


class TinyAttention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, attend: str):
        super().__init__()
        self.heads, self.kv_heads, self.attend = heads, kv_heads, attend
        self.head_dim = dim // heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * kv_heads * self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def query_key_value(self, x):  # [B, N, C] -> [B, N, H, D], [B, N, Hk, D] x 2
        q = self.to_q(x).unflatten(-1, (self.heads, -1))
        k, v = self.to_kv(x).unflatten(-1, (2, self.kv_heads, -1)).unbind(2)
        return q, k, v

    def forward(self, x):  # [B, N, C] frame-major video tokens
        return self.proj(ATTEND[self.attend](*self.query_key_value(x)).flatten(2))


class TinyVideoModel(nn.Module):
    def __init__(self, attend: str, dim: int = 16, heads: int = 4, kv_heads: int = 2, depth: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList([TinyAttention(dim, heads, kv_heads, attend) for _ in range(depth)])
        self.out = nn.Linear(dim, dim)

    def forward(self, hidden_states, num_frames: int):  # [B, F*S, C]
        for block in self.blocks:
            hidden_states = hidden_states + block(hidden_states)
        return self.out(hidden_states)


SPEC = AdapterSpec(model="TinyVideoModel", self_attention=r"blocks\.\d+", text=None,
                   num_frames=lambda model, arguments: arguments["num_frames"])
FRAMES, POSITIONS = 3, 5


def _query_key(layer, args, kwargs):
    q, k, _ = layer.query_key_value(args[0])
    return q.transpose(1, 2), k.transpose(1, 2), layer.head_dim ** -0.5, FRAMES


def case(attend: str, dim: int = 16, heads: int = 4, kv_heads: int = 2) -> TwinCase:
    """The tiny model attending with ``attend``, ``heads`` query heads sharing ``kv_heads`` key
    heads of ``dim // heads`` channels."""
    def inputs(batch_size, frames, generator, dtype=torch.float32):
        return dict(hidden_states=torch.randn(batch_size, frames * POSITIONS, dim, generator=generator).to(dtype),
                    num_frames=frames)

    def build(seed=5):
        return randomise_(TinyVideoModel(attend, dim, heads, kv_heads), seed)

    return TwinCase(attend, SPEC, build, inputs, _query_key, lambda layer: layer.proj, spatial_attention=r"$^")
