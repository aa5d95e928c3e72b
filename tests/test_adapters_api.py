"""Config validation and the loud errors of apply_enhance_a_video."""

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_models import CASES
from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
from eav_kernels._extension import compiled_extension
from eav_kernels.adapters import AdapterSpec, supported_models


def test_unsupported_model_lists_supported_ones():
    with pytest.raises(TypeError) as error:
        apply_enhance_a_video(torch.nn.Linear(2, 2), EnhanceAVideoConfig())
    assert "has no adapter for Linear" in str(error.value)
    for name in supported_models():
        assert name in str(error.value)


def test_spec_matching_no_layer_is_loud():
    spec = AdapterSpec(model="WanTransformer3DModel", self_attention=r"blocks\.\d+\.attention",
                       text=None, num_frames=lambda model, arguments: 1)
    with pytest.raises(ValueError, match="matches no module"):
        spec.targeted_layers(CASES["wan"].build())


def test_bad_selections_and_double_apply_are_loud():
    model = CASES["wan"].build()
    with pytest.raises(ValueError, match="matches none"):
        apply_enhance_a_video(model, EnhanceAVideoConfig(layers={r"nothing\.here": 1.0}))
    with pytest.raises(IndexError, match="out of range"):
        apply_enhance_a_video(model, EnhanceAVideoConfig(layers=[7]))
    apply_enhance_a_video(model, EnhanceAVideoConfig())
    with pytest.raises(RuntimeError, match="already applied"):
        apply_enhance_a_video(model, EnhanceAVideoConfig())
    remove_enhance_a_video(model)


@pytest.mark.parametrize("kwargs", [dict(start=0.6, end=0.5), dict(end=1.5), dict(placement="qkv"),
                                    dict(layers="0")])
def test_config_validation(kwargs):
    with pytest.raises((ValueError, TypeError)):
        EnhanceAVideoConfig(**kwargs)


def test_window_needs_a_timestep():
    config = EnhanceAVideoConfig(start=0.2)
    with pytest.raises(ValueError, match="timestep"):
        config.is_active_at(None)
    assert EnhanceAVideoConfig().is_active_at(None)
    assert config.is_active_at(0.2) and not config.is_active_at(0.1) and config.is_active_at(1.0)


@pytest.mark.parametrize("parallel_config", ["unknown", "unified", "ring_anything"])
def test_unsupported_context_parallel_modes_fail_loudly(parallel_config):
    """Context parallelism modes the adapter cannot make exact (unified ring x Ulysses attention,
    uneven `*_anything` shards, a config it does not recognise) raise instead of scoring each
    shard on its own. Ulysses and Ring alone: tests/test_context_parallel.py."""
    from adapters_tiny_models import run
    from diffusers import ContextParallelConfig
    from diffusers.models._modeling_parallel import ParallelConfig

    configs = {
        "unknown": lambda: object(),
        "unified": lambda: ParallelConfig(context_parallel_config=ContextParallelConfig(ring_degree=2, ulysses_degree=2)),
        "ring_anything": lambda: ParallelConfig(context_parallel_config=ContextParallelConfig(ring_degree=2, ring_anything=True)),
    }
    case = CASES["wan"]
    model = case.build()
    processor = model.blocks[0].attn1.processor
    processor._parallel_config = configs[parallel_config]()  # what enable_parallelism leaves there
    apply_enhance_a_video(model, EnhanceAVideoConfig())
    try:
        with pytest.raises(NotImplementedError, match="context parallelism"):
            run(model, case.inputs(1, torch.Generator().manual_seed(0)))
    finally:
        remove_enhance_a_video(model)
        processor._parallel_config = None


def test_config_names_the_enhance_weight_once():
    """``enhance_weight`` everywhere; the old ``weight=`` still works, warns, and means the same."""
    with pytest.warns(DeprecationWarning, match="'weight' is deprecated; use 'enhance_weight'"):
        old = EnhanceAVideoConfig(weight=3.4)
    assert old == EnhanceAVideoConfig(enhance_weight=3.4)
    assert EnhanceAVideoConfig(3.4).enhance_weight == 3.4  # first positional field, as before
    with pytest.raises(ValueError, match="enhance_weight must be a finite number, got nan"):
        EnhanceAVideoConfig(enhance_weight=float("nan"))


@pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")
@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_latte_temporal_layers_reach_the_fused_kernel(placement, monkeypatch):
    """A pure temporal layer reached through the adapter runs the fused temporal kernel wherever a
    backend has one (CUDA, Triton); here the CPU-compiled twin stands in for it, and the output
    is the independent reference's. Without it (CPU's declared reason) the general path runs."""
    import eav_kernels as eav
    from eav_kernels.backends import BACKENDS

    from adapters_tiny_models import attention_layer_names, reference_output, run

    calls = []
    original = eav.ops.temporal_attention_with_cfi
    monkeypatch.setattr(eav.ops, "temporal_attention_with_cfi", lambda *args: calls.append(1) or original(*args))
    case = CASES["latte"]
    model = case.build()
    inputs = case.inputs(2, torch.Generator().manual_seed(7))
    weights = {name: 4.0 for name in attention_layer_names(model, case)}
    expected = reference_output(model, case, inputs, weights, placement=placement)
    config = EnhanceAVideoConfig(enhance_weight=4.0, placement=placement, backend="cpu")

    apply_enhance_a_video(model, config)
    try:
        general = run(model, inputs)
        assert calls == [], "CPU declares the fused op slower: the general path runs"
        monkeypatch.setattr(BACKENDS["cpu"], "temporal_reason", None)
        fused = run(model, inputs)
    finally:
        remove_enhance_a_video(model)
    assert len(calls) == len(weights), "every temporal layer call takes the fused kernel"
    torch.testing.assert_close(general, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
