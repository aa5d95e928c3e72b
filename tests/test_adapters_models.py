"""apply_enhance_a_video on tiny random-weight diffusers transformers, against an independent
reference (tests/adapters_tiny_models.py)."""

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_models import CASES, attention_layer_names, reference_output, run
from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video


ALL = sorted(CASES)


@pytest.fixture(scope="module", params=ALL)
def case_and_model(request):
    case = CASES[request.param]
    return case, case.build()


def _inputs(case, batch_size=2, seed=7, **kwargs):
    return case.inputs(batch_size, torch.Generator().manual_seed(seed), **kwargs)


def _enhanced(model, config, inputs):
    apply_enhance_a_video(model, config)
    try:
        return run(model, inputs)
    finally:
        remove_enhance_a_video(model)


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def _differs(a, b, at_least=1e-3):
    assert (a - b).abs().max().item() > at_least, "enhancement changed nothing: the test is blind"


def test_clamped_weight_reproduces_model(case_and_model):
    case, model = case_and_model
    inputs = _inputs(case)
    base = run(model, inputs)
    out = _enhanced(model, EnhanceAVideoConfig(enhance_weight=-1e6), inputs)
    assert (out - base).abs().max().item() <= 1e-6


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_matches_independent_reference(case_and_model, placement):
    case, model = case_and_model
    inputs = _inputs(case)
    weights = {name: 4.0 for name in attention_layer_names(model, case)}
    expected = reference_output(model, case, inputs, weights, placement=placement)
    _differs(expected, run(model, inputs))
    _close(_enhanced(model, EnhanceAVideoConfig(enhance_weight=4.0, placement=placement), inputs), expected)


def test_remove_restores_model_bit_for_bit(case_and_model):
    case, model = case_and_model
    inputs = _inputs(case)
    base = run(model, inputs)
    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0))
    _differs(run(model, inputs), base)
    remove_enhance_a_video(model)
    assert torch.equal(run(model, inputs), base)
    for module in model.modules():
        assert not hasattr(module, "_diffusers_hook")
        assert "forward" not in module.__dict__


def test_layer_selection_changes_only_named_layers(case_and_model):
    case, model = case_and_model
    inputs = _inputs(case)
    names = attention_layer_names(model, case)
    by_index = _enhanced(model, EnhanceAVideoConfig(enhance_weight=4.0, layers=[-1]), inputs)
    _close(by_index, reference_output(model, case, inputs, {names[-1]: 4.0}))
    pattern = {names[0].replace(".", r"\."): 2.0}
    by_regex = _enhanced(model, EnhanceAVideoConfig(enhance_weight=4.0, layers=pattern), inputs)
    expected = reference_output(model, case, inputs, {names[0]: 2.0})
    _differs(expected, run(model, inputs))
    _close(by_regex, expected)


def test_step_window_changes_only_named_steps(case_and_model):
    case, model = case_and_model
    config = EnhanceAVideoConfig(enhance_weight=4.0, start=0.5, end=1.0)  # the second half: low noise
    noisy, clean = (100.0, 900.0) if case.timestep_rises else (900.0, 100.0)
    names = attention_layer_names(model, case)
    outside = _inputs(case, timestep=noisy)
    assert torch.equal(_enhanced(model, config, outside), run(model, outside))
    inside = _inputs(case, timestep=clean)
    expected = reference_output(model, case, inside, {name: 4.0 for name in names})
    _differs(expected, run(model, inside))
    _close(_enhanced(model, config, inside), expected)


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_per_sample_scores(case_and_model, placement):
    case, model = case_and_model
    names = attention_layer_names(model, case)
    shared = EnhanceAVideoConfig(enhance_weight=4.0, placement=placement)
    per_sample = EnhanceAVideoConfig(enhance_weight=4.0, per_sample=True, placement=placement)
    one = _inputs(case, batch_size=1)
    twins = {k: torch.cat([v, v]) if isinstance(v, torch.Tensor) else v for k, v in one.items()}
    _close(_enhanced(model, per_sample, twins), _enhanced(model, shared, twins))
    different = _inputs(case)
    expected = reference_output(model, case, different, {n: 4.0 for n in names}, per_sample=True,
                                placement=placement)
    out = _enhanced(model, per_sample, different)
    _close(out, expected)
    _differs(out, _enhanced(model, shared, different), at_least=1e-5)


def test_two_models_keep_their_own_configs():
    case = CASES["wan"]
    first, second = case.build(), case.build()
    inputs = _inputs(case)
    names = attention_layer_names(first, case)
    apply_enhance_a_video(first, EnhanceAVideoConfig(enhance_weight=4.0))
    apply_enhance_a_video(second, EnhanceAVideoConfig(enhance_weight=1.0, layers=[0]))
    try:
        out_first, out_second = run(first, inputs), run(second, inputs)
    finally:
        remove_enhance_a_video(first)
        remove_enhance_a_video(second)
    _close(out_first, reference_output(first, case, inputs, {n: 4.0 for n in names}))
    _close(out_second, reference_output(second, case, inputs, {names[0]: 1.0}))


def test_bfloat16_matches_reference():
    case = CASES["wan"]
    model = case.build().to(torch.bfloat16)
    inputs = {k: v.to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in _inputs(case).items()}
    weights = {name: 4.0 for name in attention_layer_names(model, case)}
    expected = reference_output(model, case, inputs, weights).float()
    base = run(model, inputs).float()
    out = _enhanced(model, EnhanceAVideoConfig(enhance_weight=4.0), inputs).float()
    assert out.isfinite().all()
    _differs(expected, base, at_least=1e-2)
    # The adapter's score comes from the float32 CFI kernel, the reference's from float64: they
    # differ by ~1e-7 relative, so at most the rounding of a video row's product to bf16 can flip,
    # by one bf16 ulp (eps relative to the value); no atol: that ulp scales with the value.
    torch.testing.assert_close(out, expected, rtol=torch.finfo(torch.bfloat16).eps, atol=0)
