"""HunyuanVideo 1.0 / 1.5: the Flux-style double- and single-stream blocks' patches.

Per block call ComfyUI makes one ``extra_options`` dict (a copy of ``transformer_options``) and
hands it to both patches:

- ``attn1_patch(q, k, v, pe=, attn_mask=, extra_options=)`` before attention, ``q``/``k``/``v``
  ``[B, heads, L, head_dim]`` with text first: ``extra_options["img_slice"] == [text tokens, L]``
  (the image tokens, a reference latent's before the video); RoPE not yet applied (``pe``). It
  returns a dict whose ``q``/``k``/``v``/``pe``/``attn_mask`` replace the block's.
- ``attn1_output_patch(attn, extra_options)`` after attention, ``attn`` ``[B, L, heads*head_dim]``.

Our ``attn1_patch`` applies RoPE itself with ComfyUI's own function, measures the rotated q and
k, and returns them with ``pe=None``: attention then runs on exactly the tensors it would have
built, and RoPE is computed once. The score rides in ``extra_options`` to the output patch (same
block call). Double-stream blocks project the image rows with ``img_attn.proj``: the paper's
placement scales that projection's output (``projection.py``). Single-stream blocks feed the
attention output with the MLP branch into one ``linear2``; there the score multiplies the
attention output for both placements (as the diffusers adapter does).

Blocks are numbered in model order: double-stream ``0 .. D-1``, then single-stream ``D ..``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .forward import forward_info
from .layout import joint_layout, patched_grid
from .projection import PendingScores
from .scoring import call_score, scale_rows
from .settings import AFTER_PROJECTION, EnhanceSettings

SCORE_KEY = "enhance_a_video_score"  # extra_options entry: (score, video rows) of this block call

# (q [B, H, L, D], k [B, H, L, D], pe) -> (q, k) rotated
RopeFunction = Callable[[torch.Tensor, torch.Tensor, Any], "tuple[torch.Tensor, torch.Tensor]"]


def comfy_apply_rope(query: torch.Tensor,  # [B, H, L, D]
                     key: torch.Tensor,  # [B, H, L, D]
                     pe: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI's own RoPE for these blocks (``comfy.ldm.flux.math.apply_rope``), imported when used."""
    from comfy.ldm.flux.math import apply_rope

    return apply_rope(query, key, pe)


class FluxStreamLayout:
    """How a HunyuanVideo's blocks are numbered and its latent is patched."""

    def __init__(self, double_blocks: int, patch_size: Sequence[int], family: str = "HunyuanVideo"):
        self.double_blocks, self.patch_size, self.family = double_blocks, tuple(patch_size), family

    def block_number(self, extra_options: dict) -> int:
        """The model-order number of the block making this call: double-stream ``0 .. D-1``,
        single-stream ``D ..``."""
        index = int(extra_options["block_index"])
        return index + self.double_blocks if extra_options.get("block_type") == "single" else index


class FluxStreamAttentionPatch:
    """``attn1_patch`` of the double- and single-stream blocks (see the module docstring)."""

    def __init__(self, settings: EnhanceSettings, layout: FluxStreamLayout, pending: PendingScores | None,
                 apply_rope: RopeFunction = comfy_apply_rope):
        self.settings, self.layout, self.pending, self.apply_rope = settings, layout, pending, apply_rope

    def __call__(self,
                 q: torch.Tensor,  # [B, heads, L, head_dim], before RoPE
                 k: torch.Tensor,  # [B, heads, L, head_dim], before RoPE
                 v: torch.Tensor,  # [B, heads, L, head_dim]
                 pe: Any = None, attn_mask: Any = None, extra_options: dict | None = None) -> dict[str, Any]:
        """``{}`` (the block's tensors unchanged), or ``{"q", "k", "pe": None}`` with RoPE applied
        here; leaves the score for the output projection or ``flux_stream_output_patch``."""
        info = forward_info(extra_options)
        block = self.layout.block_number(extra_options)
        if not info.active or not self.settings.selects(block):
            return {}
        if info.latent_grid is None:
            raise ValueError(f"{self.layout.family}: the diffusion model got no [B, C, T, H, W] video latent")
        grid = patched_grid(info.latent_grid, self.layout.patch_size)
        image = extra_options["img_slice"]
        video = joint_layout(self.layout.family, image, grid, conditioning_before=True)
        replaced: dict[str, Any] = {}
        if pe is not None:
            q, k = self.apply_rope(q, k, pe)
            replaced = {"q": q, "k": k, "pe": None}
        score = call_score(q, k, video, self.settings, extra_options.get("cond_or_uncond"))
        if self.pending is not None and extra_options.get("block_type") != "single":
            start = int(image[0])  # img_attn.proj gets the image rows only
            self.pending.put(block, score, slice(video.video.start - start, video.video.stop - start))
        else:
            extra_options[SCORE_KEY] = (score, video.video)
        return replaced


def flux_stream_output_patch(attn: torch.Tensor,  # [B, L, heads*head_dim]
                             extra_options: dict) -> torch.Tensor:
    """``attn1_output_patch``: the video rows of the attention output times the score this block
    call's ``attn1_patch`` left (none left: unchanged)."""
    entry = extra_options.pop(SCORE_KEY, None)
    if entry is None:
        return attn
    score, rows = entry
    return scale_rows(attn, score, rows)


def flux_stream_attention_patch(settings: EnhanceSettings, layout: FluxStreamLayout, pending: PendingScores,
                                apply_rope: RopeFunction = comfy_apply_rope) -> FluxStreamAttentionPatch:
    """The ``attn1_patch`` for ``settings.placement``: with the paper's placement it hands the
    double-stream blocks' scores to ``pending`` (their ``img_attn.proj``), else to the output patch."""
    after = settings.placement == AFTER_PROJECTION
    return FluxStreamAttentionPatch(settings, layout, pending if after else None, apply_rope)
