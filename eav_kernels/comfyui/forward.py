"""``ForwardInfo``: what one diffusion-model call tells the attention hooks inside it.

A ``DIFFUSION_MODEL`` wrapper (``ModelPatcher.add_wrapper_with_key``) records, at every call, the
latent grid the model got and whether the step is inside the schedule window, into that call's
own ``transformer_options`` (ComfyUI builds a fresh dict per call; the hooks receive it, or a copy
of it, so nothing is kept between calls and nothing lives on a module). The hooks count how often
they ran; a call in the window in which none ran raises: nothing is ever silently left unenhanced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from .window import ScheduleWindow

FORWARD_KEY = "enhance_a_video"  # the transformer_options entry holding this call's ForwardInfo


@dataclass
class ForwardInfo:
    """One diffusion-model call. ``latent_grid``: ``(T, H, W)`` of the latent ``[B, C, T, H, W]``
    the model got (``None`` for a latent of another rank); ``active``: inside the window;
    ``hook_calls``: attention hooks that ran in this call (one counter per call)."""

    latent_grid: tuple[int, int, int] | None
    active: bool
    hook_calls: int = 0


class ForwardRecorder:
    """The ``DIFFUSION_MODEL`` wrapper: ``(executor, *args, **kwargs)`` as ComfyUI calls wrappers.

    ``model_name``: the diffusion model's class name, for the message of a call that saw no hook.
    """

    def __init__(self, window: ScheduleWindow, model_name: str):
        self.window, self.model_name = window, model_name

    def __call__(self, executor: Callable, *args: Any, **kwargs: Any) -> Any:
        latent = args[0] if args else kwargs.get("x")  # [B, C, T, H, W]
        transformer_options = find_transformer_options(args, kwargs)
        grid = tuple(latent.shape[2:]) if isinstance(latent, torch.Tensor) and latent.dim() == 5 else None
        info = ForwardInfo(grid, self.window.contains(transformer_options.get("sigmas")))
        transformer_options[FORWARD_KEY] = info
        output = executor(*args, **kwargs)
        if info.active and info.hook_calls == 0:
            raise RuntimeError(
                f"Enhance-A-Video: no attention hook ran in this {self.model_name} call (latent grid "
                f"{grid}); its self-attention does not call the hooks the node installed, so nothing "
                "was enhanced"
            )
        return output


def find_transformer_options(args: tuple, kwargs: Mapping[str, Any]) -> dict:
    """The ``transformer_options`` dict of a diffusion model call (every native video model takes
    it as its last positional argument or as a keyword)."""
    if "transformer_options" in kwargs:
        return kwargs["transformer_options"]
    for value in reversed(args):
        if isinstance(value, dict):
            return value
    raise ValueError(
        f"Enhance-A-Video: found no transformer_options among the diffusion model's "
        f"{len(args)} positional arguments and keywords {sorted(kwargs)}"
    )


def forward_info(transformer_options: Mapping[str, Any]) -> ForwardInfo:
    """This call's ``ForwardInfo``; raises when the model ran without the node's wrapper."""
    info = transformer_options.get(FORWARD_KEY)
    if info is None:
        raise RuntimeError(
            "Enhance-A-Video: an attention hook ran outside the diffusion model call the node wraps "
            f"(transformer_options has no {FORWARD_KEY!r}); this model runs its blocks some other way"
        )
    return info
