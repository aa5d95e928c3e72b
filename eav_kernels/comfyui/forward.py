"""``ForwardInfo``: what one diffusion-model call tells the attention hooks inside it.

A ``DIFFUSION_MODEL`` wrapper (``ModelPatcher.add_wrapper_with_key``) records, at every call, the
latent grid the model got and whether the step is inside the schedule window, into that call's
own ``transformer_options`` (ComfyUI builds a fresh dict per call; the hooks receive it, or a copy
of it, so nothing is kept between calls and nothing lives on a module). A family may check the
call first (``CallCheck``: refuse a mode it cannot enhance, or an attention override another node
put in place of ours). A cache that skips the model call (EasyCache) skips the hooks with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from .projection import PendingScores
from .window import ScheduleWindow

FORWARD_KEY = "enhance_a_video"  # the transformer_options entry holding this call's ForwardInfo

# (transformer_options, the diffusion model's args, kwargs) -> None; raises to refuse the call
CallCheck = Callable[[dict, tuple, dict], None]


@dataclass
class ForwardInfo:
    """One diffusion-model call. ``latent_grid``: ``(T, H, W)`` of the latent ``[B, C, T, H, W]``
    the model got (``None`` for a latent of another rank); ``active``: inside the window;
    ``video_attention_calls``: video self-attention calls seen so far in this call (the block
    number where the model does not say it); ``blocks_seen``: the block numbers whose attention
    hook already ran in this call (a second call with the same number is not the block's own:
    Wan VACE's hint blocks reuse the ``block_index`` of the block they follow)."""

    latent_grid: tuple[int, int, int] | None
    active: bool
    video_attention_calls: int = 0
    blocks_seen: set = field(default_factory=set)

    def first_call_of(self, block: int) -> bool:
        """Whether this is the first hook call of ``block`` in this model call (and record it)."""
        first = block not in self.blocks_seen
        self.blocks_seen.add(block)
        return first


class ForwardRecorder:
    """The ``DIFFUSION_MODEL`` wrapper: ``(executor, *args, **kwargs)`` as ComfyUI calls wrappers.
    ``pending``: the clone's scores on their way to the output projections, emptied at every call
    (a score never outlives the model call that computed it)."""

    def __init__(self, window: ScheduleWindow, pending: PendingScores, check: CallCheck | None = None):
        self.window, self.pending, self.check = window, pending, check

    def __call__(self, executor: Callable, *args: Any, **kwargs: Any) -> Any:
        latent = args[0] if args else kwargs.get("x")  # [B, C, T, H, W], or [video, audio] (LTX-2)
        if isinstance(latent, (list, tuple)):
            latent = latent[0]
        transformer_options = find_transformer_options(args, kwargs)
        if self.check is not None:
            self.check(transformer_options, args, kwargs)
        video = isinstance(latent, torch.Tensor) and latent.dim() == 5
        transformer_options[FORWARD_KEY] = ForwardInfo(tuple(latent.shape[2:]) if video else None,
                                                       self.window.contains(transformer_options.get("sigmas")))
        if isinstance(latent, torch.Tensor):
            self.pending.clear(latent.device)
        return executor(*args, **kwargs)


def find_transformer_options(args: tuple, kwargs: Mapping[str, Any]) -> dict:
    """The ``transformer_options`` dict of a diffusion model call (every native video model takes
    it as its last positional dict or as a keyword)."""
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
