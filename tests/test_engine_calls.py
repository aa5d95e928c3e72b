"""The engine sees attention wherever a layer computes it (eav_kernels/engine/calls.py): flash-attn's
ops (dense and varlen), xformers, SageAttention (both layouts), a hand-written softmax, torch SDPA;
q and k read as handed to attention, the output unchanged but for the score. Against the
independent reference of tests/seed_model_reference.py, on tests/engine_tiny_models.py."""

from __future__ import annotations

import pytest
import torch

import eav_kernels as eav
import engine_tiny_models
from engine_tiny_models import ATTEND, case, stand_in_packages
from eav_kernels.engine import enhance_module, remove_enhancement
from eav_kernels.engine.taps import AttentionTap, install_taps, remove_taps
from seed_model_reference import reference_output, run

WEIGHT = 4.0


@pytest.fixture(autouse=True)
def packages():
    with stand_in_packages():
        yield


def _enhanced(model, spec, config, inputs):
    enhance_module(model, spec, config)
    try:
        return run(model, inputs)
    finally:
        remove_enhancement(model)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
@pytest.mark.parametrize("attend", sorted(ATTEND))
def test_every_attention_call_is_seen(attend, placement, per_sample):
    """4 query heads sharing 2 key heads, batch 2, 3 frames of 5 positions."""
    tiny = case(attend)
    model = tiny.build()
    inputs = tiny.inputs(2, engine_tiny_models.FRAMES, torch.Generator().manual_seed(11))
    weights = {f"blocks.{i}": WEIGHT for i in range(2)}
    expected, _ = reference_output(model, tiny, inputs, weights, placement=placement, per_sample=per_sample)
    assert (expected - run(model, inputs)).abs().max() > 1e-3, "enhancement changed nothing: the test is blind"
    config = eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, placement=placement, per_sample=per_sample)
    torch.testing.assert_close(_enhanced(model, tiny.spec, config, inputs), expected, rtol=1e-5, atol=1e-5)


def test_a_function_imported_by_name_into_the_layer_module_is_seen():
    """``from sageattention import sageattn`` binds the function in the layer's module before
    anything is enhanced: the engine taps it there too."""
    import sageattention

    tiny = case("sageattn_nhd")
    model = tiny.build()
    engine_tiny_models.sageattn_bound = sageattention.sageattn  # what the import statement does
    ATTEND["sageattn_nhd"], original = (
        lambda q, k, v: engine_tiny_models.sageattn_bound(q, k, v, tensor_layout="NHD"), ATTEND["sageattn_nhd"])
    try:
        inputs = tiny.inputs(2, engine_tiny_models.FRAMES, torch.Generator().manual_seed(12))
        expected, _ = reference_output(model, tiny, inputs, {"blocks.0": WEIGHT, "blocks.1": WEIGHT})
        out = _enhanced(model, tiny.spec, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT), inputs)
        assert isinstance(engine_tiny_models.sageattn_bound, AttentionTap)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    finally:
        ATTEND["sageattn_nhd"] = original
        remove_taps(["engine_tiny_models"])
        del engine_tiny_models.sageattn_bound


def test_taps_compute_what_the_function_did_and_come_off():
    import sageattention

    original = sageattention.sageattn
    install_taps()
    tap = sageattention.sageattn
    assert isinstance(tap, AttentionTap) and tap.original is original
    q, k, v = (torch.randn(1, 2, 6, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    assert torch.equal(tap(q, k, v), original(q, k, v))
    remove_taps()
    assert sageattention.sageattn is original


def test_another_torch_function_mode_underneath_is_kept():
    """``with torch.device(...)`` is a torch function mode too: under it the capture still sees
    the tapped call and the result is unchanged."""
    tiny = case("xformers")
    model = tiny.build()
    inputs = tiny.inputs(2, engine_tiny_models.FRAMES, torch.Generator().manual_seed(13))
    expected, _ = reference_output(model, tiny, inputs, {"blocks.0": WEIGHT, "blocks.1": WEIGHT})
    with torch.device("cpu"):
        out = _enhanced(model, tiny.spec, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT), inputs)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


class _OpaqueAttention(torch.nn.Module):
    """Attention the engine cannot see: exp-normalised by hand, no softmax, no library call."""

    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(8, 24)

    def forward(self, x):  # [B, N, C]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = (q @ k.transpose(-2, -1)).exp()
        return (weights / weights.sum(-1, keepdim=True)) @ v


class _OpaqueModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([_OpaqueAttention()])

    def forward(self, hidden_states):
        return self.layers[0](hidden_states)


def test_nothing_seen_names_the_layer():
    spec = eav.engine.AdapterSpec(model="_OpaqueModel", self_attention=r"layers\.\d+", text=None,
                                  num_frames=lambda model, arguments: 2)
    model = _OpaqueModel()
    enhance_module(model, spec, eav.EnhanceAVideoConfig())
    try:
        with pytest.raises(RuntimeError, match=r"saw no attention computation in layers\.0 \(_OpaqueAttention\)"):
            model(torch.randn(1, 4, 8))
    finally:
        remove_enhancement(model)
