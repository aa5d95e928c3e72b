"""Wan 2.1 / 2.2 and the Wan variants that run ``WanSelfAttention``: its ``attn1_patch``.

ComfyUI calls each ``attn1_patch`` with ``{"x", "q", "k", "transformer_options"}`` after the
attention and before the output projection ``self.o``: ``q`` and ``k`` are ``[B, L, heads,
head_dim]`` after RoPE, exactly what attention got; ``x`` is the attention output ``[B, L, C]``;
``transformer_options["grid_sizes"]`` is ``(F, H, W)`` after patching and ``["block_index"]`` the
block. Every token is video (text is in cross-attention). Wan VACE's hint blocks run their own
self-attention (same hook) after the main block with the same ``block_index``: only the first
call of a block number in a model call is the main block's, and only it is enhanced.
"""

from __future__ import annotations

from typing import Any

import torch

from .forward import forward_info
from .layout import wan_layout
from .projection import PendingScores
from .scoring import call_score, scale_rows
from .settings import BEFORE_PROJECTION, EnhanceSettings


class WanAttentionPatch:
    """Wan's ``attn1_patch``. With ``pending`` (the paper's placement) the score goes to the
    block's output projection; without, it multiplies ``x`` here, before the projection."""

    def __init__(self, settings: EnhanceSettings, pending: PendingScores | None):
        self.settings, self.pending = settings, pending

    def __call__(self, args: dict[str, Any]) -> torch.Tensor:
        x = args["x"]  # [B, L, C] attention output
        transformer_options = args["transformer_options"]
        info = forward_info(transformer_options)
        block = transformer_options["block_index"]
        if not info.first_call_of(block) or not info.active or not self.settings.selects(block):
            return x  # a second call of the block number: a VACE hint block, left alone
        query, key = args["q"].transpose(1, 2), args["k"].transpose(1, 2)  # [B, heads, L, head_dim]
        layout = wan_layout(query.shape[2], transformer_options)
        score = call_score(query, key, layout, self.settings, transformer_options.get("cond_or_uncond"))
        if self.pending is None:
            return scale_rows(x, score, layout.video)
        self.pending.put(block, score, layout.video)
        return x


def wan_patch(settings: EnhanceSettings, pending: PendingScores) -> WanAttentionPatch:
    """The ``attn1_patch`` for ``settings.placement`` (``pending`` only for the paper's)."""
    return WanAttentionPatch(settings, None if settings.placement == BEFORE_PROJECTION else pending)
