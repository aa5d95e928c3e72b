"""The node next to ComfyUI's caches and block skippers, on stand-ins of their contracts:
EasyCache (a ``DIFFUSION_MODEL`` wrapper that returns a cached output without calling the model;
both wrapper orders), first-block / TeaCache-style caches (block replacements that reuse the later
blocks' residual; both orders), skip-layer guidance (``patches_replace["dit"]`` replacing a block with its
input) and LTX-2's STG (``stg_self_attn_blocks``: those blocks' self-attention passes v through).
A skipped model call or block raises nothing and is not enhanced; a reused output is the one the
enhanced step produced; no score outlives its call."""

from __future__ import annotations

import pytest
import torch

from comfyui_helpers import FRAMES, SPATIAL, assert_close, enhance, latent, patcher, text
from comfyui_reference import AFTER, BEFORE, Expectation, hunyuan_expected, override_expected, wan_expected
from comfyui_standin_models import HunyuanVideo, WanModel
from comfyui_standin_override_models import LTXAVModel
from comfyui_standins import BaseModel, FirstBlockCache, ModelPatcher, ReuseCache, skip_layer
from output_checks import assert_changed


def build(family: str) -> ModelPatcher:
    torch.manual_seed(0)
    return patcher(WanModel(depth=3) if family == "wan" else HunyuanVideo())


def reference(model: ModelPatcher, family: str, **expectation) -> ModelPatcher:
    """The expected model, with ``model``'s ``model_options`` (block replacements included)."""
    diffusion_model = model.model.diffusion_model
    expected = wan_expected(diffusion_model, Expectation(**expectation)) if family == "wan" else \
        hunyuan_expected(diffusion_model, Expectation(**expectation), FRAMES, SPATIAL)
    out = ModelPatcher(BaseModel(expected))
    out.model_options = model.model_options
    return out


@pytest.mark.parametrize("cache_first", [False, True])
@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_a_cache_reusing_a_step_in_either_wrapper_order(generator, family, cache_first):
    model, cache = build(family), ReuseCache()
    if cache_first:
        cached = model.clone()
        cached.add_wrapper_with_key("diffusion_model", "easycache", cache)
        enhanced = enhance(cached)
    else:
        enhanced = enhance(model)
        enhanced.add_wrapper_with_key("diffusion_model", "easycache", cache)
    x, context = latent(generator), text(generator)
    first = enhanced.sample_call(x, 0.7, context)
    assert_close(first, reference(model, family).sample_call(x, 0.7, context))
    cache.reuse = True
    assert enhanced.sample_call(x, 0.5, context) is first
    cache.reuse = False
    assert_close(enhanced.sample_call(x, 0.3, context), reference(model, family).sample_call(x, 0.3, context))


@pytest.mark.parametrize("placement", [AFTER, BEFORE])
@pytest.mark.parametrize("cache_first", [False, True])
def test_a_first_block_cache_reuses_the_residual_of_the_enhanced_step(generator, cache_first, placement):
    """On a reused step block 0 runs (enhanced with this step's score) and the later blocks add
    the residual they added, enhanced, on the step that ran them."""
    model, cache, reference_cache = build("wan"), FirstBlockCache(depth=3), FirstBlockCache(depth=3)
    if cache_first:
        cached = model.clone()
        cache.install(cached)
        enhanced = enhance(cached, placement=placement)
    else:
        enhanced = enhance(model, placement=placement).clone()
        cache.install(enhanced)
    expected_model = model.clone()
    reference_cache.install(expected_model)
    expected = reference(expected_model, "wan", placement=placement)
    x, context = latent(generator), text(generator)
    for sigma, reuse in ((0.7, False), (0.5, True), (0.3, False)):
        cache.reuse = reference_cache.reuse = reuse
        residual = cache.residual
        assert_close(enhanced.sample_call(x, sigma, context), expected.sample_call(x, sigma, context))
        assert (cache.residual is residual) == reuse  # a reused step ran no later block
    plain_cache = FirstBlockCache(depth=3)
    plain = model.clone()
    plain_cache.install(plain)
    plain.sample_call(x, 0.3, context)  # the last step the enhanced cache ran
    assert_changed(cache.residual, plain_cache.residual)  # the cached residual is the enhanced one


@pytest.mark.parametrize("placement", [AFTER, BEFORE])
@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_skip_layer_guidance_skips_a_block_in_either_order(generator, family, placement):
    model = build(family)
    x, context = latent(generator), text(generator)
    skipping = model.clone()
    skipping.model_options["transformer_options"]["patches_replace"] = {"dit": {("double_block", 0): skip_layer}}
    applied_after = enhance(model, placement=placement).clone()
    applied_after.model_options["transformer_options"]["patches_replace"] = {"dit": {("double_block", 0): skip_layer}}
    expected = reference(skipping, family, placement=placement).sample_call(x, 0.5, context)
    for enhanced in (enhance(skipping, placement=placement), applied_after):
        assert_close(enhanced.sample_call(x, 0.5, context), expected)
    assert_changed(expected, skipping.sample_call(x, 0.5, context))


def test_ltx2_stg_blocks_are_not_enhanced_and_keep_their_numbers(generator):
    """Block 0 passes v through (STG): the first video self-attention call is block 1's, and
    ``blocks='1'`` enhances it."""
    torch.manual_seed(0)
    model = patcher(LTXAVModel())
    model.model_options["transformer_options"]["stg_self_attn_blocks"] = (0,)
    streams, context = [latent(generator), torch.randn(2, 7, 4, generator=generator)], text(generator)
    video, _ = enhance(model, blocks=frozenset({1})).sample_call(streams, 0.5, context)
    expected = ModelPatcher(BaseModel(override_expected(model.model.diffusion_model, Expectation(blocks={1}),
                                                        FRAMES, 60)))
    expected.model_options = model.model_options
    assert_close(video, expected.sample_call(streams, 0.5, context)[0])
    assert_changed(video, model.sample_call(streams, 0.5, context)[0])
