"""Which native ComfyUI video models the node enhances, and how each is patched.

A family is found by the class name of the model's ``diffusion_model`` (subclasses match too, in
method resolution order). Each installer adds its hooks to the clone through ComfyUI's official
extension points only (``set_model_attn1_patch``, ``set_model_attn1_output_patch``,
``add_object_patch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .flux_streams import FluxStreamLayout, RopeFunction, flux_stream_output_patch, flux_stream_patches
from .projection import PendingScores, ScaledProjection
from .settings import AFTER_PROJECTION, EnhanceSettings
from .wan import wan_patch

# (clone, diffusion_model, settings, pending, rope) -> None
Installer = Callable[[Any, torch.nn.Module, EnhanceSettings, PendingScores, RopeFunction], None]


@dataclass(frozen=True)
class Family:
    name: str
    classes: tuple[str, ...]  # diffusion_model class names
    install: Installer


def _install_wan(clone: Any, model: torch.nn.Module, settings: EnhanceSettings, pending: PendingScores,
                 rope: RopeFunction) -> None:
    settings.check_blocks(len(model.blocks), "Wan blocks")
    clone.set_model_attn1_patch(wan_patch(settings, pending))
    if settings.placement == AFTER_PROJECTION:
        for index in range(len(model.blocks)):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.blocks.{index}.self_attn.o", pending, index)


def _install_hunyuan_video(clone: Any, model: torch.nn.Module, settings: EnhanceSettings,
                           pending: PendingScores, rope: RopeFunction) -> None:
    doubles, singles = len(model.double_blocks), len(model.single_blocks)
    settings.check_blocks(doubles + singles, f"{doubles} double-stream blocks first, then {singles} single-stream")
    layout = FluxStreamLayout(doubles, model.patch_size)
    clone.set_model_attn1_patch(flux_stream_patches(settings, layout, pending, rope))
    clone.set_model_attn1_output_patch(flux_stream_output_patch)
    if settings.placement == AFTER_PROJECTION:
        for index in range(doubles):
            if settings.selects(index):
                wrap_projection(clone, f"diffusion_model.double_blocks.{index}.img_attn.proj", pending, index)


def wrap_projection(clone: Any, module_name: str, pending: PendingScores, block: int) -> None:
    """Install ``ScaledProjection`` as ``module_name``'s forward on ``clone`` (an object patch:
    applied while the clone runs, restored after; chained to an earlier patch of that forward)."""
    name = f"{module_name}.forward"
    clone.add_object_patch(name, ScaledProjection(clone.get_model_object(name), pending, block))


FAMILIES = (
    Family("Wan 2.1 / 2.2", ("WanModel",), _install_wan),
    Family("HunyuanVideo 1.0 / 1.5", ("HunyuanVideo",), _install_hunyuan_video),
)

REFUSED = {
    "CausalWanModel": "its causal self-attention calls no attn1_patch and generates frames block by "
    "block from a cache, where the cross-frame intensity of one call is not the video's",
}


def family_of(model: torch.nn.Module) -> Family:
    """The family of a ``diffusion_model``; ``TypeError`` naming the supported ones otherwise."""
    for cls in type(model).__mro__:
        if cls.__name__ in REFUSED:
            raise TypeError(f"Enhance-A-Video does not apply to {type(model).__name__}: {REFUSED[cls.__name__]}")
        for family in FAMILIES:
            if cls.__name__ in family.classes:
                return family
    supported = ", ".join(family.name for family in FAMILIES)
    raise TypeError(
        f"Enhance-A-Video does not know {type(model).__name__}; it enhances the native video models "
        f"{supported}"
    )
