"""Enhance-A-Video for ComfyUI's native video models, through ComfyUI's own extension points.

Importable without ComfyUI (ComfyUI modules are imported inside the functions that need them,
``node.py`` aside). ``enhance_model(model_patcher, EnhanceSettings(...))`` returns a patched
clone; ``comfy_entrypoint`` is the V3 node pack entry point; docs/comfyui.md has the rest.

Files: ``settings`` (the node's inputs), ``window`` (start/end percent -> sigma bounds),
``forward`` (the per-call ``DIFFUSION_MODEL`` wrapper), ``layout`` (where the video tokens are),
``scoring`` (the score from the package's kernels), ``projection`` (the paper's placement),
``wan`` and ``flux_streams`` (the attention patches of Wan and HunyuanVideo), ``override`` (the
attention override of the other families), ``hook_families`` / ``override_families`` (their
installers), ``families`` (which model gets which), ``patcher`` (the clone), ``node`` /
``extension`` (ComfyUI's V3 node).
"""

from .extension import comfy_entrypoint
from .patcher import enhance_model
from .settings import AFTER_PROJECTION, BEFORE_PROJECTION, EnhanceSettings, parse_blocks

__all__ = ["AFTER_PROJECTION", "BEFORE_PROJECTION", "EnhanceSettings", "comfy_entrypoint", "enhance_model",
           "parse_blocks"]
