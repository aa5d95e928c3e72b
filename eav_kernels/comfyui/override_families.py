"""Installers of the families enhanced through the attention override (``override.py``): LTXV
and LTX-2, Cosmos 1 and Predict2, CogVideoX, Kandinsky 5. Each names its output projections (the
paper's placement) and reads its patch size and block count off the model."""

from __future__ import annotations

from typing import Any, Callable

import torch

from .forward import CallCheck
from .hook_families import wrap_projection
from .override import PROJECTION_SLOT, EnhanceAttentionOverride, OverrideLayout, attention_override_check
from .projection import PendingScores
from .settings import AFTER_PROJECTION, EnhanceSettings

# block index -> module name of its self-attention's output projection
ProjectionName = Callable[[int], str]


def install_override(clone: Any, layout: OverrideLayout, settings: EnhanceSettings, pending: PendingScores,
                     projection: ProjectionName, sequence_first: bool = False) -> EnhanceAttentionOverride:
    """Put an ``EnhanceAttentionOverride`` (chained to the clone's current override) on ``clone``
    and, for the paper's placement, wrap the selected blocks' output projections."""
    settings.check_blocks(layout.block_count, f"{layout.family} blocks")
    options = clone.model_options["transformer_options"]
    after = settings.placement == AFTER_PROJECTION
    override = EnhanceAttentionOverride(options.get("optimized_attention_override"), layout, settings,
                                        pending if after else None)
    options["optimized_attention_override"] = override
    if after:
        for index in range(layout.block_count):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.{projection(index)}", pending, PROJECTION_SLOT, sequence_first)
    return override


def install_ltxv(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                 rope: Any) -> CallCheck:
    """LTXV and LTX-2 (``LTXAVModel``: a ``[video, audio]`` latent; only the video self-attention
    ``attn1`` is enhanced, told from ``audio_attn1`` by its q width)."""
    family = "LTX-2" if hasattr(model.transformer_blocks[0], "audio_attn1") else "LTXV"
    layout = OverrideLayout(family, False, (1, 1, 1), len(model.transformer_blocks),
                            query_width=model.transformer_blocks[0].attn1.to_q.out_features,
                            skipped_blocks_key="stg_self_attn_blocks")
    override = install_override(clone, layout, settings, pending, lambda i: f"transformer_blocks.{i}.attn1.to_out.0")
    check_override = attention_override_check(override)

    def check(transformer_options: dict, args: tuple, kwargs: dict) -> None:
        keyframes = kwargs.get("keyframe_idxs", args[6] if len(args) > 6 else None)
        if keyframes is not None and keyframes.shape[2] > 0:
            raise ValueError(
                f"{family}: {keyframes.shape[2]} guide / keyframe tokens (LTXVAddGuide) ride with the video "
                "tokens and may be masked or attended in row groups; Enhance-A-Video refuses this call "
                "rather than measure the wrong tokens"
            )
        check_override(transformer_options, args, kwargs)

    return check


def install_cosmos(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                   rope: Any) -> CallCheck:
    patch = (model.patch_temporal, model.patch_spatial, model.patch_spatial)
    if isinstance(model.blocks, torch.nn.ModuleDict):  # Cosmos 1: blocks.block{n}, [S, B, C] hidden states
        layout = OverrideLayout("Cosmos", False, patch, len(model.blocks))
        override = install_override(clone, layout, settings, pending,
                                    lambda i: f"blocks.block{i}.blocks.0.block.attn.to_out.0", sequence_first=True)
    else:  # Predict2
        layout = OverrideLayout("Cosmos Predict2", False, patch, len(model.blocks))
        override = install_override(clone, layout, settings, pending, lambda i: f"blocks.{i}.self_attn.output_proj")
    return attention_override_check(override)


def install_cogvideox(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                      rope: Any) -> CallCheck:
    patch = (model.patch_size_t or 1, model.patch_size, model.patch_size)
    layout = OverrideLayout("CogVideoX", True, patch, len(model.blocks))
    return attention_override_check(install_override(clone, layout, settings, pending, lambda i: f"blocks.{i}.attn_out"))


def install_kandinsky5(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                       rope: Any) -> CallCheck:
    layout = OverrideLayout("Kandinsky 5", False, tuple(model.patch_size), len(model.visual_transformer_blocks),
                            needs_block_index=True)
    override = install_override(clone, layout, settings, pending,
                                lambda i: f"visual_transformer_blocks.{i}.self_attention.out_layer")
    return attention_override_check(override)
