"""The node and its reference, run on the tiny native models (shared by the real-ComfyUI tests).

Import only after ``comfyui_native_models.skip_without_comfyui()``: this imports the node.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from comfyui_native_models import (COGVIDEOX, COSMOS, COSMOS_PREDICT2, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15, KANDINSKY5,
                                   LTXV, MOCHI, WAN21, WAN22, TinyVideoModel, sample)
from comfyui_native_reference import HUNYUAN_VIDEO_PLACEMENT, WAN_PLACEMENT, ReferencePlacement, reference_enhancement
from eav_kernels.comfyui.node import EnhanceAVideo
from eav_kernels.comfyui.settings import AFTER_PROJECTION

WEIGHT = 4.0
ENHANCED = [(WAN21, WAN_PLACEMENT), (WAN22, WAN_PLACEMENT), (HUNYUAN_VIDEO, HUNYUAN_VIDEO_PLACEMENT),
            (HUNYUAN_VIDEO_15, HUNYUAN_VIDEO_PLACEMENT)]
NOT_ENHANCED = [LTXV, MOCHI, COSMOS, COSMOS_PREDICT2, COGVIDEOX, KANDINSKY5]


def enhanced(patcher: Any, weight: float = WEIGHT) -> Any:
    """The node's output for ``patcher``, through its public node class (defaults elsewhere)."""
    return EnhanceAVideo.execute(patcher, weight=weight, start_percent=0.0, end_percent=1.0, blocks="all",
                                 per_sample=False, placement=AFTER_PROJECTION).result[0]


def reference_sample(model: TinyVideoModel, placement: ReferencePlacement, scores: list[float] | None = None,
                     compute_dtype: torch.dtype = torch.float64, around: Callable[[Any], Any] = lambda patcher: patcher,
                     steps: int = 2) -> torch.Tensor:
    """The reference's sample; ``around``: applied to the reference-enhanced model (another node)."""
    with reference_enhancement(model.build(), placement, model.frames, model.tokens_per_frame, WEIGHT,
                               scores, compute_dtype) as patched:
        return sample(around(patched), model, steps=steps)
