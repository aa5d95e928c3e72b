"""Attention shapes of real video diffusion transformers, batch 1, one call."""

from __future__ import annotations

import types
from dataclasses import dataclass

__all__ = ["AttentionPreset", "PRESETS"]


@dataclass(frozen=True)
class AttentionPreset:
    name: str
    num_frames: int  # latent frames F
    spatial: int  # tokens per frame S
    heads: int
    head_dim: int
    text_tokens: int = 0  # text tokens in the same (joint) attention
    text_position: str = "none"  # "first", "last" or "none"

    @property
    def video_tokens(self) -> int:
        return self.num_frames * self.spatial


PRESETS: types.MappingProxyType[str, AttentionPreset] = types.MappingProxyType({
    p.name: p
    for p in (
        AttentionPreset("cogvideox-2b", 13, 1350, 30, 64, 226, "first"),
        AttentionPreset("cogvideox-5b", 13, 1350, 48, 64, 226, "first"),
        AttentionPreset("hunyuan-video", 33, 3600, 24, 128, 256, "last"),
        AttentionPreset("wan2.1-1.3b", 21, 1560, 12, 128),
        AttentionPreset("wan2.1-14b", 21, 1560, 40, 128),
        AttentionPreset("ltx-video", 16, 384, 32, 64),
        AttentionPreset("mochi", 28, 1590, 24, 128, 256, "last"),
        AttentionPreset("latte-temporal", 16, 1024, 16, 72),
    )
})
