"""eav-kernels: Enhance-A-Video (arXiv 2502.07508) as a fast, exact drop-in op.

    import eav_kernels as eav
    out = eav.enhanced_sdpa(q, k, v, num_frames=13, enhance_weight=3.4, video_tokens=slice(226, None))

    eav.enhance_module(model, spec, eav.EnhanceAVideoConfig())     # any PyTorch video model
"""

import sys as _sys

from ._source_tree import attach_triton_kernels as _attach_triton_kernels
from .adapters import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
from .api import (
    attention_with_enhance_score,
    cross_frame_intensity,
    enhance_score,
    enhanced_sdpa,
    scale_video_tokens,
)
from .backends import available_backends
from .engine import AdapterSpec, enhance_module, remove_enhancement
from .reference import cross_frame_intensity_reference, official_style_cross_frame_intensity

__version__ = "0.1.0"

__all__ = [
    "AdapterSpec",
    "EnhanceAVideoConfig",
    "apply_enhance_a_video",
    "enhance_module",
    "remove_enhance_a_video",
    "remove_enhancement",
    "attention_with_enhance_score",
    "available_backends",
    "cross_frame_intensity",
    "cross_frame_intensity_reference",
    "enhance_score",
    "enhanced_sdpa",
    "official_style_cross_frame_intensity",
    "scale_video_tokens",
]

# eav_kernels.triton_kernels in every install mode, a plain checkout on PYTHONPATH included
_attach_triton_kernels(_sys.modules[__name__])
