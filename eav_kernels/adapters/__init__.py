"""Enhance-A-Video on diffusers video transformers, in the style of diffusers' own hooks::

    from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
    apply_enhance_a_video(pipe.transformer, EnhanceAVideoConfig(enhance_weight=4.0))
    video = pipe(prompt, num_frames=49).frames[0]
    remove_enhance_a_video(pipe.transformer)

``config`` and ``spec`` import without diffusers; the hooks import it on first use.
"""

from __future__ import annotations

import torch

from .config import EnhanceAVideoConfig
from .spec import AdapterSpec

__all__ = ["AdapterSpec", "EnhanceAVideoConfig", "apply_enhance_a_video", "remove_enhance_a_video",
           "supported_models"]


def apply_enhance_a_video(transformer: torch.nn.Module, config: EnhanceAVideoConfig) -> None:
    """Enable Enhance-A-Video on ``transformer`` (see ``eav_kernels.adapters.hooks``)."""
    from .hooks import apply_enhance_a_video as apply

    apply(transformer, config)


def remove_enhance_a_video(transformer: torch.nn.Module) -> None:
    """Remove Enhance-A-Video from ``transformer``: it computes exactly as before."""
    from .hooks import remove_enhance_a_video as remove

    remove(transformer)


def supported_models() -> list[str]:
    """Class names of the diffusers transformers with an adapter."""
    from .models import SUPPORTED_MODELS

    return sorted(SUPPORTED_MODELS)
