"""Installers of the families enhanced through the attention override (``override.py``): LTXV
and LTX-2, Cosmos 1 and Predict2, CogVideoX, Kandinsky 5. Each names its output projections (the
paper's placement) and reads its patch size and block count off the model."""

from __future__ import annotations

from typing import Any, Callable

import torch

from .forward import CallSetup
from .override import PROJECTION_SLOT, OverrideForEachCall, OverrideLayout
from .projection import PendingScores, wrap_projection
from .settings import AFTER_PROJECTION, EnhanceSettings

# block index -> module name of its self-attention's output projection
ProjectionName = Callable[[int], str]


def install_override(clone: Any, layout: OverrideLayout, settings: EnhanceSettings, pending: PendingScores,
                     projection: ProjectionName, sequence_first: bool = False) -> OverrideForEachCall:
    """For the paper's placement, wrap the selected blocks' output projections of ``clone``; return
    the ``CallSetup`` that gives each model call its ``EnhanceAttentionOverride``."""
    settings.check_blocks(layout.block_count, f"{layout.family} blocks")
    after = settings.placement == AFTER_PROJECTION
    if after:
        for index in range(layout.block_count):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.{projection(index)}", pending, PROJECTION_SLOT, sequence_first)
    return OverrideForEachCall(layout, settings, pending if after else None)


def install_ltxv(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                 rope: Any) -> CallSetup:
    """LTXV and LTX-2 (``LTXAVModel``: a ``[video, audio]`` latent; only the video self-attention
    ``attn1`` is enhanced, told from ``audio_attn1`` by its q width)."""
    family = "LTX-2" if hasattr(model.transformer_blocks[0], "audio_attn1") else "LTXV"
    layout = OverrideLayout(family, False, (1, 1, 1), len(model.transformer_blocks),
                            query_width=model.transformer_blocks[0].attn1.to_q.out_features,
                            skipped_blocks_key="stg_self_attn_blocks")
    install_for_call = install_override(clone, layout, settings, pending,
                                        lambda i: f"transformer_blocks.{i}.attn1.to_out.0")

    def setup(transformer_options: dict, args: tuple, kwargs: dict) -> None:
        keyframes = kwargs.get("keyframe_idxs", args[6] if len(args) > 6 else None)
        if keyframes is not None and keyframes.shape[2] > 0:
            raise ValueError(
                f"{family}: {keyframes.shape[2]} guide / keyframe tokens (LTXVAddGuide) ride with the video "
                "tokens and may be masked or attended in row groups; Enhance-A-Video refuses this call "
                "rather than measure the wrong tokens"
            )
        install_for_call(transformer_options, args, kwargs)

    return setup


def install_cosmos(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                   rope: Any) -> CallSetup:
    patch = (model.patch_temporal, model.patch_spatial, model.patch_spatial)
    if isinstance(model.blocks, torch.nn.ModuleDict):  # Cosmos 1: blocks.block{n}, [S, B, C] hidden states
        layout = OverrideLayout("Cosmos", False, patch, len(model.blocks))
        return install_override(clone, layout, settings, pending,
                                lambda i: f"blocks.block{i}.blocks.0.block.attn.to_out.0", sequence_first=True)
    layout = OverrideLayout("Cosmos Predict2", False, patch, len(model.blocks))
    return install_override(clone, layout, settings, pending, lambda i: f"blocks.{i}.self_attn.output_proj")


def install_cogvideox(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                      rope: Any) -> CallSetup:
    patch = (model.patch_size_t or 1, model.patch_size, model.patch_size)
    layout = OverrideLayout("CogVideoX", True, patch, len(model.blocks))
    return install_override(clone, layout, settings, pending, lambda i: f"blocks.{i}.attn_out")


def install_kandinsky5(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                       rope: Any) -> CallSetup:
    layout = OverrideLayout("Kandinsky 5", False, tuple(model.patch_size), len(model.visual_transformer_blocks),
                            needs_block_index=True)
    return install_override(clone, layout, settings, pending,
                            lambda i: f"visual_transformer_blocks.{i}.self_attention.out_layer")
