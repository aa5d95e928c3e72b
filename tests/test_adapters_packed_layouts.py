"""Models whose generated video sits in a packed sequence laid out by the caller or by the
model: MiniMax-H3 (the target video's rows and frames are read off the forward's layout
arguments and checked) and Wan-Animate-2 (generation rows at the head of a 128-aligned flex
buffer; the reference pass runs untouched). A layout that cannot be read raises ValueError with
the numbers, before anything is computed."""

import contextlib

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_base import enhance_config, run
from adapters_tiny_models import CASES
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video
from eav_kernels.adapters.readers import ltx_generated_video, minimax_h3_target_video

CASE = CASES["minimax_h3"]
WAN_ANIMATE_2 = CASES["wan_animate_2"]
TARGET_ROWS = CASE.num_frames * 16  # the tiny layout: F frames of 4 x 4 positions close the sequence


@pytest.fixture(scope="module")
def model():
    return CASE.build()


@contextlib.contextmanager
def _enhanced(model: torch.nn.Module):
    """``model`` with Enhance-A-Video (weight 4) applied, removed on the way out."""
    apply_enhance_a_video(model, enhance_config(4.0))
    try:
        yield model
    finally:
        remove_enhance_a_video(model)


def _layout():
    return CASE.inputs(1, torch.Generator().manual_seed(0))


def test_reads_target_rows_and_frames_of_the_pipeline_layout(model):
    assert minimax_h3_target_video(model, _layout()) == (TARGET_ROWS, CASE.num_frames)


def test_target_video_not_closing_the_sequence_raises_with_the_numbers(model):
    inputs = _layout()
    inputs["video_indices"] = inputs["video_indices"][:-1]  # the last row is no video row
    length = inputs["position_ids"].shape[0]
    with pytest.raises(ValueError, match=f"is {length - 2}, not the sequence's last row {length - 1}"):
        minimax_h3_target_video(model, inputs)


def test_frames_of_unequal_size_raise(model):
    """A video row just before the target at frame 0's rotary time (a keyframe anchored at the
    first frame with no audio rows between) joins the closing run: its first frame would hold
    17 rows, which is refused, not guessed."""
    inputs = _layout()
    positions = inputs["position_ids"]  # [L, 3]
    length = positions.shape[0]
    positions[length - TARGET_ROWS - 1] = positions[length - TARGET_ROWS]
    inputs["video_indices"] = torch.arange(length - TARGET_ROWS - 1, length)
    with pytest.raises(ValueError, match=r"runs of sizes \[17, 16, 16\]"):
        minimax_h3_target_video(model, inputs)


@pytest.mark.parametrize("change", ["decreasing times", "another grid"])
def test_frames_not_frame_major_raise(model, change):
    inputs = _layout()
    target = inputs["position_ids"][-TARGET_ROWS:]  # [F * S, 3] view
    if change == "decreasing times":
        target[-16:, 0] = target[0, 0] - 1.0
    else:
        target[-16:, 1:] = target[-16:, 1:].flip(0)  # the last frame's positions in another order
    with pytest.raises(ValueError, match="are not F frames of S positions"):
        minimax_h3_target_video(model, inputs)


def test_unreadable_layout_raises_at_the_enhanced_forward(model):
    inputs = _layout()
    inputs["position_ids"][-16:, 0] += 100.0 * torch.arange(16.0)  # the last frame's rows at 16 times
    plain = run(model, {**inputs, "position_ids": inputs["position_ids"].clone()})  # the model itself runs
    with _enhanced(model):
        with pytest.raises(ValueError, match="18 runs"):
            run(model, inputs)
    assert torch.equal(run(model, inputs), plain)


def _reference_pass_inputs(cache):
    """Wan-Animate-2's reference pass over a 3-frame driving segment, filling ``cache``."""
    generator = torch.Generator().manual_seed(3)
    return dict(
        hidden_states=[torch.randn(4, 3, 8, 8, generator=generator)], timestep=torch.tensor([900.0]),
        encoder_hidden_states=[torch.randn(5, 16, generator=generator)],
        condition_latents=[torch.randn(8, 3, 8, 8, generator=generator)], kv_cache=cache, kv_cache_mode="extract",
        seq_len=3 * 16, offset_grid_sizes=torch.tensor([[3, 4, 4]]), return_dict=False,
    )


def test_wan_animate2_reference_pass_runs_untouched():
    """The reference pass fills the K/V cache the denoising passes attend: enhanced, it computes
    exactly what it computes plain (its output and every cached K/V), while a denoising pass on
    the same model is enhanced."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    model = WAN_ANIMATE_2.build()
    plain_cache, enhanced_cache = WanAnimate2KVCache(2), WanAnimate2KVCache(2)
    plain = run(model, _reference_pass_inputs(plain_cache))
    denoising = WAN_ANIMATE_2.inputs(1, torch.Generator().manual_seed(4))
    plain_denoised = run(model, denoising)
    with _enhanced(model):
        assert torch.equal(run(model, _reference_pass_inputs(enhanced_cache)), plain)
        assert (run(model, denoising) - plain_denoised).abs().max().item() > 1e-4
    for layer in range(2):
        for cached, expected in zip(enhanced_cache.get(layer).get(), plain_cache.get(layer).get()):
            assert torch.equal(cached, expected)


def test_wan_animate2_buffer_of_another_frame_size_raises_with_the_numbers():
    """origin_area of 128 x 64 pixels lays frames out at 32 rows, the latents have 16 positions
    per frame: the generated rows would not be the buffer's first rows."""
    model = WAN_ANIMATE_2.build()
    inputs = {**WAN_ANIMATE_2.inputs(1, torch.Generator().manual_seed(5)), "origin_area": [128, 64]}
    with _enhanced(model):
        with pytest.raises(ValueError, match=r"at 32 rows each \(origin_area=\[128, 64\]\) but the latents have 16"):
            run(model, inputs)


def test_ltx_forward_without_frame_count_or_coords_says_what_to_pass():
    case = CASES["ltx_video_condition"]
    model = case.build()
    inputs = case.inputs(1, torch.Generator().manual_seed(6))
    del inputs["video_coords"]
    with _enhanced(model):
        with pytest.raises(ValueError, match="needs `num_frames` .* or `video_coords`"):
            run(model, inputs)


def test_ltx_video_coords_differing_between_samples_name_the_sample_and_token():
    """LTX's layout is read once for the batch: a sample whose coordinates differ raises, naming
    where (sample 1, token 5) and both coordinates."""
    frames, positions = 3, 4
    grid = torch.stack(torch.meshgrid(torch.arange(frames), torch.arange(2), torch.arange(2), indexing="ij"))
    coords = grid.reshape(1, 3, frames * positions).repeat(2, 1, 1).float()  # [B=2, 3, N=12]
    coords[1, 2, 5] += 7.0
    arguments = {"hidden_states": torch.randn(2, frames * positions, 8), "video_coords": coords}
    with pytest.raises(ValueError, match=r"sample 1, token 5: \[1.0, 0.0, 8.0\] vs sample 0's \[1.0, 0.0, 1.0\]"):
        ltx_generated_video(torch.nn.Identity(), arguments)
    coords[1, 2, 5] -= 7.0
    assert ltx_generated_video(torch.nn.Identity(), arguments) == (frames * positions, frames)
