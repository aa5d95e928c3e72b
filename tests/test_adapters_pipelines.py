"""End to end: tiny pipelines (random weights, prompt embeddings passed, no downloads) run a few
denoising steps with Enhance-A-Video applied to the whole pipeline: CogVideoX, Wan 2.1, Wan 2.2
with two experts (text-to-video and image-to-video), LTX-Video with a keyframe condition."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_base import enhance_config, one_thread  # noqa: F401
from adapters_tiny_models import CASES
from cli_helpers import load_tool
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video
from eav_kernels.adapters import video_models
from eav_kernels.telemetry import CFIRecorder

pytestmark = pytest.mark.usefixtures("one_thread")

tiny = load_tool("make_tiny_pipeline")


def _cogvideox_pipeline():
    return diffusers.CogVideoXPipeline(
        tokenizer=None, text_encoder=None, vae=tiny.tiny_cogvideox_vae(), transformer=CASES["cogvideox"].build(),
        scheduler=diffusers.CogVideoXDDIMScheduler(),
    )


def _wan_pipeline(kind="wan"):
    """Wan 2.1 (one transformer) or Wan 2.2 A14B style (two experts, ``kind="wan2.2"``; ``"wan2.2-i2v"``
    conditions on an image through the VAE)."""
    return tiny.tiny_wan_pipeline(kind, text_encoder=False)


PIPELINES = {  # name: (build, call arguments)
    "cogvideox": (_cogvideox_pipeline, dict(height=64, width=64, num_frames=9)),
    "wan": (lambda: _wan_pipeline("wan"), dict(height=32, width=32, num_frames=9)),
    "wan2.2": (lambda: _wan_pipeline("wan2.2"), dict(height=32, width=32, num_frames=9)),
    "wan2.2-i2v": (lambda: _wan_pipeline("wan2.2-i2v"), dict(height=32, width=32, num_frames=9)),
    "ltx-condition": (tiny.tiny_ltx_condition_pipeline, dict(height=32, width=32, num_frames=9)),
}


def _keyframe_condition(size):
    """A keyframe at the last pixel frame: LTXConditionPipeline prepends its latent's tokens to the
    generated ones (a condition at frame 0 would be blended into the first latent frame)."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    image = torch.rand(1, 3, size["height"], size["width"], generator=torch.Generator().manual_seed(2))
    return [LTXVideoCondition(image=image, frame_index=size["num_frames"] - 1)]


def _generate(pipe, size):
    generator = torch.Generator().manual_seed(0)
    embeds = dict(prompt_embeds=torch.randn(1, 5, 16, generator=generator),
                  negative_prompt_embeds=torch.randn(1, 5, 16, generator=generator))
    if isinstance(pipe, diffusers.WanImageToVideoPipeline):
        embeds["image"] = torch.rand(1, 3, size["height"], size["width"], generator=generator)
    if isinstance(pipe, diffusers.LTXConditionPipeline):
        embeds.update(prompt_attention_mask=torch.ones(1, 5), negative_prompt_attention_mask=torch.ones(1, 5),
                      conditions=_keyframe_condition(size))
    return pipe(**embeds, guidance_scale=5.0, num_inference_steps=2, generator=torch.Generator().manual_seed(1),
                output_type="pt", **size).frames


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_runs_enhanced(name):
    build, size = PIPELINES[name]
    pipe = build()
    plain = _generate(pipe, size)
    apply_enhance_a_video(pipe, enhance_config(4.0))
    enhanced = _generate(pipe, size)
    remove_enhance_a_video(pipe)
    assert plain.shape == enhanced.shape == (1, size["num_frames"], 3, size["height"], size["width"])
    assert enhanced.isfinite().all()
    assert (enhanced - plain).abs().max().item() > 1e-4
    assert torch.equal(_generate(pipe, size), plain)


@pytest.mark.parametrize("name", ["wan2.2", "wan2.2-i2v"])
def test_two_experts_are_both_enhanced(name):
    """The high-noise expert runs the first step, the low-noise one the second: each records its
    own enhanced forwards, and leaving one out (on purpose: None) gives another video."""
    build, size = PIPELINES[name]
    pipe = build()
    assert set(video_models(pipe)) == {"transformer", "transformer_2"}
    high, low = CFIRecorder(), CFIRecorder()
    apply_enhance_a_video(pipe, {"transformer": enhance_config(4.0, recorder=high),
                                 "transformer_2": enhance_config(4.0, recorder=low)})
    both = _generate(pipe, size)
    remove_enhance_a_video(pipe)
    assert high.to_dict()["forwards"] and low.to_dict()["forwards"], "an expert ran unenhanced"
    apply_enhance_a_video(pipe, {"transformer": enhance_config(4.0), "transformer_2": None})
    high_only = _generate(pipe, size)
    remove_enhance_a_video(pipe)
    assert (both - high_only).abs().max().item() > 1e-4


def test_pipeline_config_must_name_every_video_model():
    pipe = _wan_pipeline("wan2.2")
    with pytest.raises(ValueError, match="leaves out \\['transformer_2'\\]"):
        apply_enhance_a_video(pipe, {"transformer": enhance_config(4.0)})
    with pytest.raises(ValueError, match="'vae'"):
        apply_enhance_a_video(pipe, {"transformer": None, "transformer_2": None, "vae": enhance_config(4.0)})


def test_failing_component_leaves_nothing_applied():
    pipe = _wan_pipeline("wan2.2")
    with pytest.raises(ValueError, match="matches none"):
        apply_enhance_a_video(pipe, {"transformer": enhance_config(4.0),
                                     "transformer_2": enhance_config(4.0, layers={r"nothing": 1.0})})
    for model in video_models(pipe).values():
        assert not any(hasattr(module, "_diffusers_hook") for module in model.modules())


def test_pipeline_without_a_video_model_is_refused():
    class ImagePipeline:
        components = {"vae": tiny.tiny_cogvideox_vae(), "scheduler": None}

    with pytest.raises(TypeError, match="no video model"):
        apply_enhance_a_video(ImagePipeline(), enhance_config(4.0))


def test_ltx_condition_pipeline_reads_frames_from_video_coords():
    """LTXConditionPipeline passes no num_frames: every forward (two steps, cond and uncond
    batched) reads the 3 generated latent frames off video_coords, past the keyframe's 64
    prepended tokens (of 256: one latent frame of 8 x 8). Which rows are measured and scaled is
    checked against the independent reference on the tiny model (case ltx_video_condition)."""
    build, size = PIPELINES["ltx-condition"]
    pipe = build()
    recorder = CFIRecorder()
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((kwargs["hidden_states"].shape[1], kwargs.get("num_frames"))),
        with_kwargs=True)
    apply_enhance_a_video(pipe, enhance_config(4.0, recorder=recorder))
    try:
        _generate(pipe, size)
    finally:
        remove_enhance_a_video(pipe)
        handle.remove()
    assert seen == [(256, None)] * 2
    assert [forward["num_frames"] for forward in recorder.to_dict()["forwards"]] == [3, 3]
