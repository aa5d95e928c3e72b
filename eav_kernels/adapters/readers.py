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


def _given_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """The forward's ``num_frames`` argument (latent frames), which must be given."""
    if arguments.get("num_frames") is None:
        raise ValueError(f"{type(model).__name__} forward needs `num_frames` for Enhance-A-Video")
    return int(arguments["num_frames"])


def ltx_generated_video(model: torch.nn.Module, arguments: Arguments) -> tuple[int, int]:
    """``(generated tokens, latent frames)`` of an LTX-Video forward on packed ``[B, N, C]`` tokens.

    ``LTXPipeline`` passes ``num_frames`` (every token is generated). ``LTXConditionPipeline``
    passes only ``video_coords [B, 3, N]`` (each token's ``(t, h, w)``), with keyframe condition
    tokens prepended to the generated ``F x H x W`` grid: the grid is the trailing run of frames
    (runs of equal ``t``) whose times increase, its first frame at the video's start ``t``, after
    which a prepended keyframe (placed at its ``frame_index > 0``) breaks the increase. Checked
    like ``frame_major_rows``; neither argument raises ``ValueError`` naming both."""
    tokens = arguments["hidden_states"].shape[1]
    if arguments.get("num_frames") is not None:
        return tokens, int(arguments["num_frames"])
    coords = arguments.get("video_coords")  # [B, 3, N]
    if coords is None:
        raise ValueError(
            f"{type(model).__name__} forward needs `num_frames` (LTXPipeline passes it) or `video_coords` "
            "(LTXConditionPipeline passes it) for Enhance-A-Video: it got neither, so the latent frame "
            "count cannot be read"
        )
    coords = coords.detach().to("cpu", torch.float64)
    differs = (coords != coords[:1]).any(dim=1)  # [B, N]: a token whose (t, h, w) differs from sample 0's
    if bool(differs.any()):
        sample, token = differs.nonzero()[0].tolist()
        raise ValueError(
            f"{type(model).__name__}: video_coords [B={coords.shape[0]}, 3, N={coords.shape[2]}] differ between "
            f"batch elements (sample {sample}, token {token}: {coords[sample, :, token].tolist()} vs sample 0's "
            f"{coords[0, :, token].tolist()}); Enhance-A-Video reads one layout for the whole batch"
        )
    times, sizes = torch.unique_consecutive(coords[0, 0], return_counts=True)
    increasing = (times[1:] > times[:-1]).flip(0)  # [runs - 1], from the end
    frames = 1 + int(increasing.cumprod(0).sum())
    rows = int(sizes[-frames:].sum())
    return rows, frame_major_rows(type(model).__name__, coords[0].T[tokens - rows:], "video_coords")


def ltx_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """LTX-Video's latent frames (``ltx_generated_video``)."""
    return ltx_generated_video(model, arguments)[1]


def ltx_video_tokens(model: torch.nn.Module, arguments: Arguments) -> int | None:
    """LTX-Video's generated tokens, the last of each layer's input (``ltx_generated_video``);
    ``None`` when every token is (no prepended keyframe: context parallelism stays possible)."""
    rows = ltx_generated_video(model, arguments)[0]
    return None if rows == arguments["hidden_states"].shape[1] else rows


def ltx2_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """LTX-2's ``num_frames`` counts latent frames before temporal patching (its RoPE grid steps
    by ``patch_size_t``)."""
    return -(-_given_num_frames(model, arguments) // _patch(model, "patch_size_t"))


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


def frame_major_rows(model_name: str, positions: torch.Tensor,  # [N, 3]: (t, h, w) of each row
                     source: str) -> int:
    """The frame count ``F`` of ``N`` rows that must be ``F`` frames of ``S`` positions,
    frame-major (row ``t * S + s``): runs of equal ``t``, all of ``S`` rows, times increasing,
    every frame on frame 0's ``(h, w)`` grid. Else ``ValueError`` with the numbers."""
    times, sizes = torch.unique_consecutive(positions[:, 0], return_counts=True)
    frames, per_frame = times.numel(), int(sizes[0])
    grid = positions[:, 1:]  # [F * S, 2]
    if (sizes != per_frame).any() or (times.diff() <= 0).any() or not torch.equal(
        grid.view(frames, per_frame, 2), grid[:per_frame].expand(frames, -1, -1)
    ):
        raise ValueError(
            f"{model_name}: the {positions.shape[0]} generated video rows are not F frames of S positions: "
            f"their times in {source} form {frames} runs of sizes {sizes[:8].tolist()}"
            f"{'...' if frames > 8 else ''} at times {times[:8].tolist()}{'...' if frames > 8 else ''} "
            "(need equal sizes, increasing times, one (h, w) grid)"
        )
    return frames


def minimax_h3_target_video(model: torch.nn.Module, arguments: Arguments) -> tuple[int, int]:
    """``(target video rows, latent frames)`` of a MiniMax-H3 forward, read off its packed layout
    and checked.

    The caller packs one sequence ``[text | keyframe conditions | target audio | target video]``
    (``position_ids [L, 3]``: each row's ``(t, h, w)`` rotary coordinates; ``video_indices
    [N_video]``: the packed rows of the video latents, conditioning rows first). The target video
    is the run of video rows that closes the sequence, checked frame-major
    (``frame_major_rows``); anything else raises ``ValueError`` with the numbers. Reads the layout
    on the host (host syncs at each forward)."""
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
    return count, frame_major_rows(name, positions[length - count:], "position_ids")


def minimax_h3_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """MiniMax-H3's target latent frames (``minimax_h3_target_video``)."""
    return minimax_h3_target_video(model, arguments)[1]


def minimax_h3_video_tokens(model: torch.nn.Module, arguments: Arguments) -> int:
    """MiniMax-H3's target video rows, the last of each layer's packed input (``minimax_h3_target_video``)."""
    return minimax_h3_target_video(model, arguments)[0]


# pixels per token of Wan-Animate-2's origin_area (8x8 VAE downsampling, 2x2 patches): the model's
# own forward divides origin_area[0] * origin_area[1] by this literal to size its attention buffer
_PIXELS_PER_TOKEN = 256


def wan_animate2_reference_pass(model: torch.nn.Module, arguments: Arguments) -> bool:
    """Wan-Animate-2's ``kv_cache_mode="extract"`` forward encodes the driving video into the K/V
    cache: no denoising pass of the generated video."""
    return arguments.get("kv_cache_mode") == "extract"


def wan_animate2_num_frames(model: torch.nn.Module, arguments: Arguments) -> int:
    """Wan-Animate-2's generated latent frames: each sample's ``[C, 1 + F, H, W]`` latents (a list)
    less frame 0, the reference image's slot."""
    latents = arguments["hidden_states"][0]  # [C, 1 + F, H, W]
    return latents.shape[1] // _patch(model, "patch_size", 0) - 1


def wan_animate2_video_tokens(model: torch.nn.Module, arguments: Arguments) -> int:
    """Wan-Animate-2's generated tokens ``F * h * w`` (after the reference slot's ``h * w``).

    The generation attention scatters each frame's ``h * w`` rows into a buffer laid out for
    ``origin_area`` (``origin_area[0] * origin_area[1] / 256`` rows per frame); the generated rows
    are the buffer's first rows, frame-major, only when the two agree: else ``ValueError``."""
    latents = arguments["hidden_states"][0]  # [C, 1 + F, H, W]
    patch_h, patch_w = _patch(model, "patch_size", 1), _patch(model, "patch_size", 2)
    positions = (latents.shape[2] // patch_h) * (latents.shape[3] // patch_w)
    origin_area = arguments.get("origin_area")  # [height, width] in pixels
    buffer_positions = None if origin_area is None else origin_area[0] * origin_area[1] // _PIXELS_PER_TOKEN
    if buffer_positions != positions:
        raise ValueError(
            f"{type(model).__name__}: the generation attention lays frames out at "
            f"{buffer_positions} rows each (origin_area={origin_area}) but the latents have {positions} "
            "positions per frame: the generated rows are not contiguous frame-major rows of the call"
        )
    return wan_animate2_num_frames(model, arguments) * positions
