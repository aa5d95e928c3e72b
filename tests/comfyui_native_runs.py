"""The node and its reference, run on the tiny native models (shared by the real-ComfyUI tests).

Import only after ``comfyui_native_models.skip_without_comfyui()``: this imports the node.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from comfyui_native_models import (COGVIDEOX, COSMOS, COSMOS_PREDICT2, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15, KANDINSKY5,
                                   LTX2, LTXV, MOCHI, WAN21, WAN21_I2V, WAN21_VACE, WAN22, TinyVideoModel,
                                   sample)
from comfyui_native_reference import (COSMOS_PREDICT2_PLACEMENT, KANDINSKY5_PLACEMENT, WAN_PLACEMENT, ReferencePlacement,
                                      ReferenceSettings, cogvideox_placement, cosmos_placement, hunyuan_video_placement,
                                      ltxv_placement, reference_enhancement)
from eav_kernels.comfyui.node import EnhanceAVideo
from eav_kernels.comfyui.settings import AFTER_PROJECTION

ENHANCED = [WAN21, WAN21_VACE, WAN21_I2V, WAN22, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15, LTXV, LTX2, COSMOS, COSMOS_PREDICT2, COGVIDEOX,
            KANDINSKY5]
NOT_ENHANCED = [MOCHI]


def placement_of(model: TinyVideoModel) -> ReferencePlacement:
    if model.config_class.startswith("WAN"):
        return WAN_PLACEMENT
    if model.config_class.startswith("Hunyuan"):
        return hunyuan_video_placement(model.unet_config["depth"], model.text_tokens)
    if model.name == COGVIDEOX.name:
        return cogvideox_placement(model.unet_config["num_layers"], model.text_tokens)
    if model.name == LTXV.name:
        return ltxv_placement(model.unet_config["num_layers"])
    if model.name == LTX2.name:
        config = model.unet_config
        return ltxv_placement(config["num_layers"], config["num_attention_heads"] * config["attention_head_dim"])
    if model.name == COSMOS.name:
        return cosmos_placement(model.unet_config["num_blocks"])
    return {COSMOS_PREDICT2.name: COSMOS_PREDICT2_PLACEMENT, KANDINSKY5.name: KANDINSKY5_PLACEMENT}[model.name]


def enhanced(patcher: Any, weight: float = 4.0, start_percent: float = 0.0, end_percent: float = 1.0,
             blocks: str = "all", per_sample: bool = False) -> Any:
    """The node's output for ``patcher``, through its public node class, the paper's placement."""
    return EnhanceAVideo.execute(patcher, weight=weight, start_percent=start_percent, end_percent=end_percent,
                                 blocks=blocks, per_sample=per_sample, placement=AFTER_PROJECTION).result[0]


def reference_sample(model: TinyVideoModel, settings: ReferenceSettings = ReferenceSettings(),
                     scores: list[torch.Tensor] | None = None, around: Callable[[Any], Any] = lambda patcher: patcher,
                     steps: int = 2, dtype: torch.dtype = torch.float32, cfg: float = 2.0) -> torch.Tensor:
    """The reference's sample on a model of ``dtype``; ``around``: applied to the reference-enhanced
    model (another node)."""
    with reference_enhancement(model.build(dtype=dtype), placement_of(model), model.tokens_per_frame, settings,
                               scores) as patched:
        return sample(around(patched), model, steps=steps, cfg=cfg)


def reference_samples(model: TinyVideoModel, settings: ReferenceSettings = ReferenceSettings(),
                      scores: list[torch.Tensor] | None = None, **run: Any
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What ``check_against_reference`` compares a node's sample with: the float64 reference's
    (its scores collected in ``scores``), the float32 reference's and the float64 reference's with
    scores 4 float32 ulps up (``run``: ``reference_sample``'s other arguments)."""
    return (reference_sample(model, settings, scores, **run),
            reference_sample(model, dataclasses.replace(settings, compute_dtype=torch.float32), **run),
            reference_sample(model, dataclasses.replace(settings, score_factor=1 + 4 * torch.finfo(torch.float32).eps),
                             **run))
