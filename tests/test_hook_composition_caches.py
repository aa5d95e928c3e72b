"""Enhance-A-Video with diffusers' caches (pyramid attention broadcast, first-block cache,
FasterCache, MagCache, SeaCache, TaylorSeer on attention layers or on blocks, the text KV cache),
block-level layer skip, group offloading and layerwise casting, in both orders, on tiny Wan,
HunyuanVideo and CogVideoX, over four denoising steps (docs/diffusers.md, "With diffusers' other
hooks"); the caches are applied as users do, through ``model.enable_cache``.

The expected output is the same hook over the independent reference (``hook_stacks.py``), the
reference sitting directly around each enhanced layer's own forward: an attention output a cache
stores, reuses or extrapolates is the enhanced one, whichever order the hooks were applied in.
Each test also checks that the cache did skip attention computations (it is not blind), that
after ``remove_enhance_a_video`` the hook computes exactly what it computes alone, and that after
``disable_cache`` Enhance-A-Video computes what it computes alone. The failures diffusers 0.42
shows without Enhance-A-Video are asserted at the end, so that a fixed diffusers fails them.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from diffusers import (  # noqa: E402
    CogVideoXTransformer3DModel,
    FasterCacheConfig,
    FirstBlockCacheConfig,
    LayerSkipConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    SeaCacheConfig,
    TaylorSeerCacheConfig,
    WanTransformer3DModel,
    TextKVCacheConfig,
    apply_faster_cache,
    apply_layer_skip,
)
from diffusers.hooks import HookRegistry, apply_group_offloading, apply_layerwise_casting  # noqa: E402

from adapters_tiny_base import one_thread  # noqa: E402,F401
from adapters_tiny_models import CASES, attention_layer_names, run  # noqa: E402
from eav_kernels import remove_enhance_a_video  # noqa: E402
from hook_stacks import ORDERS, TIMESTEPS, denoise, reference_model, reference_step, stack, step_inputs  # noqa: E402
from output_checks import assert_changed, assert_matches  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = ("wan", "hunyuan_video", "cogvideox")
# FasterCache splits these forward inputs into the unconditional and conditional halves; its
# default list leaves out HunyuanVideo's pooled_projections and guidance (see the test below).
FASTER_CACHE_BATCHED_INPUTS = ("hidden_states", "encoder_hidden_states", "timestep", "encoder_attention_mask",
                               "pooled_projections", "guidance")


def _faster_cache(clock):
    def apply(model):
        model.enable_cache(FasterCacheConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 1000),
            unconditional_batch_skip_range=2, unconditional_batch_timestep_skip_range=(-1, 1000),
            current_timestep_callback=lambda: clock[0],
            attention_weight_callback=lambda _: 0.5,
            tensor_format="BFCHW" if isinstance(model, CogVideoXTransformer3DModel) else "BCFHW",
            _unconditional_conditional_input_kwargs_identifiers=list(FASTER_CACHE_BATCHED_INPUTS),
        ))
    return apply


def _mag_cache(clock):
    # flat magnitude ratios: every step after a computed one may reuse (at most 2 in a row)
    def apply(model):
        model.enable_cache(MagCacheConfig(threshold=10.0, max_skip_steps=2, retention_ratio=0.0,
                                          num_inference_steps=len(TIMESTEPS), mag_ratios=[1.0] * len(TIMESTEPS)))
    return apply


def _raw_vision(model, args, kwargs) -> list[torch.Tensor]:
    """SeaCache's view of the latents, one ``[C, F, H, W]`` per sample (its built-in adapter
    covers Wan text-to-video only)."""
    latents = kwargs["hidden_states"]  # [B, C, F, H, W]; CogVideoX: [B, F, C, H, W]
    if isinstance(model, CogVideoXTransformer3DModel):
        latents = latents.permute(0, 2, 1, 3, 4)
    return list(latents.unbind(0))


def _sea_cache(clock):
    def apply(model):
        model.enable_cache(SeaCacheConfig(
            threshold=1e6, retention_steps=1, cache_end_steps=0,
            raw_vision_callback=None if isinstance(model, WanTransformer3DModel) else _raw_vision,
        ))
    return apply


def _taylorseer_on_attention(case):
    # on the self-attention layers themselves: predicted outputs extrapolate enhanced ones
    def factory(clock):
        def apply(model):
            model.enable_cache(TaylorSeerCacheConfig(
                cache_interval=2, disable_cache_before_step=3, max_order=1, taylor_factors_dtype=torch.float32,
                cache_identifiers=[case.self_attention],
            ))
        return apply
    return factory


def _text_kv_cache(clock):
    return lambda model: model.enable_cache(TextKVCacheConfig())


def _layer_skip_blocks(clock):
    # skip_attention and skip_ff (the defaults): block 0 returns its input. The block list is
    # named: diffusers 0.42's fqn="auto" picks HunyuanVideo's transformer_blocks or
    # single_transformer_blocks by the iteration order of a set of strings (it varies with
    # PYTHONHASHSEED)
    def apply(model):
        fqn = "blocks" if isinstance(model, WanTransformer3DModel) else "transformer_blocks"
        apply_layer_skip(model, LayerSkipConfig(indices=[0], fqn=fqn))
    return apply


def _pyramid_attention_broadcast(clock):
    def apply(model):
        model.enable_cache(PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=lambda: clock[0],
        ))
    return apply


def _first_block_cache(clock):
    return lambda model: model.enable_cache(FirstBlockCacheConfig(threshold=1e6))  # reuse after step 0


def _taylorseer_on_blocks(clock):
    def apply(model):
        model.enable_cache(TaylorSeerCacheConfig(
            cache_interval=2, disable_cache_before_step=3, max_order=1, taylor_factors_dtype=torch.float32,
            cache_identifiers=[r"(single_)?(transformer_)?blocks\.\d+"],
        ))
    return apply


def _block_offloading(clock):
    cpu = torch.device("cpu")  # streams need CUDA: not exercised here
    return lambda model: apply_group_offloading(model, onload_device=cpu, offload_device=cpu,
                                                offload_type="block_level", num_blocks_per_group=1)


def _leaf_offloading(clock):
    cpu = torch.device("cpu")
    return lambda model: apply_group_offloading(model, onload_device=cpu, offload_device=cpu, offload_type="leaf_level")


def _layerwise_casting(clock):
    return lambda model: model.enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)


HOOKS = {
    "pyramid_attention_broadcast": (_pyramid_attention_broadcast, 1),
    "first_block_cache": (_first_block_cache, 1),
    "taylorseer_blocks": (_taylorseer_on_blocks, 1),
    "block_offloading": (_block_offloading, 1),
    "leaf_offloading": (_leaf_offloading, 1),
    "layerwise_casting": (_layerwise_casting, 1),
    "faster_cache": (_faster_cache, 2),  # (hook factory, batch size: FasterCache needs a CFG batch)
    "mag_cache": (_mag_cache, 1),
    "sea_cache": (_sea_cache, 1),
    "taylorseer_attention": (None, 1),
    "text_kv_cache": (_text_kv_cache, 1),
    "layer_skip_blocks": (_layer_skip_blocks, 1),
}


# the caches that hook attention layers themselves (the others skip whole blocks or reuse nothing)
ATTENTION_CACHES = ("pyramid_attention_broadcast", "faster_cache", "taylorseer_attention")
# the hooks applied through ``model.enable_cache`` (undone by ``model.disable_cache``)
CACHES = ("pyramid_attention_broadcast", "first_block_cache", "taylorseer_blocks", "faster_cache", "mag_cache",
          "sea_cache", "taylorseer_attention", "text_kv_cache")
# hooks that reuse nothing: the text KV cache hooks only NucleusMoE image blocks
COMPUTE_EVERY_STEP = ("text_kv_cache", "block_offloading", "leaf_offloading", "layerwise_casting")


def _hook(name: str, case):
    factory, batch_size = HOOKS[name]
    return (factory or _taylorseer_on_attention(case)), batch_size


def _count_attention_computations(model, case) -> list[int]:
    """A counter of the last self-attention layer's q projections: attention computations."""
    calls = [0]
    last = attention_layer_names(model, case)[-1]
    model.get_submodule(f"{last}.to_q").register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("hook_name", list(HOOKS))
def test_cached_outputs_are_the_enhanced_ones(hook_name, model_name, order):
    _check_against_the_reference(hook_name, model_name, order, "to_out")


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("hook_name", ATTENTION_CACHES)
def test_attention_caches_with_the_score_on_the_attention_output(hook_name, model_name, order):
    _check_against_the_reference(hook_name, model_name, order, "attention_output")


def _check_against_the_reference(hook_name: str, model_name: str, order: str, placement: str) -> None:
    case = CASES[model_name]
    factory, batch_size = _hook(hook_name, case)
    clock = [0.0]
    steps = step_inputs(case, batch_size)
    model = stack(case, factory(clock), order, placement)
    calls = _count_attention_computations(model, case)
    actual = denoise(model, steps, clock)

    reference = reference_model(case, factory(clock), inside_hooks=True)
    expected = denoise(reference, steps, clock, reference_step(case, placement, inside_hooks=True))

    for out, ref in zip(actual, expected):
        assert_matches(out, ref)
    assert_changed(actual[0], run(case.build(), steps[0]))  # enhanced: not a blind comparison
    if hook_name in COMPUTE_EVERY_STEP:
        assert calls[0] == len(steps)
    elif hook_name == "layer_skip_blocks":
        assert calls[0] == len(steps) and _first_attention_skipped(model, case, steps)
    else:
        assert calls[0] < len(steps), f"{hook_name} reused nothing: the test is blind"


def _first_attention_skipped(model, case, steps) -> bool:
    calls = [0]
    first = attention_layer_names(model, case)[0]
    handle = model.get_submodule(f"{first}.to_q").register_forward_pre_hook(
        lambda module, args: calls.__setitem__(0, calls[0] + 1))
    run(model, steps[0])
    handle.remove()
    return calls[0] == 0


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("hook_name", list(HOOKS))
def test_remove_leaves_the_hook_working(hook_name, model_name, order):
    case = CASES[model_name]
    factory, batch_size = _hook(hook_name, case)
    clock = [0.0]
    steps = step_inputs(case, batch_size)
    model = stack(case, factory(clock), order)
    denoise(model, steps, clock)
    remove_enhance_a_video(model)
    HookRegistry.check_if_exists_or_initialize(model).reset_stateful_hooks()
    actual = denoise(model, steps, clock)

    hook_only = case.build()
    factory(clock)(hook_only)
    expected = denoise(hook_only, steps, clock)
    for out, ref in zip(actual, expected):
        torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("hook_name", CACHES)
def test_disabling_the_cache_leaves_enhance_a_video_working(hook_name, order):
    case = CASES["hunyuan_video"]  # its transformer hook and FasterCache's share the root
    factory, batch_size = _hook(hook_name, case)
    clock = [0.0]
    steps = step_inputs(case, batch_size, steps=2)
    model = stack(case, factory(clock), order)
    denoise(model, steps, clock)
    model.disable_cache()
    actual = denoise(model, steps, clock)

    expected = denoise(case.build(), steps, clock, reference_step(case))
    for out, ref in zip(actual, expected):
        assert_matches(out, ref)


def test_faster_cache_default_inputs_fail_on_hunyuan_video_in_diffusers():
    """diffusers 0.42, without Enhance-A-Video: FasterCache's default list of CFG-batched inputs
    leaves HunyuanVideo's pooled_projections and guidance whole, so a step that skips the
    unconditional half fails (the tests above pass the full list). A fix makes this test fail."""
    case = CASES["hunyuan_video"]
    clock = [0.0]
    model = case.build()
    apply_faster_cache(model, FasterCacheConfig(
        unconditional_batch_skip_range=2, unconditional_batch_timestep_skip_range=(-1, 1000),
        current_timestep_callback=lambda: clock[0],
    ))
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match the size of tensor b \(8\)"):
        denoise(model, step_inputs(case, batch_size=2), clock)


@pytest.mark.parametrize("model_name", MODELS)
def test_faster_cache_guidance_distilled_fails_in_diffusers(model_name):
    """diffusers 0.42, without Enhance-A-Video: with ``is_guidance_distilled=True`` the attention
    hook tries to reuse before anything is cached, inside the timestep range. A fix makes this
    test fail."""
    case = CASES[model_name]
    clock = [0.0]
    model = case.build()
    apply_faster_cache(model, FasterCacheConfig(
        spatial_attention_timestep_skip_range=(-1, 1000), current_timestep_callback=lambda: clock[0],
        is_guidance_distilled=True,
    ))
    with pytest.raises(TypeError, match="'NoneType' object is not subscriptable"):
        denoise(model, step_inputs(case, steps=1), clock)


@pytest.mark.parametrize("model_name", MODELS)
def test_per_sample_scores_follow_the_batch_faster_cache_computes(model_name):
    """FasterCache's denoiser hook hands the model the conditional half of a CFG batch on the
    steps it skips the unconditional branch (every third step here, while its attention hook
    computes every second): ``per_sample`` scores fold the batch the model computes, whichever
    hook was applied first (applied first, FasterCache used to sit inside Enhance-A-Video's
    transformer hook, which then expected the full batch and raised)."""
    case = CASES[model_name]
    clock = [0.0]
    steps = step_inputs(case, batch_size=2)

    def faster_cache(model):
        _faster_cache(clock)(model)
        model._diffusers_hook.get_hook("faster_cache_denoiser").unconditional_batch_skip_range = 3

    outputs = {}
    for order in ORDERS:
        model = stack(case, faster_cache, order, per_sample=True)
        calls = _count_attention_computations(model, case)
        outputs[order] = denoise(model, steps, clock)
        assert calls[0] == 3  # computed on the halved batch of step 2 too
    for first, second in zip(*outputs.values()):
        torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_bare_layerwise_casting_fails_on_wan_in_diffusers():
    """diffusers 0.42, without Enhance-A-Video: ``apply_layerwise_casting`` casts a layer Wan
    keeps in float32 (``enable_layerwise_casting`` skips it, and is what the tests above use). A
    fix makes this test fail."""
    case = CASES["wan"]
    model = case.build()
    apply_layerwise_casting(model, storage_dtype=torch.bfloat16, compute_dtype=torch.float32)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got BFloat16 and Float"):
        run(model, step_inputs(case, steps=1)[0])


def _on(device: str, inputs: dict) -> dict:
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in inputs.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("offload_type", ["block_level", "leaf_level"])
def test_group_offloading_with_streams_changes_nothing(offload_type, order):
    """GPU twin of the block- and leaf-level offloading cases above: weights on the CPU, onloaded
    to CUDA on a side stream (diffusers refuses streams with a CPU onload device: ``ValueError:
    Using streams for data transfer requires an onload device whose backend implements streams``)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (none available)")
    case = CASES["wan"]
    clock = [0.0]
    steps = [_on("cuda", inputs) for inputs in step_inputs(case, steps=2)]

    def offload(model):
        apply_group_offloading(model, onload_device=torch.device("cuda"), offload_device=torch.device("cpu"),
                               offload_type=offload_type, num_blocks_per_group=1, use_stream=True)

    actual = denoise(stack(case, offload, order), steps, clock)
    expected = denoise(reference_model(case, offload, inside_hooks=False), steps, clock, reference_step(case))
    for out, ref in zip(actual, expected):
        assert_matches(out, ref)
