"""apply_enhance_a_video on tiny random-weight diffusers video models (every adapter has a case),
against an independent reference (tests/adapters_tiny_models.py).

Each case's plain output and its all-layer reference outputs are computed once per module
(``outputs``) and shared by the tests, which keeps the suite fast with ~25 models."""

import copy
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_base import cast_inputs, enhance_config, one_thread, to_bfloat16, twin_batch  # noqa: F401
from adapters_tiny_models import CASES, attention_layer_names, reference_output, run
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video
from output_checks import assert_changed, assert_matches

ALL = sorted(CASES)
PLACEMENTS = ("to_out", "attention_output")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=ALL)
def case_and_model(request):
    case = CASES[request.param]
    return case, case.build()


@pytest.fixture(scope="module")
def outputs(case_and_model):
    """The case's inputs (at a low-noise timestep, inside the window of the window test), the
    layer names, the plain output and the all-layer reference output per placement."""
    case, model = case_and_model
    inputs = _inputs(case)
    names = attention_layer_names(model, case)
    every_layer = {name: 4.0 for name in names}
    return SimpleNamespace(
        inputs=inputs, names=names, plain=run(model, inputs),
        reference={p: reference_output(model, case, inputs, every_layer, placement=p) for p in PLACEMENTS},
    )


def _timesteps(case):
    """(noisy, clean) timesteps of the case's model, as its pipelines pass them."""
    if not case.window:
        return 0.5, 0.5
    return (100.0, 900.0) if case.timestep_rises else (900.0, 100.0)


def _inputs(case, batch_size=2, seed=7, noisy=False):
    timestep = _timesteps(case)[0 if noisy else 1]
    return case.inputs(batch_size, torch.Generator().manual_seed(seed), timestep=timestep)


def _enhanced(model, config, inputs):
    apply_enhance_a_video(model, config)
    try:
        return run(model, inputs)
    finally:
        remove_enhance_a_video(model)


def test_clamped_weight_reproduces_model(case_and_model, outputs):
    case, model = case_and_model
    out = _enhanced(model, enhance_config(-1e6), outputs.inputs)
    assert (out - outputs.plain).abs().max().item() <= 1e-6


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_matches_independent_reference(case_and_model, outputs, placement):
    case, model = case_and_model
    expected = outputs.reference[placement]
    assert_changed(expected, outputs.plain)
    assert_matches(_enhanced(model, enhance_config(4.0, placement=placement), outputs.inputs), expected)


def test_remove_restores_model_bit_for_bit(case_and_model, outputs):
    case, model = case_and_model
    apply_enhance_a_video(model, enhance_config(4.0))
    assert_changed(run(model, outputs.inputs), outputs.plain)
    remove_enhance_a_video(model)
    assert torch.equal(run(model, outputs.inputs), outputs.plain)
    for module in model.modules():
        assert not hasattr(module, "_diffusers_hook")
        assert "forward" not in module.__dict__


def test_per_layer_weight_changes_only_named_layer(case_and_model, outputs):
    case, model = case_and_model
    name = outputs.names[-1]
    expected = reference_output(model, case, outputs.inputs, {name: 2.0})
    assert_changed(expected, outputs.plain)
    assert_changed(expected, outputs.reference["to_out"])  # the other layers are not enhanced
    layers = {name.replace(".", r"\."): 2.0}
    assert_matches(_enhanced(model, enhance_config(4.0, layers=layers), outputs.inputs), expected)


def test_step_window_changes_only_named_steps(case_and_model, outputs):
    case, model = case_and_model
    config = enhance_config(4.0, start=0.5, end=1.0)  # the second half: low noise
    if not case.window:  # the timestep is no 0..1000 step (EDM): a window is refused, loudly
        apply_enhance_a_video(model, config)
        try:
            with pytest.raises(ValueError, match="window"):
                run(model, outputs.inputs)
        finally:
            remove_enhance_a_video(model)
        return
    outside = _inputs(case, noisy=True)
    assert torch.equal(_enhanced(model, config, outside), run(model, outside))
    assert_matches(_enhanced(model, config, outputs.inputs), outputs.reference["to_out"])


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_per_sample_scores(case_and_model, outputs, placement):
    case, model = case_and_model
    per_sample = enhance_config(4.0, per_sample=True, placement=placement)
    expected = reference_output(model, case, outputs.inputs, {n: 4.0 for n in outputs.names},
                                per_sample=True, placement=placement)
    out = _enhanced(model, per_sample, outputs.inputs)
    assert_matches(out, expected)
    assert_changed(out, outputs.reference[placement], at_least=1e-5)  # not the batch-shared score
    if placement == "to_out":  # two identical samples: per-sample scores are the shared one
        twins = twin_batch(case, _inputs(case, batch_size=1))
        assert_matches(_enhanced(model, per_sample, twins), _enhanced(model, enhance_config(4.0), twins))


def test_bfloat16_matches_reference(case_and_model, outputs):
    case, model = case_and_model
    model = to_bfloat16(copy.deepcopy(model))
    inputs = cast_inputs(outputs.inputs, torch.bfloat16)
    weights = {name: 4.0 for name in outputs.names}
    expected = reference_output(model, case, inputs, weights).float()
    base = run(model, inputs).float()
    out = _enhanced(model, enhance_config(4.0), inputs).float()
    assert out.isfinite().all()
    assert_changed(expected, base, at_least=1e-2)
    # bf16 rounding of the score's product differs from the reference at most by an ulp or so
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)


def test_layer_indices_select_layers():
    case = CASES["wan"]
    model = case.build()
    inputs = _inputs(case)
    names = attention_layer_names(model, case)
    assert_matches(_enhanced(model, enhance_config(4.0, layers=[-1]), inputs),
           reference_output(model, case, inputs, {names[-1]: 4.0}))


def test_two_models_keep_their_own_configs():
    case = CASES["wan"]
    first, second = case.build(), case.build()
    inputs = _inputs(case)
    names = attention_layer_names(first, case)
    apply_enhance_a_video(first, enhance_config(4.0))
    apply_enhance_a_video(second, enhance_config(1.0, layers=[0]))
    try:
        out_first, out_second = run(first, inputs), run(second, inputs)
    finally:
        remove_enhance_a_video(first)
        remove_enhance_a_video(second)
    assert_matches(out_first, reference_output(first, case, inputs, {n: 4.0 for n in names}))
    assert_matches(out_second, reference_output(second, case, inputs, {names[0]: 1.0}))
