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

try:
    from comfyui_native_models import comfyui_checkout

    COMFYUI_PATH = comfyui_checkout()
    from eav_kernels.comfyui.node import EnhanceAVideo
    from eav_kernels.comfyui.settings import AFTER_PROJECTION
except ImportError as error:  # no checkout named, or not importable with this torch
    pytest.skip(f"needs a ComfyUI checkout importable here (EAV_COMFYUI_PATH): {error}", allow_module_level=True)

from comfyui_native_models import (COGVIDEOX, COSMOS, COSMOS_PREDICT2, HUNYUAN_VIDEO, HUNYUAN_VIDEO_15,
                                   KANDINSKY5, LTXV, MOCHI, WAN21, WAN22, TinyVideoModel, sample)
from comfyui_native_reference import HUNYUAN_VIDEO_PLACEMENT, WAN_PLACEMENT, reference_enhancement

WEIGHT = 4.0
ENHANCED = [(WAN21, WAN_PLACEMENT), (WAN22, WAN_PLACEMENT), (HUNYUAN_VIDEO, HUNYUAN_VIDEO_PLACEMENT),
            (HUNYUAN_VIDEO_15, HUNYUAN_VIDEO_PLACEMENT)]
NOT_ENHANCED = [LTXV, MOCHI, COSMOS, COSMOS_PREDICT2, COGVIDEOX, KANDINSKY5]


def enhanced(patcher, weight: float = WEIGHT):
    """The node's output for ``patcher``, through its public node class (defaults elsewhere)."""
    return EnhanceAVideo.execute(patcher, weight=weight, start_percent=0.0, end_percent=1.0, blocks="all",
                                 per_sample=False, placement=AFTER_PROJECTION).result[0]


def reference_sample(model: TinyVideoModel, placement, scores: list[float] | None = None,
                     compute_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    with reference_enhancement(model.build(), placement, model.frames, model.tokens_per_frame, WEIGHT,
                               scores, compute_dtype) as patched:
        return sample(patched, model)


@pytest.mark.parametrize("model,placement", ENHANCED, ids=[m.name for m, _ in ENHANCED])
def test_node_matches_the_float64_reference(model: TinyVideoModel, placement):
    scores: list[float] = []
    expected = reference_sample(model, placement, scores)
    plain = sample(model.build(), model)
    got = sample(enhanced(model.build()), model)
    assert scores and min(scores) > 1.0, f"the reference never enhanced (scores {scores}): the test could not fail"
    effect = (expected - plain).abs().max().item()
    assert effect > 1e-3, f"enhancement changes the sample by only {effect:.2e}"
    # FlashAttention's contract, on the sample: the node's error against the float64 maps is at most
    # twice that of the same reference computing its maps in float32, plus float32 noise.
    low_precision = (reference_sample(model, placement, compute_dtype=torch.float32) - expected).abs().max().item()
    error = (got - expected).abs().max().item()
    noise = 8 * torch.finfo(torch.float32).eps * expected.abs().max().item()
    assert error <= 2 * low_precision + noise, (
        f"node vs float64 reference: {error:.3e}; float32 reference: {low_precision:.3e}; noise {noise:.3e}")


@pytest.mark.parametrize("model,placement", ENHANCED[:1] + ENHANCED[2:3], ids=["wan2.1", "hunyuan_video"])
def test_a_score_at_its_floor_gives_the_plain_sample_bit_for_bit(model: TinyVideoModel, placement):
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
