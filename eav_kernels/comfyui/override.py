"""``EnhanceAttentionOverride``: for the families whose hooks never see q and k (LTXV, LTX-2,
Cosmos, CogVideoX, Kandinsky 5), ComfyUI's ``transformer_options["optimized_attention_override"]``.

ComfyUI calls the override for every attention of the model as ``override(attention_function,
q, k, v, heads, **kwargs)`` (``heads`` positional or keyword; q/k/v ``[B, L, heads*D]``, or
``[B, heads, L, D]`` with ``skip_reshape=True``; the output ``[B, L, heads*D]``, or
``[B, heads, L, D]`` with ``skip_output_reshape=True``). Attention nodes (Sage, Flash, ComfyUI's
``set_model_optimized_attention``) write that key into the patcher's ``model_options``, so the
last node applied would win. The node therefore never writes it there: at every model call its
``DIFFUSION_MODEL`` wrapper (``OverrideForEachCall``) puts a fresh override into the call's own
copy of ``transformer_options``, chained to the override the call carries, whichever node set it
and whether it was applied before or after this one: ours measures and scales, that one computes,
each once per attention. A video self-attention is a call whose q and k have the same shape and
whose token count is the video's ``F * S`` (plus text first, for joint attention). Blocks are
numbered by ``transformer_options["block_index"]`` where the model sets it, else by the order of
the video self-attention calls in the model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .forward import ForwardInfo, forward_info
from .layout import VideoLayout, patched_grid, token_count_error
from .projection import PendingScores
from .scoring import call_score, scale_rows
from .settings import EnhanceSettings

OVERRIDE_KEY = "optimized_attention_override"  # ComfyUI's transformer_options entry
PROJECTION_SLOT = "attention"  # one pending score: each projection directly follows its attention


@dataclass(frozen=True)
class OverrideLayout:
    """One family's video self-attention: ``text_first`` (joint ``[text | video]``, else video
    only), ``patch_size`` ``(t, h, w)``, ``block_count``, whether calls without a ``block_index``
    are outside the video blocks (``needs_block_index``: Kandinsky 5's text blocks), and the
    ``heads * head_dim`` of its q (``query_width``: other widths are another stream, LTX-2's audio),
    and the ``transformer_options`` entry listing blocks that make no attention call (``skipped_blocks_key``)."""

    family: str
    text_first: bool
    patch_size: tuple[int, int, int]
    block_count: int
    needs_block_index: bool = False
    query_width: int | None = None
    skipped_blocks_key: str | None = None

    def attending_blocks(self, transformer_options: dict) -> list[int]:
        """The blocks whose self-attention runs in this call, in order: all but those
        ``transformer_options[skipped_blocks_key]`` lists (LTX-2's STG blocks pass v through)."""
        skipped = set(transformer_options.get(self.skipped_blocks_key, ())) if self.skipped_blocks_key else set()
        return [block for block in range(self.block_count) if block not in skipped]

    def video(self, tokens: int, grid: tuple[int, int, int]) -> VideoLayout:
        """The video tokens of a call of ``tokens`` tokens on a ``(T, H, W)`` latent ``grid``
        (text before them when ``text_first``); ``ValueError`` with the counts otherwise."""
        frames, height, width = patched_grid(grid, self.patch_size)
        expected = frames * height * width
        if tokens == expected or (self.text_first and tokens > expected):
            return VideoLayout(frames, height * width, slice(tokens - expected, tokens))
        raise token_count_error(self.family, tokens, frames, height * width)


class EnhanceAttentionOverride:
    """The override of one model call (see the module docstring). ``previous``: the override the
    call carried, called in its place (``None``: ComfyUI's attention function); ``pending``: where
    the paper's placement leaves the score for the output projection (``None``: the attention
    output is scaled here)."""

    def __init__(self, previous: Callable | None, layout: OverrideLayout, settings: EnhanceSettings,
                 pending: PendingScores | None):
        self.previous, self.layout, self.settings, self.pending = previous, layout, settings, pending
        if hasattr(previous, "container_function"):
            # ComfyUI calls this instead of the override when a model hands q, k, v over in
            # AttentionTensorContainers (none of these families does): the previous backend's stays
            self.container_function = previous.container_function

    def __call__(self, attention_function: Callable, *args: Any, **kwargs: Any) -> Any:
        enhancement = self._enhancement(args, kwargs)
        if self.previous is not None:
            out = self.previous(attention_function, *args, **kwargs)
        else:
            out = attention_function(*args, **kwargs)
        if enhancement is None:
            return out
        score, rows = enhancement
        if self.pending is not None:
            self.pending.put(PROJECTION_SLOT, score, rows)
            return out
        if kwargs.get("skip_output_reshape", False):  # [B, heads, L, D]
            return scale_rows(out.transpose(1, 2), score, rows).transpose(1, 2)
        return scale_rows(out, score, rows)  # [B, L, heads*D]

    def _enhancement(self, args: tuple, kwargs: dict) -> tuple[torch.Tensor, slice] | None:
        """``(score, video rows)`` of a video self-attention in the window, else ``None``."""
        transformer_options = kwargs.get("transformer_options") or {}
        query, key = args[0], args[1]
        if query.shape != key.shape or (self.layout.needs_block_index and "block_index" not in transformer_options):
            return None
        info = forward_info(transformer_options)
        if info.latent_grid is None:
            raise ValueError(f"{self.layout.family}: the diffusion model got no [B, C, T, H, W] video latent")
        heads = args[3] if len(args) > 3 else kwargs["heads"]
        if not kwargs.get("skip_reshape", False):  # [B, L, heads*D] -> [B, heads, L, D] views
            query, key = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (query, key))
        if self.layout.query_width is not None and query.shape[1] * query.shape[3] != self.layout.query_width:
            return None
        video = self.layout.video(query.shape[2], info.latent_grid)
        block = self._block(transformer_options, info)
        if not info.active or not self.settings.selects(block):
            return None
        return call_score(query, key, video, self.settings, transformer_options.get("cond_or_uncond")), video.video

    def _block(self, transformer_options: dict, info: ForwardInfo) -> int:
        """This call's block: ``block_index`` where the model sets it, else the next attending block."""
        blocks = self.layout.attending_blocks(transformer_options)
        call, info.video_attention_calls = info.video_attention_calls, info.video_attention_calls + 1
        if call >= len(blocks):
            raise ValueError(
                f"{self.layout.family}: {call + 1} video self-attention calls in one model call of "
                f"{len(blocks)} blocks: a cross-attention whose text is as long as the video's tokens "
                "cannot be told apart from the self-attention; refused"
            )
        return int(transformer_options.get("block_index", blocks[call]))


class OverrideForEachCall:
    """A ``CallSetup``: puts into one model call's own ``transformer_options`` an
    ``EnhanceAttentionOverride`` chained to the override that call carries (the patcher's
    ``model_options`` and other clones never see it, so an attention node applied later neither
    replaces it nor chains to it)."""

    def __init__(self, layout: OverrideLayout, settings: EnhanceSettings, pending: PendingScores | None):
        self.layout, self.settings, self.pending = layout, settings, pending

    def __call__(self, transformer_options: dict, args: tuple, kwargs: dict) -> None:
        transformer_options[OVERRIDE_KEY] = EnhanceAttentionOverride(
            transformer_options.get(OVERRIDE_KEY), self.layout, self.settings, self.pending)
