"""``VideoLayout``: where the frame-major video tokens sit in one attention call, per family.

Enhance-A-Video reads token ``t * S + s`` as frame ``t``, spatial position ``s``: F frames of S
tokens each, contiguous. Each family says how F and S are read from what its hooks receive, where
text sits, and where extra tokens (reference latents, motion frames, in-context latents) sit when
its layout says so; extra tokens whose place is not known are refused with the numbers, never
guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class VideoLayout:
    """``frames`` (F) x ``spatial`` (S) frame-major video tokens at ``video`` of the attention
    sequence; every other token (text, conditioning) is attended normally, never measured or scaled."""

    frames: int
    spatial: int
    video: slice


def patched_grid(latent_grid: Sequence[int], patch_size: Sequence[int]) -> tuple[int, int, int]:
    """``(F, H', W')`` tokens of a ``(T, H, W)`` latent cut into ``patch_size`` patches (the models
    pad the latent to whole patches first: ``pad_to_patch_size``)."""
    return tuple(-(-int(size) // int(patch)) for size, patch in zip(latent_grid, patch_size))


def wan_layout(sequence_length: int, transformer_options: Mapping[str, Any]) -> VideoLayout:
    """Wan self-attention: video only, ``transformer_options["grid_sizes"] == (F, H, W)`` after
    patching. Extra tokens (a reference latent before the video, S2V motion frames or in-context
    latents after it) are not located by the hook's arguments: refused."""
    grid = transformer_options.get("grid_sizes")
    if grid is None or len(grid) != 3:
        raise ValueError(f"Wan attention hook: transformer_options['grid_sizes'] should be (F, H, W), got {grid!r}")
    frames, height, width = (int(g) for g in grid)
    return _whole_sequence("Wan", sequence_length, frames, height * width)


def joint_layout(family: str, image_slice: Sequence[int], grid: tuple[int, int, int],
                 conditioning_before: bool) -> VideoLayout:
    """A joint text-video attention (HunyuanVideo's streams): ``image_slice = [start, stop)`` holds
    the image tokens (``img_slice``: the video's, after any reference latent's), ``grid = (F, H, W)``
    after patching. With ``conditioning_before`` extra image tokens (a reference latent) are
    located before the video."""
    start, stop = int(image_slice[0]), int(image_slice[1])
    frames, spatial = grid[0], grid[1] * grid[2]
    expected = frames * spatial
    if stop - start == expected or (conditioning_before and stop - start > expected):
        return VideoLayout(frames, spatial, slice(stop - expected, stop))
    raise token_count_error(family, stop - start, frames, spatial)


def _whole_sequence(family: str, sequence_length: int, frames: int, spatial: int) -> VideoLayout:
    if sequence_length != frames * spatial:
        raise token_count_error(family, sequence_length, frames, spatial)
    return VideoLayout(frames, spatial, slice(0, sequence_length))


def token_count_error(family: str, tokens: int, frames: int, spatial: int) -> ValueError:
    return ValueError(
        f"{family} self-attention got {tokens} image tokens, but the latent gives F={frames} frames of "
        f"S={spatial} tokens = {frames * spatial}: {tokens - frames * spatial} extra tokens (reference "
        "latent, motion frames, guide or in-context latents, a context window) whose place this "
        "model's hook arguments do not say. Enhance-A-Video refuses rather than measure the wrong "
        "tokens"
    )
