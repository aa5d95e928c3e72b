"""The spec's conditioning tokens and refusals through the plain-PyTorch front-end
(``enhance_module``): the same semantics the diffusers front-end gives them
(tests/test_adapters_models.py), since both run through the engine's ``ForwardContext``.

A tiny model whose layer inputs carry ``CONDITIONING`` extra tokens before or after the generated
video tokens: only the generated ones are measured and scaled; the reference below computes that
by hand in float64 from the unenhanced model's own layers.
"""

from __future__ import annotations

import copy

import pytest
import torch

import eav_kernels as eav
from eav_kernels.engine import AdapterSpec, enhance_module, remove_enhancement
from contract import FLOAT32_RESULT_NOISE
from engine_tiny_models import FRAMES, POSITIONS, TinyVideoModel
from twin_layers import randomise_

CONDITIONING = 7  # tokens per layer input that are not generated video (not a multiple of FRAMES)
WEIGHT = 30.0  # large enough that every score is above 1 on these inputs (checked)


def _spec(conditioning: str, **fields) -> AdapterSpec:
    return AdapterSpec(
        model="TinyVideoModel", self_attention=r"blocks\.\d+", text=None,
        num_frames=lambda model, arguments: arguments["num_frames"],
        video_tokens=lambda model, arguments: arguments["num_frames"] * POSITIONS,
        conditioning=conditioning, **fields,
    )


def _generated(conditioning: str, total: int) -> slice:
    return slice(CONDITIONING, total) if conditioning == "before" else slice(0, total - CONDITIONING)


def _reference(model: TinyVideoModel, hidden: torch.Tensor,  # [B, N_layer, C]
               conditioning: str, placement: str, dtype: torch.dtype
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The enhanced forward by hand in ``dtype``: ``(output [B, N_layer, C], [score] per layer)``."""
    model = copy.deepcopy(model).to(dtype)
    hidden = hidden.to(dtype)
    rows = _generated(conditioning, hidden.shape[1])
    scores = []
    for block in model.blocks:
        q, k, v = block.query_key_value(hidden)  # [B, N, H, D], [B, N, Hk, D] x 2
        cfi = eav.cross_frame_intensity_reference(q.transpose(1, 2)[:, :, rows], k.transpose(1, 2)[:, :, rows],
                                                  FRAMES, compute_dtype=dtype)
        score = (cfi * (FRAMES + WEIGHT)).clamp(min=1.0).to(dtype)
        scores.append(score)
        attention = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), enable_gqa=True).transpose(1, 2)
        if placement == "attention_output":
            attention[:, rows] *= score
        out = block.proj(attention.flatten(2))
        if placement == "to_out":
            out[:, rows] *= score
        hidden = hidden + out
    return model.out(hidden), scores


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
@pytest.mark.parametrize("conditioning", ["before", "after"])
def test_only_generated_tokens_are_measured_and_scaled(conditioning, placement, generator):
    model = randomise_(TinyVideoModel("sdpa"), seed=11)
    hidden = torch.randn(2, CONDITIONING + FRAMES * POSITIONS, 16, generator=generator)
    truth, scores = _reference(model, hidden, conditioning, placement, torch.float64)
    plain_path, _ = _reference(model, hidden, conditioning, placement, torch.float32)
    assert all(score > 1 for score in scores), "the test needs scores above 1 to see the scaling"
    plain = model(hidden, num_frames=FRAMES)
    enhance_module(model, _spec(conditioning), eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, placement=placement))
    try:
        actual = model(hidden, num_frames=FRAMES)
    finally:
        remove_enhancement(model)
    # the contract (tests/contract.py): at most twice the plain float32 path's error, plus noise
    error = (actual.double() - truth).abs().max().item()
    allowed = 2 * (plain_path.double() - truth).abs().max().item() + FLOAT32_RESULT_NOISE * truth.abs().max().item()
    assert error <= allowed, f"enhanced output error {error} exceeds the contract {allowed}"
    assert not torch.allclose(actual, plain, rtol=1e-3, atol=1e-3)


def test_too_few_layer_tokens_for_the_generated_count(generator):
    model = randomise_(TinyVideoModel("sdpa"), seed=11)
    enhance_module(model, _spec("after"), eav.EnhanceAVideoConfig())
    try:
        with pytest.raises(ValueError, match=r"forward has 20 generated video tokens but a targeted layer got 15"):
            model(torch.randn(1, 15, 16, generator=generator), num_frames=4)
    finally:
        remove_enhancement(model)


def test_a_refused_forward_raises_with_the_reason(generator):
    def refusal(model, arguments):
        return "two-frame forwards are block-causal here" if arguments["num_frames"] == 2 else None

    model = randomise_(TinyVideoModel("sdpa"), seed=11)
    enhance_module(model, _spec("after", forward_refusal=refusal), eav.EnhanceAVideoConfig())
    try:
        model(torch.randn(1, CONDITIONING + FRAMES * POSITIONS, 16, generator=generator), num_frames=FRAMES)
        with pytest.raises(TypeError, match="cannot enhance this TinyVideoModel forward: two-frame forwards"):
            model(torch.randn(1, CONDITIONING + 2 * POSITIONS, 16, generator=generator), num_frames=2)
    finally:
        remove_enhancement(model)


def test_a_window_the_spec_cannot_read_raises(generator):
    model = randomise_(TinyVideoModel("sdpa"), seed=11)
    spec = _spec("after", window_refusal="its timestep is a noise level")
    enhance_module(model, spec, eav.EnhanceAVideoConfig(start=0.25))
    try:
        with pytest.raises(ValueError, match=r"start=0\.25, end=1\.0 cannot be read off .*: its timestep is a noise"):
            model(torch.randn(1, CONDITIONING + FRAMES * POSITIONS, 16, generator=generator), num_frames=FRAMES)
    finally:
        remove_enhancement(model)


def test_a_bad_conditioning_side_is_refused_at_construction():
    with pytest.raises(ValueError, match="conditioning must be 'before' or 'after', got 'middle'"):
        _spec("middle")
