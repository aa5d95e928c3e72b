"""The host-neutral engine of Enhance-A-Video: capture q and k exactly as handed to attention
(any backend), score them through ``eav_kernels.api``, scale the video rows where the config
says. Front-ends: ``module_hooks`` (plain PyTorch: ``enhance_module`` / ``remove_enhancement``)
and ``eav_kernels.adapters`` (diffusers hooks). A model is described by an ``AdapterSpec``.

Needs only torch: diffusers, flash-attn, xformers and SageAttention are seen when the model
uses them, never imported from here.
"""

from .module_hooks import enhance_module, is_enhanced, remove_enhancement
from .seed_models import OPEN_SORA_PLAN_V1_1, OPEN_SORA_PLAN_V1_2, OPEN_SORA_V1_2, SEED_MODELS
from .spec import AdapterSpec

__all__ = ["AdapterSpec", "enhance_module", "is_enhanced", "remove_enhancement", "OPEN_SORA_V1_2",
           "OPEN_SORA_PLAN_V1_1", "OPEN_SORA_PLAN_V1_2", "SEED_MODELS"]
