"""The supported diffusers transformers, one ``AdapterSpec`` each (data only)."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .spec import AdapterSpec


def _frames_axis(axis: int, temporal_patch: str | None = None, patch_index: int | None = None):
    """``num_frames`` reader: ``hidden_states.shape[axis]`` over the config's temporal patch size
    (``config[temporal_patch]``, or ``config[temporal_patch][patch_index]``; ``None`` means 1)."""

    def num_frames(transformer: torch.nn.Module, arguments: Mapping[str, Any]) -> int:
        frames = arguments["hidden_states"].shape[axis]  # [B, C, F, H, W] or [B, F, C, H, W]
        patch = transformer.config.get(temporal_patch) if temporal_patch else None
        if patch is not None and patch_index is not None:
            patch = patch[patch_index]
        return frames // (patch or 1)

    return num_frames


def _frames_argument(transformer: torch.nn.Module, arguments: Mapping[str, Any]) -> int:
    """LTX-Video takes packed tokens ``[B, N, C]`` and the latent frame count as ``num_frames``."""
    if arguments.get("num_frames") is None:
        raise ValueError("LTXVideoTransformer3DModel forward needs `num_frames` for Enhance-A-Video")
    return int(arguments["num_frames"])


COGVIDEOX = AdapterSpec(
    model="CogVideoXTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="first",
    num_frames=_frames_axis(1, "patch_size_t"),  # [B, F, C, H, W]; 1.5 patches time by 2
    notes="Joint [text; video] attention through F.scaled_dot_product_attention directly (not "
    "dispatch_attention_fn); RoPE is applied to the video part only. attn1 returns "
    "(video, text) after to_out.",
)

HUNYUAN_VIDEO = AdapterSpec(
    model="HunyuanVideoTransformer3DModel",
    self_attention=r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn",
    text="last",
    num_frames=_frames_axis(2, "patch_size_t"),  # [B, C, F, H, W]
    notes="Dual-stream blocks: [video; text] joint attention, to_out on the video part. "
    "Single-stream blocks: the attention has no to_out; its video output goes with the MLP "
    "branch into the block's proj_out, so both placements scale it before proj_out. The token "
    "refiner (context_embedder.token_refiner) is text-only and left alone. The text padding "
    "mask only masks text keys; video-to-video attention (all CFI reads) is unmasked.",
)

WAN = AdapterSpec(
    model="WanTransformer3DModel",
    self_attention=r"blocks\.\d+\.attn1",
    text=None,
    num_frames=_frames_axis(2, "patch_size", patch_index=0),  # [B, C, F, H, W]; patch (t, h, w)
    notes="Layers are WanAttention, not diffusers' Attention: isinstance(m, Attention) finds "
    "nothing (the paper's code silently patches no layer). Text is in attn2 (cross-attention, "
    "left alone). The residual add runs in float32: hidden.float() + attn_output * gate.",
)

LTX_VIDEO = AdapterSpec(
    model="LTXVideoTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=_frames_argument,
    notes="Input is already packed frame-major tokens [B, F*H*W, C]; the frame count comes from "
    "the forward's num_frames argument (latent frames). Text is in attn2 (cross-attention).",
)

MOCHI = AdapterSpec(
    model="MochiTransformer3DModel",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text="last",
    num_frames=_frames_axis(2),  # [B, C, F, H, W]; no temporal patching
    residual_branch="norm2",
    timestep_rises=True,
    notes="The block adds norm2(attn_output, tanh(gate)) to the residual, and norm2 is an RMSNorm: "
    "a scalar on the attention output (before or after to_out) is normalised away. The score "
    "scales norm2's output, i.e. what is added to the residual, for both placements. The "
    "processor calls SDPA once per batch element (dropping padded text tokens), so one layer "
    "makes B attention calls of batch 1. Mochi's pipeline passes a rising timestep "
    "(0 = noise, 1000 = clean).",
)

LATTE = AdapterSpec(
    model="LatteTransformer3DModel",
    self_attention=r"temporal_transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=_frames_axis(2),  # [B, C, F, H, W]
    notes="Temporal blocks only: their attention batch is B * S sequences of the F frames "
    "(batch-major, b * S + s), so each call is one frame per token and per_sample folds the "
    "B * S CFIs back to B. Spatial blocks (transformer_blocks) are untouched.",
)

SUPPORTED_MODELS: dict[str, AdapterSpec] = {
    spec.model: spec for spec in (COGVIDEOX, HUNYUAN_VIDEO, WAN, LTX_VIDEO, MOCHI, LATTE)
}
