"""Enhance-A-Video on a native ComfyUI model in plain PyTorch: the truth the node is tested against.

Independent of the node's code path and of the package's kernels: ComfyUI's
``optimized_attention_override`` sees q and k exactly as each self-attention gets them (after
QK-norm and RoPE); the cross-frame intensity is computed here from every ``F x F`` temporal map in
float64, and the score multiplies the video rows where the paper's code puts it: the output of
the block's self-attention output projection (a torch forward hook on that module), or, in
HunyuanVideo's single-stream blocks (one ``linear2`` over attention and MLP), the attention output.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch


@dataclass(frozen=True)
class ReferenceSettings:
    """The node's settings, as the reference reads them. ``blocks``: enhanced block numbers in
    model order (``None``: all); ``window``: ``(start_percent, end_percent)`` of the schedule;
    ``per_sample``: one score per ``cond_or_uncond`` entry instead of one per call;
    ``compute_dtype``: of the maps (float32 gives the plain low-precision path, the yardstick of
    the accuracy contract); ``score_factor``: multiplies every score (how much a few float32
    ulps of the score move the sample)."""

    weight: float = 4.0
    blocks: frozenset[int] | None = None
    window: tuple[float, float] = (0.0, 1.0)
    per_sample: bool = False
    compute_dtype: torch.dtype = torch.float64
    score_factor: float = 1.0


def reference_cfi(query: torch.Tensor,  # [B, H, F*S, D] the video rows, frame-major
                  key: torch.Tensor,  # [B, H, F*S, D]
                  frames: int, compute_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[B]``: per batch row, the mean over heads and positions of each ``F x F`` softmax's
    off-diagonal mass / (F (F - 1)), every map built in ``compute_dtype`` (scale ``D**-0.5``)."""
    batch, heads, tokens, dim = query.shape
    spatial = tokens // frames
    q = query.to(compute_dtype).reshape(batch, heads, frames, spatial, dim).transpose(2, 3)  # [B, H, S, F, D]
    k = key.to(compute_dtype).reshape(batch, heads, frames, spatial, dim).transpose(2, 3)
    maps = torch.softmax(q @ k.transpose(-1, -2) * dim ** -0.5, dim=-1)  # [B, H, S, F, F]
    off_diagonal = maps.sum(dim=(-1, -2)) - maps.diagonal(dim1=-2, dim2=-1).sum(dim=-1)  # [B, H, S]
    return (off_diagonal / (frames * (frames - 1))).mean(dim=(1, 2))


def reference_score(cfi: torch.Tensor,  # [B] float64
                    frames: int, settings: ReferenceSettings, entries: int) -> torch.Tensor:
    """``[B]``: ``max(1, CFI * (F + w))``, CFI the batch mean, or with ``per_sample`` the mean of
    each of the ``entries`` (cond, uncond) that ComfyUI stacked batch-major."""
    if settings.per_sample:
        cfi = cfi.view(entries, -1).mean(dim=1).repeat_interleave(cfi.shape[0] // entries)
    else:
        cfi = cfi.mean().expand(cfi.shape[0])
    return (cfi * (frames + settings.weight)).clamp(min=1.0) * settings.score_factor


@dataclass(frozen=True)
class ReferencePlacement:
    """Where a family's video self-attentions are and where their score goes.

    ``projections``: the output projection modules (a regular expression over the diffusion
    model's module names) whose output carries the score of the self-attention just before them;
    ``token_dim``: their output's token axis; ``attention_output``: ``(block_type)`` -> the score
    multiplies the attention output instead (HunyuanVideo's single-stream blocks);
    ``indexed``: the family's video blocks set ``block_index`` (calls without it are text
    encoders' self-attention); ``number``: ``(block_type, block_index)`` -> the block's number in
    model order (``blocks`` settings); families without ``block_index`` are numbered by call order,
    ``blocks`` self-attentions per model call.
    ``text_tokens``: joint text tokens before the video in each self-attention; ``width``: the
    video self-attention's q width ``H * D`` where another stream's self-attention also passes
    (LTX-2's audio), ``None`` otherwise."""

    projections: str
    token_dim: int = 1
    attention_output: Callable[[str | None], bool] = lambda block_type: False
    indexed: bool = False
    number: Callable[[str | None, int], int] | None = None
    blocks: int = 0
    text_tokens: int = 0
    width: int | None = None


def _by_index(block_type: str | None, index: int) -> int:
    return index


WAN_PLACEMENT = ReferencePlacement(r"blocks\.\d+\.self_attn\.o", indexed=True, number=_by_index)
COSMOS_PREDICT2_PLACEMENT = ReferencePlacement(r"blocks\.\d+\.self_attn\.output_proj", indexed=True, number=_by_index)
KANDINSKY5_PLACEMENT = ReferencePlacement(r"visual_transformer_blocks\.\d+\.self_attention\.out_layer", indexed=True,
                                          number=_by_index)


def ltxv_placement(blocks: int, width: int | None = None) -> ReferencePlacement:
    """LTXV; LTX-2 with its video width (``audio_attn1`` is the audio stream's self-attention)."""
    return ReferencePlacement(r"transformer_blocks\.\d+\.attn1\.to_out\.0", blocks=blocks, width=width)


def cosmos_placement(blocks: int) -> ReferencePlacement:
    return ReferencePlacement(r"blocks\.block\d+\.blocks\.0\.block\.attn\.to_out\.0", token_dim=0, blocks=blocks)


def cogvideox_placement(blocks: int, text_tokens: int) -> ReferencePlacement:
    return ReferencePlacement(r"blocks\.\d+\.attn_out", blocks=blocks, text_tokens=text_tokens)


def hunyuan_video_placement(double_blocks: int, text_tokens: int) -> ReferencePlacement:
    """Double-stream blocks ``0 .. D-1`` (paper: after ``img_attn.proj``), then single-stream."""
    return ReferencePlacement(
        r"double_blocks\.\d+\.img_attn\.proj", attention_output=lambda block_type: block_type == "single",
        indexed=True, number=lambda block_type, index: index + double_blocks if block_type == "single" else index,
        text_tokens=text_tokens)


def _heads_first(tensor: torch.Tensor,  # [B, L, H*D] or [B, H, L, D]
                 heads: int, skip_reshape: bool) -> torch.Tensor:
    if skip_reshape:
        return tensor
    batch, tokens, width = tensor.shape
    return tensor.view(batch, tokens, heads, width // heads).transpose(1, 2)


def _scale_last_rows(hidden: torch.Tensor,  # tokens on token_dim (0 or 1), batch on the other of the two
                     rows: int, score: torch.Tensor,  # score [B]
                     token_dim: int = 1) -> torch.Tensor:
    """The last ``rows`` tokens times the score: a float32 product rounded once to ``hidden``'s dtype."""
    scaled = hidden.clone()
    video = scaled.narrow(token_dim, hidden.shape[token_dim] - rows, rows)
    per_row = score.float().view([-1, 1, 1] if token_dim == 1 else [1, -1, 1])
    video.copy_(video.float() * per_row)
    return scaled


@contextlib.contextmanager
def reference_enhancement(patcher: Any, placement: ReferencePlacement, tokens_per_frame: int,
                          settings: ReferenceSettings, scores: list[torch.Tensor] | None = None) -> Iterator[Any]:
    """A clone of ``patcher`` enhanced by the reference while the context is open (the forward
    hooks are removed on exit). Each video self-attention holds the placement's text tokens first,
    then the video: as many frames of ``tokens_per_frame`` tokens as the call has (a context window
    has fewer than the latent). ``scores`` collects every score applied."""
    sampling = patcher.get_model_object("model_sampling")
    sigma_high, sigma_low = (sampling.percent_to_sigma(percent) for percent in settings.window)
    pending: list[tuple[int, torch.Tensor] | None] = [None]  # the last self-attention's (video rows, score)
    calls = [0]  # video self-attentions so far (call-order numbering)

    def override(attention: Callable, *args: Any, **kwargs: Any) -> torch.Tensor:
        query, key = args[0], args[1]
        options = kwargs["transformer_options"]
        output = attention(*args, **kwargs)
        if query.shape != key.shape or (placement.indexed and "block_index" not in options) or (
                placement.width is not None and query.shape[-1] != placement.width):
            return output  # cross-attention, a text encoder's or the audio stream's self-attention
        pending[0] = None
        block_type = options.get("block_type")
        if placement.number is not None:
            number = placement.number(block_type, options["block_index"])
        else:
            number, calls[0] = calls[0] % placement.blocks, calls[0] + 1
        sigma = float(options["sigmas"].max())
        if not sigma_low <= sigma <= sigma_high or (settings.blocks is not None and number not in settings.blocks):
            return output
        heads = args[3] if len(args) > 3 else kwargs["heads"]
        skip = kwargs.get("skip_reshape", False)
        q, k = _heads_first(query, heads, skip), _heads_first(key, heads, skip)
        video = q.shape[2] - placement.text_tokens
        frames = video // tokens_per_frame
        assert frames * tokens_per_frame == video, f"{video} video tokens are not frames of {tokens_per_frame}"
        cfi = reference_cfi(q[:, :, -video:], k[:, :, -video:], frames, settings.compute_dtype)
        score = reference_score(cfi, frames, settings, len(options["cond_or_uncond"]))
        if scores is not None:
            scores.append(score)
        if placement.attention_output(block_type):
            return _scale_last_rows(output, video, score)
        pending[0] = (video, score)
        return output

    def scale_projection(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        entry, pending[0] = pending[0], None
        return None if entry is None else _scale_last_rows(output, *entry, token_dim=placement.token_dim)

    handles = [module.register_forward_hook(scale_projection)
               for name, module in patcher.model.diffusion_model.named_modules()
               if re.fullmatch(placement.projections, name)]
    assert handles, f"no module of {type(patcher.model.diffusion_model).__name__} matches {placement.projections}"
    clone = patcher.clone()
    clone.model_options["transformer_options"]["optimized_attention_override"] = override
    try:
        yield clone
    finally:
        for handle in handles:
            handle.remove()


def check_against_reference(got: torch.Tensor,  # [B, C, T, H, W] the node's sample
                            expected: torch.Tensor,  # the float64 reference's
                            low_precision: torch.Tensor,  # the float32 reference's
                            nudged: torch.Tensor,  # the float64 reference's with scores 4 ulps up
                            plain: torch.Tensor) -> None:  # the unenhanced model's
    """FlashAttention's contract carried to a whole sample: the node's error against the float64
    reference is at most twice that of the float32 reference, plus what a 4-ulp change of the
    float32 score moves the sample (the model amplifies the last bit of a score over the steps),
    plus float32 noise; and that bound is far below what the enhancement changes (else the
    comparison could not fail)."""
    effect = (expected - plain).abs().max().item()
    assert effect > 1e-3, f"the enhancement changes the sample by only {effect:.2e}: nothing to compare"
    error = (got - expected).abs().max().item()
    bound = 2 * (low_precision - expected).abs().max().item()
    score_ulps = (nudged - expected).abs().max().item()
    noise = 8 * torch.finfo(torch.float32).eps * expected.abs().max().item()
    assert error <= bound + score_ulps + noise < effect / 100, (
        f"node vs float64 reference: {error:.3e}; allowed 2 x float32 reference's {bound / 2:.3e} + 4 score ulps' "
        f"{score_ulps:.3e} + noise {noise:.3e}; effect of the enhancement {effect:.3e}")
