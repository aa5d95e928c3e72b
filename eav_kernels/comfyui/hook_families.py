"""Installers of the families whose blocks call ComfyUI's attention patches with q and k:
Wan (``attn1_patch``) and HunyuanVideo (``attn1_patch`` + ``attn1_output_patch``)."""

from __future__ import annotations

from typing import Any, Hashable, Iterable

import torch

from .flux_streams import FluxStreamLayout, RopeFunction, flux_stream_output_patch, flux_stream_attention_patch
from .projection import PendingScores, ScaledProjection
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


def wrap_projection(clone: Any, module_name: str, pending: PendingScores, block: Hashable,
                    sequence_first: bool = False) -> None:
    """Install ``ScaledProjection`` as ``module_name``'s forward on ``clone`` (an object patch:
    applied while the clone runs, restored after; chained to an earlier patch of that forward).
    ``block``: the ``PendingScores`` key its attention hook puts the score under."""
    name = f"{module_name}.forward"
    clone.add_object_patch(name, ScaledProjection(clone.get_model_object(name), pending, block, sequence_first))


def require_classes(family: str, modules: Iterable[torch.nn.Module], class_name: str) -> None:
    """Every module must be a ``class_name`` (or a subclass): the classes known to call the hooks."""
    for module in modules:
        if class_name not in (cls.__name__ for cls in type(module).__mro__):
            raise TypeError(
                f"{family}: found a {type(module).__name__} where a {class_name} (whose forward calls "
                "ComfyUI's attention patches) was expected; nothing would be enhanced there"
            )
