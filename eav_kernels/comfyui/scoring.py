"""The score of one attention call, from the package's kernels (``api.py``): per call, or per
``cond_or_uncond`` entry with ``per_sample``."""

from __future__ import annotations

from typing import Sequence

import torch

from ..api import cross_frame_intensity, enhance_score, scale_video_tokens
from .layout import VideoLayout
from .settings import EnhanceSettings


def call_score(
    query: torch.Tensor,  # [B, H, N, D] as attention gets it (after RoPE), any strides
    key: torch.Tensor,  # [B, Hk, N, D]
    layout: VideoLayout,
    settings: EnhanceSettings,
    cond_or_uncond: Sequence[int] | None,
) -> torch.Tensor:
    """``max(1, CFI * (F + w))`` of the call's video tokens: 0-d float32, or ``[B]`` with
    ``settings.per_sample`` (each ``cond_or_uncond`` entry's rows share the mean CFI of its rows;
    ComfyUI stacks the entries batch-major, ``B / len(cond_or_uncond)`` rows each)."""
    with torch.no_grad():
        cfi = cross_frame_intensity(  # [B] float32
            query[:, :, layout.video], key[:, :, layout.video], layout.frames,
            per_sample=True, backend=settings.backend,
        )
    if settings.per_sample:
        cfi = _per_entry(cfi, cond_or_uncond)
    else:
        cfi = cfi.mean()
    return enhance_score(cfi, layout.frames, settings.weight)


def _per_entry(cfi: torch.Tensor,  # [B]
               cond_or_uncond: Sequence[int] | None) -> torch.Tensor:
    """``[B]``: each ``cond_or_uncond`` entry's mean CFI on its rows."""
    entries = len(cond_or_uncond) if cond_or_uncond else 1
    if cfi.shape[0] % entries:
        raise ValueError(
            f"per_sample: a batch of {cfi.shape[0]} does not split into the {entries} entries of "
            f"cond_or_uncond {list(cond_or_uncond or [])}"
        )
    return cfi.view(entries, -1).mean(dim=1).repeat_interleave(cfi.shape[0] // entries)


def scale_rows(
    hidden: torch.Tensor,  # [B, N, C]: tokens on dim 1
    score: torch.Tensor,  # 0-d or [B]
    rows: slice,
) -> torch.Tensor:
    """``hidden`` with ``rows`` times ``score`` (float32 product, rounded once), out of place."""
    return scale_video_tokens(hidden, score, rows, token_dim=1)
