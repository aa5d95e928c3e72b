"""Tiny stand-ins of ComfyUI's native Wan and HunyuanVideo that call the hooks literally
(argument shapes, dict keys, call order: see comfyui_standins.py). Random weights, float32
unless ``.to(dtype)``.

``reference``: a test may set ``attention.reference = fn`` on the attention modules of a separate
copy of a model; the module then returns ``fn(module, q, k, out, transformer_options)`` (q, k as
attention got them, ``[B, heads, L, D]``; ``out`` the attention output ``[B, L, C]``) instead of
running the hooks and its projection: the test's independent expected output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comfyui_standins import diffusion_model_wrappers, flux_apply_rope, flux_attention, optimized_attention, \
    rotate, rotation_matrices, run_wrapped


def _block_options(transformer_options: dict, index: int, count: int, block_type: str) -> None:
    transformer_options["total_blocks"] = count
    transformer_options["block_type"] = block_type
    transformer_options["block_index"] = index


def _run_block(transformer_options: dict, key: tuple, args: dict, original) -> dict:
    """``patches_replace["dit"][key](args, {"original_block": original})`` when a node registered
    one (skip-layer guidance returns ``args``: the block is skipped), else ``original(args)``."""
    replace = transformer_options.get("patches_replace", {}).get("dit", {})
    return replace[key](args, {"original_block": original}) if key in replace else original(args)


# ---- Wan ---------------------------------------------------------------------------------------


class WanSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.num_heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.reference = None

    def forward(self, x, freqs, transformer_options={}):  # x [B, L, C], freqs [1, L, 1, D/2, 2, 2]
        patches = transformer_options.get("patches", {})
        b, s, n, d = *x.shape[:2], self.num_heads, self.head_dim
        q = rotate(self.q(x).view(b, s, n, d), freqs)
        k = rotate(self.k(x).view(b, s, n, d), freqs)
        x = optimized_attention(q.view(b, s, n * d), k.view(b, s, n * d), self.v(x).view(b, s, n * d),
                                heads=self.num_heads, transformer_options=transformer_options)
        if self.reference is not None:
            return self.reference(self, q.transpose(1, 2), k.transpose(1, 2), x, transformer_options)
        if "attn1_patch" in patches:
            for p in patches["attn1_patch"]:
                x = p({"x": x, "q": q, "k": k, "transformer_options": transformer_options})
        return self.o(x)


class WanAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = WanSelfAttention(dim, heads)
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)) \
            if ffn else None

    def forward(self, x, freqs, transformer_options={}):
        x = x + self.self_attn(self.norm1(x), freqs, transformer_options=transformer_options)
        return x if self.ffn is None else x + self.ffn(x)


class WanModel(nn.Module):
    """Latent ``[B, C, T, H, W]`` -> hidden tokens ``[B, T*H/2*W/2, dim]`` (patch (1, 2, 2)).
    ``vace_layers``: main blocks followed by a VACE hint block (a ``WanAttentionBlock`` on its own
    tokens, run with the main block's ``block_index``, its output added to the main stream)."""

    def __init__(self, channels: int = 4, dim: int = 24, heads: int = 3, depth: int = 2, ffn: bool = True,
                 vace_layers: tuple[int, ...] = ()):
        super().__init__()
        self.patch_size = (1, 2, 2)
        self.patch_embedding = nn.Conv3d(channels, dim, self.patch_size, self.patch_size)
        self.blocks = nn.ModuleList(WanAttentionBlock(dim, heads, ffn) for _ in range(depth))
        self.vace_layers = vace_layers
        self.vace_blocks = nn.ModuleList(WanAttentionBlock(dim, heads, ffn) for _ in vace_layers)
        self.head_dim = dim // heads

    def forward(self, x, timestep, context, clip_fea=None, time_dim_concat=None, transformer_options={}, **kwargs):
        return run_wrapped(self._forward, diffusion_model_wrappers(transformer_options),
                           x, timestep, context, clip_fea, time_dim_concat, transformer_options, **kwargs)

    def _forward(self, x, timestep, context, clip_fea=None, time_dim_concat=None, transformer_options={},
                 reference_latent=None):
        x = self.patch_embedding(x)
        transformer_options["grid_sizes"] = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)  # [B, F*S, dim], frame-major
        if reference_latent is not None:  # one reference frame's tokens before the video
            x = torch.cat([self.patch_embedding(reference_latent).flatten(2).transpose(1, 2), x], dim=1)
        freqs = rotation_matrices(torch.arange(x.shape[1]), self.head_dim)[None, :, None]
        hints = x.flip(1)  # the VACE stream's tokens
        for i, block in enumerate(self.blocks):
            _block_options(transformer_options, i, len(self.blocks), "double")
            x = _run_block(transformer_options, ("double_block", i), {"img": x, "transformer_options": transformer_options},
                           lambda args, block=block: {"img": block(args["img"], freqs, args["transformer_options"])})["img"]
            if i in self.vace_layers:
                hints = self.vace_blocks[self.vace_layers.index(i)](hints, freqs, transformer_options=transformer_options)
                x = x + hints
        return x


# ---- HunyuanVideo ------------------------------------------------------------------------------


class StreamAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)


class DoubleStreamBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.img_attn, self.txt_attn = StreamAttention(dim), StreamAttention(dim)
        self.reference = None

    def _qkv(self, attention: StreamAttention, x):
        return attention.qkv(x).view(x.shape[0], x.shape[1], 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)

    def forward(self, img, txt, vec, pe, attn_mask=None, transformer_options={}):
        transformer_patches = transformer_options.get("patches", {})
        extra_options = transformer_options.copy()
        img_q, img_k, img_v = self._qkv(self.img_attn, img)
        txt_q, txt_k, txt_v = self._qkv(self.txt_attn, txt)
        q, k, v = (torch.cat(pair, dim=2) for pair in ((txt_q, img_q), (txt_k, img_k), (txt_v, img_v)))
        extra_options["img_slice"] = [txt.shape[1], q.shape[2]]
        if self.reference is not None:
            return self._reference(q, k, v, pe, attn_mask, img, txt, extra_options)
        if "attn1_patch" in transformer_patches:
            for p in transformer_patches["attn1_patch"]:
                out = p(q, k, v, pe=pe, attn_mask=attn_mask, extra_options=extra_options)
                q, k, v, pe, attn_mask = (out.get("q", q), out.get("k", k), out.get("v", v), out.get("pe", pe),
                                          out.get("attn_mask", attn_mask))
        attn = flux_attention(q, k, v, pe=pe, mask=attn_mask, transformer_options=transformer_options)
        if "attn1_output_patch" in transformer_patches:
            for p in transformer_patches["attn1_output_patch"]:
                attn = p(attn, extra_options)
        txt_attn, img_attn = attn[:, :txt.shape[1]], attn[:, txt.shape[1]:]
        return img + self.img_attn.proj(img_attn), txt + self.txt_attn.proj(txt_attn)

    def _reference(self, q, k, v, pe, attn_mask, img, txt, extra_options):
        q, k = flux_apply_rope(q, k, pe)
        attn = flux_attention(q, k, v, pe=None, mask=attn_mask, transformer_options=extra_options)
        img_out, txt_attn = self.reference(self, q, k, attn, extra_options)
        return img + img_out, txt + self.txt_attn.proj(txt_attn)


class SingleStreamBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.num_heads, self.hidden_size, self.mlp_hidden = heads, dim, 2 * dim
        self.linear1 = nn.Linear(dim, 3 * dim + self.mlp_hidden)
        self.linear2 = nn.Linear(dim + self.mlp_hidden, dim)
        self.reference = None

    def forward(self, x, vec, pe, attn_mask=None, transformer_options={}):
        transformer_patches = transformer_options.get("patches", {})
        extra_options = transformer_options.copy()
        qkv, mlp = torch.split(self.linear1(x), [3 * self.hidden_size, self.mlp_hidden], dim=-1)
        q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        if self.reference is not None:
            q, k = flux_apply_rope(q, k, pe)
            attn = flux_attention(q, k, v, pe=None, mask=attn_mask, transformer_options=extra_options)
            attn = self.reference(self, q, k, attn, extra_options)
        else:
            if "attn1_patch" in transformer_patches:
                for p in transformer_patches["attn1_patch"]:
                    out = p(q, k, v, pe=pe, attn_mask=attn_mask, extra_options=extra_options)
                    q, k, v, pe, attn_mask = (out.get("q", q), out.get("k", k), out.get("v", v),
                                              out.get("pe", pe), out.get("attn_mask", attn_mask))
            attn = flux_attention(q, k, v, pe=pe, mask=attn_mask, transformer_options=transformer_options)
            if "attn1_output_patch" in transformer_patches:
                for p in transformer_patches["attn1_output_patch"]:
                    attn = p(attn, extra_options)
        return x + self.linear2(torch.cat((attn, F.gelu(mlp)), 2))


class HunyuanVideo(nn.Module):
    """Latent ``[B, C, T, H, W]`` and text ``[B, L_txt, dim]`` -> image tokens ``[B, T*H/2*W/2, dim]``.
    Text first in the joint sequence; a ``ref_latent`` ``[B, C, 1, H, W]`` is prepended to the image."""

    def __init__(self, channels: int = 4, dim: int = 24, heads: int = 3, doubles: int = 2, singles: int = 2):
        super().__init__()
        self.patch_size = [1, 2, 2]
        self.img_in = nn.Conv3d(channels, dim, self.patch_size, self.patch_size)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(dim, heads) for _ in range(doubles))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(dim, heads) for _ in range(singles))
        self.head_dim = dim // heads

    def forward(self, x, timestep, context, y=None, txt_byt5=None, clip_fea=None, guidance=None,
                attention_mask=None, guiding_frame_index=None, ref_latent=None, disable_time_r=False,
                control=None, transformer_options={}, **kwargs):
        return run_wrapped(self._forward, diffusion_model_wrappers(transformer_options), x, timestep, context, y,
                           txt_byt5, clip_fea, guidance, attention_mask, guiding_frame_index, ref_latent,
                           disable_time_r, control, transformer_options, **kwargs)

    def _forward(self, x, timestep, txt, y, txt_byt5, clip_fea, guidance, attention_mask, guiding_frame_index,
                 ref_latent, disable_time_r, control, transformer_options):
        transformer_options = transformer_options.copy()
        img = self.img_in(x).flatten(2).transpose(1, 2)  # [B, F*S, dim], frame-major
        if ref_latent is not None:
            img = torch.cat([self.img_in(ref_latent).flatten(2).transpose(1, 2), img], dim=1)
        positions = torch.arange(txt.shape[1] + img.shape[1])
        pe = rotation_matrices(positions, self.head_dim)[None, None].expand(x.shape[0], 1, -1, -1, -1, -1)
        def double(args, block):
            img, txt = block(img=args["img"], txt=args["txt"], vec=None, pe=pe, attn_mask=None,
                             transformer_options=args["transformer_options"])
            return {"img": img, "txt": txt}

        for i, block in enumerate(self.double_blocks):
            _block_options(transformer_options, i, len(self.double_blocks), "double")
            out = _run_block(transformer_options, ("double_block", i),
                             {"img": img, "txt": txt, "transformer_options": transformer_options},
                             lambda args, block=block: double(args, block))
            img, txt = out["img"], out["txt"]
        img = torch.cat((txt, img), 1)
        transformer_options["img_slice"] = [txt.shape[1], img.shape[1]]
        for i, block in enumerate(self.single_blocks):
            _block_options(transformer_options, i, len(self.single_blocks), "single")
            img = _run_block(transformer_options, ("single_block", i), {"img": img, "transformer_options": transformer_options},
                             lambda args, block=block: {"img": block(args["img"], vec=None, pe=pe, attn_mask=None,
                                                                     transformer_options=args["transformer_options"])})["img"]
        return img[:, txt.shape[1]:]
