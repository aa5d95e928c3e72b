"""The node next to an attention node (Sage, Flash, ComfyUI's own backend selection), applied
before or after it. Attention nodes write ``optimized_attention_override`` into the patcher's
``model_options``; the node puts its override into each model call's own ``transformer_options``,
chained to the one the call carries. On stand-ins, against the float64 reference: both overrides
run once per attention in either order, and no patcher's options are written."""

from __future__ import annotations

import pytest
import torch

from comfyui_helpers import FRAMES, SPATIAL, assert_close, enhance, latent, patcher, text
from comfyui_reference import Expectation, hunyuan_expected, wan_expected
from comfyui_standins import BaseModel, ModelPatcher, attention_pytorch
from test_comfyui_node import hunyuan, wan
from test_comfyui_override import MODELS, build, call_override, expected_output

OVERRIDE = "optimized_attention_override"
ORDERS = ("attention node first", "Enhance-A-Video first")


class CountingOverride:
    """An attention node's override: counts its calls, then runs the attention it is handed."""

    def __init__(self):
        self.calls = 0

    def __call__(self, attention_function, *args, **kwargs):
        self.calls += 1
        return attention_function(*args, **kwargs)


def with_attention_node(model: ModelPatcher, order: str, override) -> ModelPatcher:
    """``model`` through Enhance-A-Video and an attention node (``override``), in ``order``; each
    node clones its input, as ComfyUI's nodes do."""
    if order == ORDERS[0]:
        selected = model.clone()
        selected.set_model_attention_override(override)
        return enhance(selected)
    selected = enhance(model).clone()
    selected.set_model_attention_override(override)
    return selected


def attention_calls(model: ModelPatcher, x, context) -> int:
    """How many attention calls one model call of ``model`` makes (counted by an override)."""
    counting = CountingOverride()
    counted = model.clone()
    counted.set_model_attention_override(counting)
    counted.sample_call(x, 0.5, context)
    return counting.calls


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("family", sorted(MODELS))
def test_both_overrides_run_once_per_attention_in_either_order(generator, family, order):
    model = build(family)
    x, context = latent(generator), text(generator)
    override = CountingOverride()
    out = with_attention_node(model, order, override).sample_call(x, 0.5, context)
    assert override.calls == attention_calls(model, x, context) > 0
    assert_close(out, expected_output(model, family, x, context))  # enhanced once, not twice


@pytest.mark.parametrize("family", ["ltxv", "cogvideox"])
def test_comfyuis_attention_selection_after_the_node_keeps_its_container_function(generator, family):
    """``set_model_optimized_attention`` applied after the node: its backend computes every
    attention, the node enhances, and the per-call override keeps the backend's
    ``container_function`` (none without a previous override: ComfyUI tests ``hasattr``)."""
    model = build(family)
    x, context = latent(generator), text(generator)
    calls = []

    def backend(*args, **kwargs):
        calls.append(args[0].shape)
        return attention_pytorch(*args, **kwargs)

    backend.container_function = lambda *args, **kwargs: None
    selected = enhance(model).clone()
    selected.set_model_optimized_attention(backend)
    out = selected.sample_call(x, 0.5, context)
    assert len(calls) == attention_calls(model, x, context)
    assert_close(out, expected_output(model, family, x, context))
    options = dict(selected.model_options["transformer_options"])
    assert call_override(selected, options).container_function is backend.container_function
    assert not hasattr(call_override(enhance(model), {}), "container_function")


def test_the_original_model_and_other_clones_are_untouched(generator):
    """An attention node applied to the enhanced clone: the original, the enhanced clone and the
    attention node's clone keep their options; the enhanced clone alone never calls that override."""
    model = build("ltxv")
    x, context = latent(generator), text(generator)
    plain = model.sample_call(x, 0.5, context)
    enhanced = enhance(model)
    override = CountingOverride()
    selected = enhanced.clone()
    selected.set_model_attention_override(override)
    selected.sample_call(x, 0.5, context)
    calls = override.calls
    assert_close(enhanced.sample_call(x, 0.5, context), expected_output(model, "ltxv", x, context))
    assert override.calls == calls > 0
    assert OVERRIDE not in model.model_options["transformer_options"]
    assert OVERRIDE not in enhanced.model_options["transformer_options"]
    assert selected.model_options["transformer_options"][OVERRIDE] is override
    assert torch.equal(model.sample_call(x, 0.5, context), plain)


def test_the_options_the_call_brings_are_not_written(generator):
    """A wrapper around the node's (applied before it) hands a ``transformer_options`` dict in;
    after the call it holds the same entries, its attention override included."""
    model = build("cosmos")
    seen = []

    def outer(executor, *args, **kwargs):
        options = next(value for value in reversed(args) if isinstance(value, dict))
        before = dict(options)
        out = executor(*args, **kwargs)
        seen.append(set(options) == set(before) and all(options[key] is value for key, value in before.items()))
        return out

    selected = model.clone()
    selected.set_model_attention_override(CountingOverride())
    selected.add_wrapper_with_key("diffusion_model", "outer", outer)
    enhance(selected).sample_call(latent(generator), 0.5, text(generator))
    assert seen == [True]


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_patch_families_with_an_attention_node_applied_after(generator, family):
    """Wan and HunyuanVideo read q and k in their attention patches: an override set after the node
    computes every attention, and the output is the enhanced reference."""
    model = patcher(wan() if family == "wan" else hunyuan())
    x, context = latent(generator), text(generator)
    override = CountingOverride()
    out = with_attention_node(model, ORDERS[1], override).sample_call(x, 0.5, context)
    assert override.calls == attention_calls(model, x, context) > 0
    reference = wan_expected(model.model.diffusion_model, Expectation()) if family == "wan" else \
        hunyuan_expected(model.model.diffusion_model, Expectation(), FRAMES, SPATIAL)
    assert_close(out, ModelPatcher(BaseModel(reference)).sample_call(x, 0.5, context))
