"""The Enhance-A-Video ComfyUI node on a real ComfyUI: tiny native video models, sampled for real.

Runs only where ``EAV_COMFYUI_PATH`` names a ComfyUI checkout that imports in this interpreter
(``make test-comfyui EAV_COMFYUI_PATH=/path/to/ComfyUI``, docs/testing.md); skipped otherwise.
Each enhanced model is sampled 2 Euler steps with CFG (cond and uncond batched, as ComfyUI does
on CPU) through ``comfy.sample.sample`` and compared with the plain-PyTorch reference
(``comfyui_native_reference``: float64 ``F x F`` maps from the q and k the model produced, the
score at the paper's placement), and the model the node was given must sample bit for bit as
before.
"""

from __future__ import annotations

import pytest
import torch

from comfyui_native_models import skip_without_comfyui

skip_without_comfyui()

from comfyui_native_models import HUNYUAN_VIDEO, WAN21, TinyVideoModel, sample  # noqa: E402
from comfyui_native_reference import check_against_reference  # noqa: E402
from comfyui_native_runs import ENHANCED, NOT_ENHANCED, enhanced, reference_sample  # noqa: E402

@pytest.mark.parametrize("model,placement", ENHANCED, ids=[m.name for m, _ in ENHANCED])
def test_node_matches_the_float64_reference(model: TinyVideoModel, placement):
    scores: list[float] = []
    expected = reference_sample(model, placement, scores)
    plain = sample(model.build(), model)
    got = sample(enhanced(model.build()), model)
    assert scores and min(scores) > 1.0, f"the reference never enhanced (scores {scores}): the test could not fail"
    check_against_reference(got, expected, reference_sample(model, placement, compute_dtype=torch.float32), plain)


@pytest.mark.parametrize("model", [WAN21, HUNYUAN_VIDEO], ids=["wan2.1", "hunyuan_video"])
def test_a_score_at_its_floor_gives_the_plain_sample_bit_for_bit(model: TinyVideoModel):
    """Negative weights lower the score to its floor 1: the node then gives the plain sample."""
    plain = sample(model.build(), model)
    got = sample(enhanced(model.build(), weight=-100.0), model)
    assert torch.equal(got, plain)


@pytest.mark.parametrize("model", [WAN21, HUNYUAN_VIDEO], ids=["wan2.1", "hunyuan_video"])
def test_the_model_given_to_the_node_samples_as_before(model: TinyVideoModel):
    original = model.build()
    before = sample(original, model)
    clone = enhanced(original)
    changed = sample(clone, model)
    after = sample(original, model)
    assert not torch.equal(changed, before)
    assert torch.equal(after, before), "the node changed the model it was given"
    assert torch.equal(sample(original, model), before), "a second sample of the original differs"


@pytest.mark.parametrize("model", NOT_ENHANCED, ids=[m.name for m in NOT_ENHANCED])
def test_families_the_node_does_not_know_are_refused_by_name(model: TinyVideoModel):
    """Built tiny and sampled for real (the model works); the node refuses it with its class name."""
    patcher = model.build()
    before = sample(patcher, model)
    assert before.shape == model.latent and torch.isfinite(before).all()
    name = type(patcher.model.diffusion_model).__name__
    with pytest.raises(TypeError, match=name):
        enhanced(patcher)
    assert torch.equal(sample(patcher, model), before)
