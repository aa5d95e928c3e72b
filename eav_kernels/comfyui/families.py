"""Which native ComfyUI video models the node enhances, and how each is patched.

A family is found by the class name of the model's ``diffusion_model`` (subclasses match too, in
method resolution order; a refused class wins over the family of its base). Each installer adds
its hooks to the clone through ComfyUI's official extension points only and may return a
``CallSetup`` that the per-call wrapper runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .flux_streams import RopeFunction
from .forward import CallSetup
from .hook_families import install_hunyuan_video, install_wan
from .override_families import install_cogvideox, install_cosmos, install_kandinsky5, install_ltxv
from .projection import PendingScores
from .settings import EnhanceSettings

# (clone, diffusion_model, settings, pending, rope) -> CallSetup | None
Installer = Callable[[Any, torch.nn.Module, EnhanceSettings, PendingScores, RopeFunction], "CallSetup | None"]


@dataclass(frozen=True)
class Family:
    """Native models enhanced the same way: ``name`` for messages, the ``diffusion_model`` class
    names that select it, and the ``install`` that patches a clone."""

    name: str
    classes: tuple[str, ...]  # diffusion_model class names
    install: Installer


FAMILIES = (
    Family("Wan 2.1 / 2.2", ("WanModel",), install_wan),
    Family("HunyuanVideo 1.0 / 1.5", ("HunyuanVideo",), install_hunyuan_video),
    Family("LTXV / LTX-2", ("LTXVModel",), install_ltxv),
    Family("Cosmos 1 / Predict2", ("GeneralDIT", "MiniTrainDIT"), install_cosmos),
    Family("CogVideoX", ("CogVideoXTransformer3DModel",), install_cogvideox),
    Family("Kandinsky 5", ("Kandinsky5",), install_kandinsky5),
)

REFUSED = {
    "CausalWanModel": "its causal self-attention calls no attn1_patch and generates frames block by "
    "block from a cache, where the cross-frame intensity of one call is not the video's",
    "AsymmDiTJoint": "Mochi RMS-normalises each block's attention branch before the residual add, which "
    "removes a score applied to the attention output or its projection, and ComfyUI offers no hook "
    "after that norm",
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
