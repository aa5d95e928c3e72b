"""``ForwardInfo``: what one diffusion-model call tells the attention hooks inside it.

A ``DIFFUSION_MODEL`` wrapper (``ModelPatcher.add_wrapper_with_key``) gives every call its own
shallow copy of the ``transformer_options`` it got (the level it owns: nested dicts, the
patcher's ``model_options`` and what clones share are never written) and records in it the latent
grid the model got and whether the step is inside the schedule window. The hooks receive that
copy, or a copy of it, so nothing is kept between calls and nothing lives on a module. A family
may set the call up (``CallSetup``: refuse a mode it cannot enhance, or put its attention
override into the call's copy). A cache that skips the model call (EasyCache) skips the hooks
with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from .projection import PendingScores
from .window import ScheduleWindow

FORWARD_KEY = "enhance_a_video"  # the transformer_options entry holding this call's ForwardInfo

# (this call's own transformer_options, the diffusion model's args, kwargs) -> None: raises to
# refuse the call, may put per-call entries into the options
CallSetup = Callable[[dict, tuple, dict], None]


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
    blocks_seen: set[int] = field(default_factory=set)

    def first_call_of(self, block: int) -> bool:
        """Whether this is the first hook call of ``block`` in this model call (and record it)."""
        first = block not in self.blocks_seen
        self.blocks_seen.add(block)
        return first


class ForwardRecorder:
    """The ``DIFFUSION_MODEL`` wrapper: ``(executor, *args, **kwargs)`` as ComfyUI calls wrappers.
    ``pending``: the clone's scores on their way to the output projections, emptied at every call
    (a score never outlives the model call that computed it)."""

    def __init__(self, window: ScheduleWindow, pending: PendingScores, setup: CallSetup | None = None):
        self.window, self.pending, self.setup = window, pending, setup

    def __call__(self, executor: Callable, *args: Any, **kwargs: Any) -> Any:
        latent = args[0] if args else kwargs.get("x")  # [B, C, T, H, W], or [video, audio] (LTX-2)
        if isinstance(latent, (list, tuple)):
            latent = latent[0]
        transformer_options, args, kwargs = with_own_transformer_options(args, kwargs)
        if self.setup is not None:
            self.setup(transformer_options, args, kwargs)
        video = isinstance(latent, torch.Tensor) and latent.dim() == 5
        transformer_options[FORWARD_KEY] = ForwardInfo(tuple(latent.shape[2:]) if video else None,
                                                       self.window.contains(transformer_options.get("sigmas")))
        if isinstance(latent, torch.Tensor):
            self.pending.clear(latent.device)
        return executor(*args, **kwargs)


def with_own_transformer_options(args: tuple, kwargs: Mapping[str, Any]) -> tuple[dict, tuple, dict]:
    """``(options, args, kwargs)``: a shallow copy of a diffusion model call's ``transformer_options``
    (every native video model takes it as its last positional dict or as a keyword) and the call's
    arguments with the copy in its place."""
    if "transformer_options" in kwargs:
        options = dict(kwargs["transformer_options"] or {})
        return options, args, {**kwargs, "transformer_options": options}
    for index in reversed(range(len(args))):
        if isinstance(args[index], dict):
            options = dict(args[index])
            return options, (*args[:index], options, *args[index + 1:]), dict(kwargs)
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
