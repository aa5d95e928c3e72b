"""Tiny stand-ins of the ComfyUI video models the node enhances through the attention override:
LTXV, Cosmos 1, CogVideoX and Kandinsky 5. Each calls ``optimized_attention`` with its family's
argument layout (comfy/ldm/lightricks, cosmos, cogvideo, kandinsky5) and registers its output
projection under the real model's module path. A latent ``[B, C, T, H, W]`` becomes frame-major
tokens (patch 1x1x1 for LTXV, 1x2x2 otherwise). ``reference`` on an attention module: as in
comfyui_standin_models.py, ``fn(module, q, k, out, transformer_options)`` with q/k
``[B, heads, L, D]`` and ``out`` ``[B, L, heads*D]``, returning the projected ``[B, L, C]``.
"""

from __future__ import annotations

import torch
from torch import nn

from comfyui_standins import diffusion_model_wrappers, optimized_attention, run_wrapped


class FamilyAttention(nn.Module):
    """Self- (``context is None``) or cross-attention calling ``optimized_attention`` in ``style``:
    ``"tokens"`` (``[B, L, heads*D]``, heads positional: LTXV), ``"tokens_kw"`` (heads keyword:
    CogVideoX), ``"heads_views"`` (``[B, heads, L, D]`` transposed views, heads keyword: Kandinsky 5),
    ``"cosmos"`` (``[B, heads, L, D]``, ``skip_output_reshape``; hidden states ``[L, B, C]``).
    The projection is registered as ``projection_name`` (``to_out`` is a Sequential, as in LTXV
    and Cosmos)."""

    def __init__(self, dim: int, heads: int, style: str, projection_name: str = "to_out", bias: bool = True):
        super().__init__()
        self.heads, self.style, self.projection_name = heads, style, projection_name
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim) for _ in range(3))
        linear = nn.Linear(dim, dim, bias=bias)
        self.add_module(projection_name, nn.Sequential(linear) if projection_name == "to_out" else linear)
        self.reference = None

    def project(self, out):  # [B, L, C] ([L, B, C] for cosmos)
        return getattr(self, self.projection_name)(out)

    def forward(self, x, context=None, transformer_options={}):
        tokens_first = self.style == "cosmos"  # [L, B, C] in and out
        if tokens_first:
            x, context = x.transpose(0, 1), None if context is None else context.transpose(0, 1)
        source = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(source), self.to_v(source)  # [B, L, heads*D]
        if context is None and transformer_options.get("stg_skip_self_attn", False):  # LTX-2's STG
            return self.project(v)
        split = [t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v)]  # [B, heads, L, D]
        if self.style == "tokens":
            out = optimized_attention(q, k, v, self.heads, attn_precision=None, transformer_options=transformer_options)
        elif self.style == "tokens_kw":
            out = optimized_attention(q, k, v, heads=self.heads, transformer_options=transformer_options)
        elif self.style == "heads_views":
            out = optimized_attention(*split, heads=self.heads, skip_reshape=True, transformer_options=transformer_options)
        else:
            out = optimized_attention(*split, self.heads, skip_reshape=True, mask=None, skip_output_reshape=True,
                                      transformer_options=transformer_options).transpose(1, 2).flatten(2)
        if self.reference is not None and context is None:
            out = self.reference(self, split[0], split[1], out, transformer_options)
            return out.transpose(0, 1) if tokens_first else out
        return self.project(out.transpose(0, 1)) if tokens_first else self.project(out)


def _container(**children: nn.Module) -> nn.Module:
    module = nn.Module()
    for name, child in children.items():
        module.add_module(name, child)
    return module


class _VideoModel(nn.Module):
    """Latent -> frame-major tokens ``[B, F*S, dim]``, blocks, tokens out (through the
    ``DIFFUSION_MODEL`` wrappers, ``transformer_options`` last positional)."""

    patch = (1, 2, 2)

    def __init__(self, channels: int = 4, dim: int = 24):
        super().__init__()
        self.patch_spatial, self.patch_temporal = self.patch[1], self.patch[0]
        self.embed = nn.Conv3d(channels, dim, self.patch, self.patch)

    def forward(self, x, timestep, context, *args, transformer_options={}, **kwargs):
        return run_wrapped(self._forward, diffusion_model_wrappers(transformer_options), x, timestep, context,
                           *args, transformer_options, **kwargs)

    def tokens(self, x):
        return self.embed(x).flatten(2).transpose(1, 2)


class LTXVModel(_VideoModel):
    """``transformer_blocks.{i}.attn1`` (self) and ``attn2`` (cross), no ``block_index``."""

    patch = (1, 1, 1)

    def __init__(self, dim: int = 24, heads: int = 3, depth: int = 2):
        super().__init__(dim=dim)
        self.transformer_blocks = nn.ModuleList(
            _container(attn1=FamilyAttention(dim, heads, "tokens"), attn2=FamilyAttention(dim, heads, "tokens"))
            for _ in range(depth))

    def forward(self, x, timestep, context, attention_mask=None, frame_rate=25, transformer_options={},
                keyframe_idxs=None, denoise_mask=None, **kwargs):
        return run_wrapped(self._forward, diffusion_model_wrappers(transformer_options), x, timestep, context,
                           attention_mask, frame_rate, transformer_options, keyframe_idxs, denoise_mask=denoise_mask)

    def _forward(self, x, timestep, context, attention_mask, frame_rate, transformer_options, keyframe_idxs,
                 denoise_mask=None):
        x = self.tokens(x)
        for block in self.transformer_blocks:
            x = x + block.attn1(x, transformer_options=transformer_options)
            x = x + block.attn2(x, context, transformer_options=transformer_options)
        return x


class LTXAVModel(LTXVModel):
    """LTX-2: a ``[video [B, C, T, H, W], audio [B, L_audio, 4]]`` latent; each block also runs
    ``audio_attn1``, an audio self-attention of another width; the blocks listed in
    ``transformer_options["stg_self_attn_blocks"]`` pass v through instead of attending (STG).
    Returns ``(video, audio)`` tokens."""

    def __init__(self, dim: int = 24, heads: int = 3, depth: int = 2, audio_dim: int = 16, audio_heads: int = 2):
        super().__init__(dim=dim, heads=heads, depth=depth)
        for block in self.transformer_blocks:
            block.add_module("audio_attn1", FamilyAttention(audio_dim, audio_heads, "tokens"))
        self.audio_in = nn.Linear(4, audio_dim)

    def _forward(self, x, timestep, context, attention_mask, frame_rate, transformer_options, keyframe_idxs,
                 denoise_mask=None):
        video, audio = self.tokens(x[0]), self.audio_in(x[1])
        for i, block in enumerate(self.transformer_blocks):
            options = transformer_options
            if i in transformer_options.get("stg_self_attn_blocks", ()):  # STG: attn1 passes v through
                options = {**transformer_options, "stg_skip_self_attn": True}
            video = video + block.attn1(video, transformer_options=options)
            video = video + block.attn2(video, context, transformer_options=transformer_options)
            audio = audio + block.audio_attn1(audio, transformer_options=transformer_options)
        return video, audio


class GeneralDIT(_VideoModel):
    """Cosmos 1: ``blocks.block{n}.blocks.0.block.attn`` self-attention (projection without bias),
    ``blocks.1`` cross-attention, hidden states ``[L, B, C]``, no ``block_index``."""

    def __init__(self, dim: int = 24, heads: int = 3, depth: int = 2):
        super().__init__(dim=dim)
        self.blocks = nn.ModuleDict({
            f"block{n}": _container(blocks=nn.ModuleList([
                _container(block=_container(attn=FamilyAttention(dim, heads, "cosmos", bias=False))),
                _container(block=_container(attn=FamilyAttention(dim, heads, "cosmos", bias=False)))]))
            for n in range(depth)})

    def _forward(self, x, timestep, context, transformer_options):
        x, context = self.tokens(x).transpose(0, 1), context.transpose(0, 1)  # [L, B, C]
        for block in self.blocks.values():
            x = x + block.blocks[0].block.attn(x, transformer_options=transformer_options)
            x = x + block.blocks[1].block.attn(x, context, transformer_options=transformer_options)
        return x.transpose(0, 1)


class CogVideoXTransformer3DModel(_VideoModel):
    """``blocks.{i}``: joint ``[text | video]`` self-attention projected by ``attn_out``, no
    ``block_index``."""

    def __init__(self, dim: int = 24, heads: int = 3, depth: int = 2):
        super().__init__(dim=dim)
        self.patch_size, self.patch_size_t = 2, None
        self.blocks = nn.ModuleList(FamilyAttention(dim, heads, "tokens_kw", "attn_out") for _ in range(depth))

    def _forward(self, x, timestep, context, transformer_options):
        x = self.tokens(x)
        for block in self.blocks:
            joint = torch.cat([context, x], dim=1)
            joint = joint + block(joint, transformer_options=transformer_options)
            context, x = joint[:, :context.shape[1]], joint[:, context.shape[1]:]
        return x


class Kandinsky5(_VideoModel):
    """Text blocks (self-attention, no ``block_index``) then ``visual_transformer_blocks.{i}``:
    ``self_attention`` (projection ``out_layer``) and ``cross_attention``, with ``block_index``."""

    def __init__(self, dim: int = 24, heads: int = 3, depth: int = 2):
        super().__init__(dim=dim)
        self.patch_size = self.patch
        self.text_transformer_blocks = nn.ModuleList([FamilyAttention(dim, heads, "heads_views", "out_layer")])
        self.visual_transformer_blocks = nn.ModuleList(
            _container(self_attention=FamilyAttention(dim, heads, "heads_views", "out_layer"),
                       cross_attention=FamilyAttention(dim, heads, "heads_views", "out_layer"))
            for _ in range(depth))

    def _forward(self, x, timestep, context, transformer_options):
        for block in self.text_transformer_blocks:
            context = context + block(context, transformer_options=transformer_options)
        x = self.tokens(x)
        for i, block in enumerate(self.visual_transformer_blocks):
            transformer_options["block_index"] = i
            x = x + block.self_attention(x, transformer_options=transformer_options)
            x = x + block.cross_attention(x, context, transformer_options=transformer_options)
        return x
