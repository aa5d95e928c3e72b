"""The node on the families it reaches through ComfyUI's attention override (LTXV, Cosmos 1,
CogVideoX, Kandinsky 5), on stand-ins that call the override with each family's argument layout
(tests/comfyui_standin_override_models.py), against the independent float64 reference."""

from __future__ import annotations

import pytest
import torch

from comfyui_helpers import FRAMES, SPATIAL, assert_close, enhance, latent, patcher, text
from comfyui_reference import AFTER, BEFORE, Expectation, override_expected
from comfyui_standin_override_models import CogVideoXTransformer3DModel, GeneralDIT, Kandinsky5, LTXAVModel, LTXVModel
from comfyui_standins import BaseModel, ModelPatcher
from eav_kernels.comfyui.forward import FORWARD_KEY, ForwardInfo
from output_checks import assert_changed

MODELS = {"ltxv": LTXVModel, "cosmos": GeneralDIT, "cogvideox": CogVideoXTransformer3DModel, "kandinsky5": Kandinsky5}


def build(family: str, dtype=torch.float32) -> ModelPatcher:
    torch.manual_seed(0)
    return patcher(MODELS[family](), dtype)


def grid(family: str) -> tuple[int, int]:
    """(F, S) of the test latent: LTXV does not patch (S = 6 x 10)."""
    return (FRAMES, 60) if family == "ltxv" else (FRAMES, SPATIAL)


def expected_output(model: ModelPatcher, family: str, x, context, sigma=0.5, cond_or_uncond=(0,), **expectation):
    reference = override_expected(model.model.diffusion_model, Expectation(**expectation), *grid(family))
    return ModelPatcher(BaseModel(reference)).sample_call(x, sigma, context, cond_or_uncond=cond_or_uncond)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("placement", [AFTER, BEFORE])
@pytest.mark.parametrize("family", sorted(MODELS))
def test_matches_reference(generator, family, placement, dtype):
    model = build(family, dtype)
    x, context = latent(generator, dtype=dtype), text(generator, dtype=dtype)
    out = enhance(model, placement=placement).sample_call(x, 0.5, context)
    assert_close(out, expected_output(model, family, x, context, placement=placement))
    assert_changed(out.float(), model.sample_call(x, 0.5, context).float())


@pytest.mark.parametrize("family", sorted(MODELS))
def test_blocks_window_and_per_sample(generator, family):
    model = build(family)
    x, context = latent(generator), text(generator)
    out = enhance(model, blocks=frozenset({1}), per_sample=True, start_percent=0.2, end_percent=0.6)
    assert_close(out.sample_call(x, 0.5, context, cond_or_uncond=(0, 1)),
                 expected_output(model, family, x, context, cond_or_uncond=(0, 1), blocks={1}, entries=2))
    assert torch.equal(out.sample_call(x, 0.9, context), model.sample_call(x, 0.9, context))


@pytest.mark.parametrize("family", sorted(MODELS))
def test_a_previous_override_is_called_for_every_attention(generator, family):
    model = build(family)
    calls = []

    def sage_like(attention_function, *args, **kwargs):
        calls.append(args[0].shape)
        return attention_function(*args, **kwargs)

    with_sage = model.clone()
    with_sage.set_model_attention_override(sage_like)
    x, context = latent(generator), text(generator)
    out = enhance(with_sage).sample_call(x, 0.5, context)
    plain_calls = len(calls)
    calls.clear()
    with_sage.sample_call(x, 0.5, context)
    assert plain_calls == len(calls) > 0
    assert_close(out, expected_output(model, family, x, context))


@pytest.mark.parametrize("placement", [AFTER, BEFORE])
def test_ltx2_enhances_the_video_self_attention_only(generator, placement):
    """LTX-2's [video, audio] latent: the video stream as LTXV's, the audio self-attention (another
    q width) untouched."""
    torch.manual_seed(0)
    model = patcher(LTXAVModel())
    streams, context = [latent(generator), torch.randn(2, 7, 4, generator=generator)], text(generator)
    video, audio = enhance(model, placement=placement).sample_call(streams, 0.5, context)
    reference = override_expected(model.model.diffusion_model, Expectation(placement=placement), *grid("ltxv"))
    expected_video, _ = ModelPatcher(BaseModel(reference)).sample_call(streams, 0.5, context)
    plain_video, plain_audio = model.sample_call(streams, 0.5, context)
    assert_close(video, expected_video)
    assert_changed(video, plain_video)
    assert torch.equal(audio, plain_audio)


def test_an_override_set_after_ours_is_refused(generator):
    enhanced = enhance(build("ltxv"))
    enhanced.set_model_attention_override(lambda f, *a, **k: f(*a, **k))
    with pytest.raises(RuntimeError, match="replaced that override"):
        enhanced.sample_call(latent(generator), 0.5, text(generator))


def test_ltxv_guide_tokens_are_refused(generator):
    keyframes = torch.zeros(1, 3, 60)
    with pytest.raises(ValueError, match="LTXV: 60 guide / keyframe tokens"):
        enhance(build("ltxv")).sample_call(latent(generator), 0.5, text(generator), keyframe_idxs=keyframes)


def test_a_cross_attention_as_long_as_the_video_is_refused(generator):
    """Text of F*S tokens: its cross-attention has q and k of the video's shape; the node counts
    more video self-attention calls than blocks and refuses instead of scaling twice."""
    with pytest.raises(ValueError, match="3 video self-attention calls in one model call of 2 blocks"):
        enhance(build("cosmos")).sample_call(latent(generator), 0.5, text(generator, tokens=FRAMES * SPATIAL))


def test_extra_video_tokens_are_refused(generator):
    """A self-attention of 45 tokens in a call whose latent gives 4 frames of 15: refused, with the numbers."""
    override = enhance(build("kandinsky5")).model_options["transformer_options"]["optimized_attention_override"]
    options = {FORWARD_KEY: ForwardInfo((4, 6, 10), True), "block_index": 0}
    q = torch.randn(2, 3, 45, 8, generator=generator)
    with pytest.raises(ValueError, match="Kandinsky 5 self-attention got 45 image tokens, but the latent gives F=4 "
                                         "frames of S=15 tokens = 60"):
        override(lambda *a, **k: None, q, q, q, heads=3, skip_reshape=True, transformer_options=options)


def test_the_original_model_is_untouched(generator):
    model = build("cosmos")
    x, context = latent(generator), text(generator)
    before = model.sample_call(x, 0.5, context)
    enhance(model).sample_call(x, 0.5, context)
    assert "optimized_attention_override" not in model.model_options["transformer_options"]
    assert torch.equal(model.sample_call(x, 0.5, context), before)
