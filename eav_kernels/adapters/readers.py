"""What the specs read off a forward's arguments: latent frame counts, generated video token
counts and refusals. Each reader is ``(model, forward_arguments) -> value``; ``forward_arguments``
maps the model's forward parameter names to this call's values."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

Arguments = Mapping[str, Any]


def _patch(model: torch.nn.Module, key: str | None, index: int | None = None) -> int:
    """``config[key]`` (or ``config[key][index]``) as a patch size; ``None`` means 1."""
    patch = model.config.get(key) if key else None
    if patch is not None and index is not None:
        patch = patch[index]
    return int(patch or 1)


def frames_axis(axis: int, temporal_patch: str | None = None, patch_index: int | None = None,
                argument: str = "hidden_states", reference_frames: int = 0):
    """``num_frames`` reader: ``arguments[argument].shape[axis]`` over the config's temporal patch
    size (``config[temporal_patch]``, or ``config[temporal_patch][patch_index]``; ``None`` means
    1), less ``reference_frames`` leading latent frames that are conditioning, not generated."""

    def num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
        frames = arguments[argument].shape[axis]  # [B, C, F, H, W], [B, F, C, H, W] or [B, F, H, W, C]
        return frames // _patch(model, temporal_patch, patch_index) - reference_frames

    return num_frames


def grid_tokens(frames_axis_: int, spatial_axes: Sequence[int], patch: str, patch_t: str | None = None,
                reference_frames: int = 0):
    """``video_tokens`` reader for a ``[B, C, F, H, W]`` latent patched by the config: the
    generated tokens ``(F / p_t - reference_frames) * (H / p) * (W / p)``. ``patch`` names an int
    spatial patch size (``patch_t`` then the temporal one) or a ``(t, h, w)`` tuple (``patch_t``
    ``None``)."""

    def video_tokens(model: torch.nn.Module, arguments: Arguments) -> int:
        shape = arguments["hidden_states"].shape
        if patch_t is None:
            p_t, p_h, p_w = (int(p) for p in model.config[patch])
        else:
            p_t, p_h = _patch(model, patch_t), _patch(model, patch)
            p_w = p_h
        height, width = (shape[axis] for axis in spatial_axes)
        return (shape[frames_axis_] // p_t - reference_frames) * (height // p_h) * (width // p_w)

    return video_tokens


def ltx_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """LTX-Video takes packed tokens ``[B, N, C]`` and the latent frame count as ``num_frames``."""
    if arguments.get("num_frames") is None:
        raise ValueError(
            f"{type(model).__name__} forward needs `num_frames` for Enhance-A-Video (a forward given "
            "only `video_coords`, as LTXConditionPipeline makes, has no frame count to read)"
        )
    return int(arguments["num_frames"])


def ltx2_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """LTX-2's ``num_frames`` counts latent frames before temporal patching (its RoPE grid steps
    by ``patch_size_t``)."""
    return -(-ltx_num_frames(model, arguments) // _patch(model, "patch_size_t"))


def ltx2_video_tokens(model: torch.nn.Module, arguments: Arguments) -> int:
    """LTX-2's generated tokens: the ``num_frames x height x width`` latent grid after patching
    (the RoPE grid's size); keyframe and reference tokens appended after them are conditioning."""
    if arguments.get("height") is None or arguments.get("width") is None:
        raise ValueError(f"{type(model).__name__} forward needs `height` and `width` for Enhance-A-Video")
    patch = _patch(model, "patch_size")
    height, width = (-(-int(arguments[name]) // patch) for name in ("height", "width"))
    return ltx2_num_frames(model, arguments) * height * width


def skyreels_causal_blocks(model: torch.nn.Module, arguments: Arguments) -> str | None:
    """SkyReels-V2 with ``num_frame_per_block > 1`` masks attention causally across frame blocks."""
    block = int(model.config.get("num_frame_per_block") or 1)
    if block > 1:
        return (
            f"num_frame_per_block={block} (causal diffusion forcing) masks each frame block's "
            "attention to later blocks; CFI is defined on the full F x F temporal softmax, which "
            "this model does not compute. Enhance the synchronous mode (causal_block_size=None)"
        )
    return None


def kandinsky5_sparse_attention(model: torch.nn.Module, arguments: Arguments) -> str | None:
    """Kandinsky 5 with ``sparse_params`` (NABLA) runs block-sparse attention through flex_attention."""
    if arguments.get("sparse_params") is not None:
        return (
            "NABLA sparse attention (sparse_params, attention_type='nabla') attends only the selected "
            "token blocks through flex_attention: the dense F x F temporal softmax is not computed"
        )
    return None


def minimax_h3_target_video(model: torch.nn.Module, arguments: Arguments) -> tuple[int, int]:
    """``(target video rows, latent frames)`` of a MiniMax-H3 forward, read off its packed layout
    and checked.

    The caller packs one sequence ``[text | keyframe conditions | target audio | target video]``
    (``position_ids [L, 3]``: each row's ``(t, h, w)`` rotary coordinates; ``video_indices
    [N_video]``: the packed rows of the video latents, conditioning rows first). The target video
    is the run of video rows that closes the sequence; its frames are the runs of equal rotary
    time in it: ``F`` runs of ``S`` rows each, times strictly increasing, every frame on frame 0's
    ``(h, w)`` grid (frame-major, token ``t * S + s``). Anything else raises ``ValueError`` with the
    numbers. Reads the layout on the host (one sync per forward)."""
    name = type(model).__name__
    positions = arguments["position_ids"].detach().to("cpu", torch.float64)  # [L, 3]
    video_rows = arguments["video_indices"].detach().to("cpu", torch.long)  # [N_video]
    length = positions.shape[0]
    last = int(video_rows[-1]) if video_rows.numel() else None
    if last != length - 1:
        raise ValueError(
            f"{name}: Enhance-A-Video reads the target video as the video rows that close the packed "
            f"sequence ([text | conditions | target audio | target video]); the last of the "
            f"{video_rows.numel()} video_indices is {last}, not the sequence's last row {length - 1}"
        )
    closing = video_rows == torch.arange(length - video_rows.numel(), length)  # [N_video]
    count = int(closing.flip(0).cumprod(0).sum())  # the contiguous run ending at row L - 1
    times, sizes = torch.unique_consecutive(positions[length - count:, 0], return_counts=True)
    frames, per_frame = times.numel(), int(sizes[0])
    grid = positions[length - count:, 1:]  # [F * S, 2]
    if (sizes != per_frame).any() or (times.diff() <= 0).any() or not torch.equal(
        grid.view(frames, per_frame, 2), grid[:per_frame].expand(frames, -1, -1)
    ):
        raise ValueError(
            f"{name}: the {count} target video rows (packed rows {length - count}..{length - 1}) are not "
            f"F frames of S positions: their rotary times form {frames} runs of sizes "
            f"{sizes[:8].tolist()}{'...' if frames > 8 else ''} at times {times[:8].tolist()}"
            f"{'...' if frames > 8 else ''} (need equal sizes, increasing times, one (h, w) grid)"
        )
    return count, frames


def minimax_h3_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """MiniMax-H3's target latent frames (``minimax_h3_target_video``)."""
    return minimax_h3_target_video(model, arguments)[1]


def minimax_h3_video_tokens(model: torch.nn.Module, arguments: Arguments) -> int:
    """MiniMax-H3's target video rows, the last of each layer's packed input (``minimax_h3_target_video``)."""
    return minimax_h3_target_video(model, arguments)[0]
