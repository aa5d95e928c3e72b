"""The seed-system presets (Open-Sora v1.2, Open-Sora-Plan v1.0/v1.1 and v1.2) on structural
twins (tests/twin_*.py), through the plain-PyTorch front-end, against the independent reference
of tests/seed_model_reference.py."""

from __future__ import annotations

import re

import pytest
import torch

import eav_kernels as eav
from eav_kernels.engine import AdapterSpec, enhance_module, remove_enhancement
from eav_kernels.telemetry import CFIRecorder
from seed_model_reference import CASES, reference_output, run, targeted_layers
from output_checks import assert_changed, assert_matches

ALL = sorted(CASES)
FRAMES = 5
WEIGHT = 4.0


@pytest.fixture(scope="module", params=ALL)
def case_and_model(request):
    case = CASES[request.param]
    return case, case.build()


def _inputs(case, batch_size=2, frames=FRAMES, seed=3, **kwargs):
    return case.inputs(batch_size, frames, torch.Generator().manual_seed(seed), **kwargs)


def _config(**kwargs):
    return eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, **kwargs)


def _enhanced(model, case, config, inputs):
    enhance_module(model, case.spec, config)
    try:
        return run(model, inputs)
    finally:
        remove_enhancement(model)


def _all_layers(model, case):
    return {name: WEIGHT for name in targeted_layers(model, case)}


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_matches_reference_and_scores(case_and_model, placement):
    """A CFG-sized batch of 2 different samples, S = 6 positions, 2 heads: the output and every
    layer's score equal the reference's."""
    case, model = case_and_model
    inputs = _inputs(case)
    expected, expected_scores = reference_output(model, case, inputs, _all_layers(model, case), placement=placement)
    assert_changed(expected, run(model, inputs))
    recorder = CFIRecorder()
    assert_matches(_enhanced(model, case, _config(placement=placement, recorder=recorder), inputs), expected)
    recorded = recorder.to_dict()["forwards"][0]["layers"]
    assert sorted(recorded) == sorted(expected_scores)
    for name, score in expected_scores.items():
        assert recorded[name]["score"] == pytest.approx(float(score), rel=1e-5), name


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_per_sample_scores(case_and_model, placement):
    case, model = case_and_model
    one = _inputs(case, batch_size=1)
    twins = {key: torch.cat([value, value]) for key, value in one.items()}  # cond == uncond
    assert_matches(_enhanced(model, case, _config(per_sample=True, placement=placement), twins),
           _enhanced(model, case, _config(placement=placement), twins))
    inputs = _inputs(case)
    expected, _ = reference_output(model, case, inputs, _all_layers(model, case), placement=placement,
                                   per_sample=True)
    out = _enhanced(model, case, _config(per_sample=True, placement=placement), inputs)
    assert_matches(out, expected)
    assert_changed(out, _enhanced(model, case, _config(placement=placement), inputs), at_least=1e-5)


def test_only_targeted_layers_change(case_and_model):
    """The untouched attention layers (spatial, cross) compute bit for bit what they compute
    unenhanced on the input they got; the targeted ones give score x their original output
    after the output projection."""
    case, model = case_and_model
    seen: dict[str, tuple] = {}

    def record(name):
        def hook(module, args, kwargs, output):
            seen[name] = (args, kwargs, output)
        return hook

    watched = [(name, module) for name, module in model.named_modules()
               if name in _all_layers(model, case) or re.fullmatch(case.spatial_attention, name)]
    recorder = CFIRecorder()
    enhance_module(model, case.spec, _config(recorder=recorder))
    handles = [module.register_forward_hook(record(name), with_kwargs=True) for name, module in watched]
    try:
        run(model, _inputs(case))
    finally:
        for handle in handles:
            handle.remove()
        remove_enhancement(model)
    scores = recorder.to_dict()["forwards"][0]["layers"]
    assert {name for name, _ in watched} - set(scores), "no untouched layer watched: the test is blind"
    with torch.no_grad():
        for name, module in watched:
            args, kwargs, output = seen[name]
            original = module(*args, **kwargs)
            if name in scores:
                assert_matches(output, original * scores[name]["score"])
                assert_changed(output, original)
            else:
                assert torch.equal(output, original), name


def test_single_frame_is_the_identity(case_and_model):
    case, model = case_and_model
    inputs = _inputs(case, frames=1)
    assert torch.equal(_enhanced(model, case, _config(), inputs), run(model, inputs))


def test_removal_restores_the_model_bit_for_bit(case_and_model):
    case, model = case_and_model
    inputs = _inputs(case)
    base = run(model, inputs)
    enhance_module(model, case.spec, _config())
    assert_changed(run(model, inputs), base)
    remove_enhancement(model)
    assert torch.equal(run(model, inputs), base)
    assert all("forward" not in module.__dict__ for module in model.modules())


def test_bfloat16(case_and_model):
    """bf16 twin against the float32 reference: the enhanced error stays within twice the plain
    bf16 model's own error, times the largest score (the score multiplies that error)."""
    case, model = case_and_model
    inputs = _inputs(case)
    expected, scores = reference_output(model, case, inputs, _all_layers(model, case))
    plain_error = (run(model, inputs) - run(_bf16(case.build()), _bf16(inputs)).float()).abs().max()
    model_bf16 = _bf16(case.build())
    out = _enhanced(model_bf16, case, _config(), _bf16(inputs)).float()
    assert out.isfinite().all()
    assert_changed(expected, run(model, inputs), at_least=1e-1)
    largest_score = max(float(score.max()) for score in scores.values())
    assert (out - expected).abs().max() <= 2 * largest_score * plain_error


def _bf16(thing):
    if isinstance(thing, torch.nn.Module):
        return thing.to(torch.bfloat16)
    return {key: value.to(torch.bfloat16) if value.is_floating_point() else value for key, value in thing.items()}


def test_open_sora_flash_path_is_seen():
    """Open-Sora's flash-attn path (taken when N > B: here one position, 5 frames) goes through
    flash-attn's torch.library op, which the engine reads q and k from."""
    case = CASES["open_sora_v1_2"]
    model = case.build(enable_flash_attn=True)
    inputs = _inputs(case, batch_size=1, height=2, width=2)  # S = 1: temporal batch 1 < 5 frames
    expected, _ = reference_output(model, case, inputs, _all_layers(model, case))
    assert_changed(expected, run(model, inputs))
    assert_matches(_enhanced(model, case, _config(), inputs), expected)


def test_position_major_tokens_are_refused():
    with pytest.raises(NotImplementedError, match="position-major|Position-major"):
        AdapterSpec(model="STDiT", self_attention=r"blocks\.\d+\.attn", text=None,
                    num_frames=lambda model, arguments: 1, token_order="position_major")


def test_wrong_model_and_double_enhancement_are_loud():
    case = CASES["open_sora_v1_2"]
    with pytest.raises(TypeError, match="STDiT3"):
        enhance_module(torch.nn.Linear(2, 2), case.spec, _config())
    model = case.build()
    enhance_module(model, case.spec, _config())
    with pytest.raises(RuntimeError, match="already"):
        enhance_module(model, case.spec, _config())
    remove_enhancement(model)
