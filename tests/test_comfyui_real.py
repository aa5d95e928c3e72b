"""The Enhance-A-Video ComfyUI node on a real ComfyUI: tiny native video models, sampled for real.

Runs only where ``EAV_COMFYUI_PATH`` names a ComfyUI checkout that imports in this interpreter
(``make test-comfyui EAV_COMFYUI_PATH=/path/to/ComfyUI``, docs/testing.md); skipped otherwise.
Each enhanced model is sampled with Euler and CFG (cond and uncond batched, as ComfyUI does on
CPU) through ``comfy.sample.sample`` and compared with the plain-PyTorch reference
(``comfyui_native_reference``: float64 ``F x F`` maps from the q and k the model produced, the
score at the paper's placement); the model the node was given must sample bit for bit as before.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from comfyui_native_models import skip_without_comfyui

skip_without_comfyui()

from comfyui_native_models import (COGVIDEOX, COSMOS, COSMOS_PREDICT2, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15,  # noqa: E402
                                   KANDINSKY5, LTXV, WAN21, WAN21_VACE, TinyVideoModel, sample)
from comfyui_native_reference import ReferenceSettings, check_against_reference  # noqa: E402
from comfyui_native_runs import ENHANCED, NOT_ENHANCED, enhanced, reference_samples  # noqa: E402


def check_node(model: TinyVideoModel, node: dict, settings: ReferenceSettings, steps: int = 2,
               dtype: torch.dtype = torch.float32, cfg: float = 2.0) -> None:
    """The node with ``node`` settings against the reference with the same ``settings``."""
    run = dict(steps=steps, dtype=dtype, cfg=cfg)
    scores: list[torch.Tensor] = []
    expected, low_precision, nudged = reference_samples(model, settings, scores, **run)
    assert scores and min(s.min().item() for s in scores) > 1.0, "the reference never enhanced: the test could not fail"
    got = sample(enhanced(model.build(dtype=dtype), **node), model, steps=steps, cfg=cfg)
    plain = sample(model.build(dtype=dtype), model, steps=steps, cfg=cfg)
    check_against_reference(got, expected, low_precision, nudged, plain)


@pytest.mark.parametrize("model", ENHANCED, ids=[m.name for m in ENHANCED])
def test_node_matches_the_float64_reference(model: TinyVideoModel):
    check_node(model, {}, ReferenceSettings())


@pytest.mark.parametrize("model", [WAN21, HUNYUAN_VIDEO], ids=["wan2.1", "hunyuan_video"])
def test_node_matches_the_float64_reference_in_bfloat16(model: TinyVideoModel):
    """bf16 weights, as the released checkpoints: the score multiplies in float32, rounded once."""
    check_node(model, {}, ReferenceSettings(), dtype=torch.bfloat16)


COGVIDEOX_15 = dataclasses.replace(COGVIDEOX, unet_config=dict(COGVIDEOX.unet_config, patch_size_t=2), patch=(2, 2, 2))
ODD_SIZES = {  # latents the models pad to whole patches
    "wan2.1-3x7x9": dataclasses.replace(WAN21, latent=(1, 16, 3, 7, 9)),
    "cosmos_predict2-3x7x9": dataclasses.replace(COSMOS_PREDICT2, latent=(1, 16, 3, 7, 9)),
    "cogvideox-3x7x9": dataclasses.replace(COGVIDEOX, latent=(1, 16, 3, 7, 9)),
    "cogvideox1.5-5x8x8": dataclasses.replace(COGVIDEOX_15, latent=(1, 16, 5, 8, 8)),  # 3 frames of 2
    "ltxv-3x5x7": dataclasses.replace(LTXV, latent=(1, 128, 3, 5, 7)),
}


@pytest.mark.parametrize("model", ODD_SIZES.values(), ids=ODD_SIZES.keys())
def test_node_matches_the_float64_reference_at_odd_sizes(model: TinyVideoModel):
    check_node(model, {}, ReferenceSettings())


# HunyuanVideo's blocks in model order: double-stream 0, 1, then single-stream 2, 3.
SETTINGS = [
    (WAN21, dict(blocks="1"), ReferenceSettings(blocks=frozenset({1}))),
    (HUNYUAN_VIDEO, dict(blocks="0,3"), ReferenceSettings(blocks=frozenset({0, 3}))),
    (WAN21, dict(start_percent=0.3, end_percent=0.8), ReferenceSettings(window=(0.3, 0.8))),
    (HUNYUAN_VIDEO, dict(start_percent=0.3, end_percent=0.8), ReferenceSettings(window=(0.3, 0.8))),
    (WAN21, dict(per_sample=True), ReferenceSettings(per_sample=True)),
    (HUNYUAN_VIDEO, dict(per_sample=True), ReferenceSettings(per_sample=True)),
    (WAN21, dict(weight=1.5), ReferenceSettings(weight=1.5)),
    (LTXV, dict(blocks="1"), ReferenceSettings(blocks=frozenset({1}))),  # numbered by call order
    (COGVIDEOX, dict(blocks="0"), ReferenceSettings(blocks=frozenset({0}))),
    (COSMOS, dict(blocks="1"), ReferenceSettings(blocks=frozenset({1}))),
    (KANDINSKY5, dict(blocks="1", per_sample=True), ReferenceSettings(blocks=frozenset({1}), per_sample=True)),
    (COSMOS_PREDICT2, dict(start_percent=0.3, end_percent=0.8), ReferenceSettings(window=(0.3, 0.8))),
]


@pytest.mark.parametrize("model,node,settings", SETTINGS,
                         ids=[f"{m.name}-{'-'.join(f'{k}={v}' for k, v in n.items())}" for m, n, _ in SETTINGS])
def test_node_settings_match_the_reference(model: TinyVideoModel, node: dict, settings: ReferenceSettings):
    check_node(model, node, settings, steps=4)


@pytest.mark.parametrize("model", [HUNYUAN_VIDEO, HUNYUAN_VIDEO_15], ids=["hunyuan_video", "hunyuan_video_1.5"])
def test_hunyuan_video_with_a_text_mask_matches_the_reference(model: TinyVideoModel):
    """A padded prompt (the text encoder's attention mask) masks text keys in the joint attention;
    the video's F x F maps stay what they are. CFG 1: ComfyUI at this commit cannot batch cond and
    uncond of HunyuanVideo with a mask (its own broadcast fails, with or without the node)."""
    masked = dataclasses.replace(model, extra=lambda: {**model.extra(), "attention_mask": torch.tensor([[1] * 6 + [0] * 2])})
    check_node(masked, {}, ReferenceSettings(), cfg=1.0)


@pytest.mark.parametrize("model", [WAN21, HUNYUAN_VIDEO], ids=["wan2.1", "hunyuan_video"])
def test_a_score_at_its_floor_gives_the_plain_sample_bit_for_bit(model: TinyVideoModel):
    """A weight of -100 holds every score at its floor 1: the node then changes no bit (its
    attention hooks hand attention exactly the tensors it would have built)."""
    assert torch.equal(sample(enhanced(model.build(), weight=-100.0), model), sample(model.build(), model))


@pytest.mark.parametrize("model", [WAN21, HUNYUAN_VIDEO], ids=["wan2.1", "hunyuan_video"])
def test_the_model_given_to_the_node_samples_as_before(model: TinyVideoModel):
    original = model.build()
    before = sample(original, model)
    clone = enhanced(original)
    assert not torch.equal(sample(clone, model), before)
    assert torch.equal(sample(original, model), before), "the node changed the model it was given"


@pytest.mark.parametrize("model", [WAN21, WAN21_VACE, HUNYUAN_VIDEO], ids=["wan2.1", "wan2.1-vace", "hunyuan_video"])
def test_an_enhanced_model_samples_the_same_when_run_again(model: TinyVideoModel):
    """ComfyUI reuses a node's output model when a workflow is queued again: nothing may carry
    over from one run to the next (here with a window, so that runs start outside it; VACE's hint
    blocks call Wan's attention hook a second time with their main block's number)."""
    clone = enhanced(model.build(), start_percent=0.5)
    first = sample(clone, model, steps=4)
    assert torch.equal(sample(clone, model, steps=4), first)


def wan_with_extra_tokens(extra: str) -> TinyVideoModel:
    latent = torch.randn(1, 16, 1, 6, 10, generator=torch.Generator().manual_seed(3))
    if extra == "reference latent":  # Wan 2.2 Fun's ref_conv: tokens before the video
        return dataclasses.replace(WAN21, unet_config=dict(WAN21.unet_config, in_dim_ref_conv=16),
                                   extra=lambda: {"reference_latents": [latent]})
    return dataclasses.replace(WAN21, extra=lambda: {"context_latents": [latent]})  # tokens after it


@pytest.mark.parametrize("extra", ["reference latent", "in-context latent"])
def test_wan_tokens_the_node_cannot_place_are_refused_with_the_numbers(extra: str):
    model = wan_with_extra_tokens(extra)
    with pytest.raises(ValueError, match=r"90 image tokens.*F=5 frames of S=15 tokens = 75"):
        sample(enhanced(model.build()), model)


def test_ltxv_with_a_guide_frame_is_refused_with_the_count():
    """LTXVAddGuide appends a guide frame's tokens to the video (``keyframe_idxs``); the model
    samples with it, the node refuses the call."""
    from comfy_extras.nodes_lt import LTXVAddGuide

    guide = torch.randn(1, 128, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    keyframes = LTXVAddGuide.add_keyframe_index([[torch.zeros(1, 8, 16), {}]], 0, guide, (8, 32, 32))[0][1]
    kept = torch.cat([torch.ones(1, 1, 3, 4, 4), torch.zeros(1, 1, 1, 4, 4)], dim=2)  # the guide frame is kept
    model = dataclasses.replace(LTXV, latent=(1, 128, 4, 4, 4), extra=lambda: {
        "attention_mask": torch.ones(1, 8, dtype=torch.long), "keyframe_idxs": keyframes["keyframe_idxs"],
        "concat_mask": kept})
    assert torch.isfinite(sample(model.build(), model)).all()
    with pytest.raises(ValueError, match="16 guide / keyframe tokens"):
        sample(enhanced(model.build()), model)


@pytest.mark.parametrize("model", NOT_ENHANCED, ids=[m.name for m in NOT_ENHANCED])
def test_families_the_node_refuses_are_refused_by_name(model: TinyVideoModel):
    """Built tiny and sampled for real (the model works); the node refuses it with its class name
    (Mochi: an RMSNorm after the attention branch would remove the score)."""
    patcher = model.build()
    before = sample(patcher, model)
    assert before.shape == model.latent and torch.isfinite(before).all()
    with pytest.raises(TypeError, match=type(patcher.model.diffusion_model).__name__):
        enhanced(patcher)
    assert torch.equal(sample(patcher, model), before)
