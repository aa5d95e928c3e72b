"""Installers of the families whose blocks call ComfyUI's attention patches with q and k:
Wan (``attn1_patch``) and HunyuanVideo (``attn1_patch`` + ``attn1_output_patch``)."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from .flux_streams import FluxStreamLayout, RopeFunction, flux_stream_attention_patch, flux_stream_output_patch
from .projection import PendingScores, wrap_projection
from .settings import AFTER_PROJECTION, EnhanceSettings
from .wan import wan_patch


def install_wan(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                rope: RopeFunction) -> None:
    require_classes("Wan", (block.self_attn for block in model.blocks), "WanSelfAttention")
    settings.check_blocks(len(model.blocks), "Wan blocks")
    clone.set_model_attn1_patch(wan_patch(settings, pending))
    if settings.placement == AFTER_PROJECTION:
        for index in range(len(model.blocks)):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.blocks.{index}.self_attn.o", pending, index)


def install_hunyuan_video(clone: Any, model: torch.nn.Module, settings: EnhanceSettings,
                          pending: PendingScores, rope: RopeFunction) -> None:
    require_classes("HunyuanVideo", model.double_blocks, "DoubleStreamBlock")
    require_classes("HunyuanVideo", model.single_blocks, "SingleStreamBlock")
    doubles, singles = len(model.double_blocks), len(model.single_blocks)
    settings.check_blocks(doubles + singles, f"{doubles} double-stream blocks first, then {singles} single-stream")
    layout = FluxStreamLayout(doubles, model.patch_size)
    clone.set_model_attn1_patch(flux_stream_attention_patch(settings, layout, pending, rope))
    clone.set_model_attn1_output_patch(flux_stream_output_patch)
    if settings.placement == AFTER_PROJECTION:
        for index in range(doubles):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.double_blocks.{index}.img_attn.proj", pending, index)


def require_classes(family: str, modules: Iterable[torch.nn.Module], class_name: str) -> None:
    """Every module must be a ``class_name`` (or a subclass): the classes known to call the hooks."""
    for module in modules:
        if class_name not in (cls.__name__ for cls in type(module).__mro__):
            raise TypeError(
                f"{family}: found a {type(module).__name__} where a {class_name} (whose forward calls "
                "ComfyUI's attention patches) was expected; nothing would be enhanced there"
            )
