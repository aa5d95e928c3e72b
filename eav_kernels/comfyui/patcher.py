"""``enhance_model``: a patched clone of a ComfyUI ``ModelPatcher``; the original stays untouched."""

from __future__ import annotations

from typing import Any

from .families import family_of
from .flux_streams import RopeFunction, comfy_apply_rope
from .forward import ForwardRecorder
from .projection import PendingScores
from .settings import EnhanceSettings
from .window import ScheduleWindow

DIFFUSION_MODEL_WRAPPER = "diffusion_model"  # comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
WRAPPER_KEY = "enhance_a_video"


def enhance_model(model: Any, settings: EnhanceSettings, *, apply_rope: RopeFunction = comfy_apply_rope) -> Any:
    """``model.clone()`` with Enhance-A-Video installed: the family's attention hooks, the output
    projections' object patches (paper placement) and a ``DIFFUSION_MODEL`` wrapper that records
    each call's latent grid and window state. Raises ``TypeError`` for a model it does not know
    and ``ValueError`` for blocks the model does not have or a model enhanced already. ``apply_rope``: the RoPE of
    HunyuanVideo's blocks (ComfyUI's own by default)."""
    if model.get_wrappers(DIFFUSION_MODEL_WRAPPER, WRAPPER_KEY):
        raise ValueError("this model is already enhanced by an Enhance-A-Video node; apply it once")
    diffusion_model = model.get_model_object("diffusion_model")
    family = family_of(diffusion_model)
    window = ScheduleWindow.from_percents(model.get_model_object("model_sampling"),
                                          settings.start_percent, settings.end_percent)
    clone = model.clone()
    pending = PendingScores()
    check = family.install(clone, diffusion_model, settings, pending, apply_rope)
    clone.add_wrapper_with_key(DIFFUSION_MODEL_WRAPPER, WRAPPER_KEY, ForwardRecorder(window, pending, check))
    return clone
