"""Enhance-A-Video stacked with diffusers' cache, offloading and casting hooks, in both orders, on
a tiny Wan over several denoising steps: an output a cache reuses carries the score of the
computation that produced it; offloading and casting change nothing (docs/diffusers.md, "With
diffusers' other hooks").

Each expected output comes from the independent reference (``reference_output``) on a fresh copy
of the model: for block-level caches (first-block cache, TaylorSeer), offloading and casting the
same hook runs over the reference; for pyramid attention broadcast, whose reuse of an attention
layer's output the reference's forward hooks cannot see, ``ReplayedAttentionCache`` replays PAB's
documented decisions on top of the reference.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from diffusers import (  # noqa: E402
    FirstBlockCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
    apply_first_block_cache,
    apply_pyramid_attention_broadcast,
    apply_taylorseer_cache,
)
from diffusers.hooks import HookRegistry, apply_group_offloading  # noqa: E402

from adapters_tiny_base import enhance_config, one_thread  # noqa: E402,F401
from adapters_tiny_models import CASES, attention_layer_names, run  # noqa: E402
from hook_stacks import ORDERS, TIMESTEPS, WEIGHT, denoise, reference_step, stack, step_inputs  # noqa: E402
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video  # noqa: E402
from output_checks import assert_changed, assert_matches  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

CASE = CASES["wan"]
PAB_SKIP_RANGE = 2  # compute every second step inside the timestep range
PAB_TIMESTEP_RANGE = (100, 800)  # strictly inside: 700, 500, 300


def _pab_reused_steps() -> set[int]:
    """The steps PAB serves from its cache: its own rule (hooks/pyramid_attention_broadcast.py),
    written out for these timesteps (step 0 fills the cache)."""
    low, high = PAB_TIMESTEP_RANGE
    return {step for step, t in enumerate(TIMESTEPS)
            if step > 0 and low < t < high and step % PAB_SKIP_RANGE != 0}


def _step_inputs() -> list[dict]:
    return step_inputs(CASE)


def _reference_step(placement: str):
    return reference_step(CASE, placement)


def _stack(apply_cache, order: str, placement: str):
    """A tiny Wan with Enhance-A-Video and the cache hook applied in ``order``."""
    return stack(CASE, apply_cache, order, placement)


def _pab(clock):
    def apply(model):
        apply_pyramid_attention_broadcast(model, PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=PAB_SKIP_RANGE,
            spatial_attention_timestep_skip_range=PAB_TIMESTEP_RANGE,
            current_timestep_callback=lambda: clock[0],
        ))
    return apply


def _first_block_cache(model):
    apply_first_block_cache(model, FirstBlockCacheConfig(threshold=1e6))  # every later step reuses


def _taylorseer(model):
    # Its default patterns ("^blocks.*attn", full match) hook no module of Wan (whose layers are
    # blocks.N.attn1 / attn2): the blocks are named here. Forwards 1-3 compute, 4 predicts;
    # float32 factors.
    apply_taylorseer_cache(model, TaylorSeerCacheConfig(
        cache_interval=2, disable_cache_before_step=3, max_order=1, taylor_factors_dtype=torch.float32,
        cache_identifiers=[r"blocks\.\d+"],
    ))


def _block_offloading(model):
    cpu = torch.device("cpu")  # streams need CUDA: not exercised here
    apply_group_offloading(model, onload_device=cpu, offload_device=cpu, offload_type="block_level",
                           num_blocks_per_group=1)


def _leaf_offloading(model):
    cpu = torch.device("cpu")
    apply_group_offloading(model, onload_device=cpu, offload_device=cpu, offload_type="leaf_level")


def _layerwise_casting(model):
    # the model method: it skips the layers Wan keeps in full precision (diffusers' bare
    # apply_layerwise_casting breaks tiny Wan's timestep embedding even without Enhance-A-Video)
    model.enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)


def _stack(apply_cache, order: str, placement: str):
    """A tiny Wan with Enhance-A-Video and the cache hook applied in ``order``."""
    model = CASE.build()
    config = enhance_config(WEIGHT, placement=placement)
    if order == "eav_first":
        apply_enhance_a_video(model, config)
        apply_cache(model)
    else:
        apply_cache(model)
        apply_enhance_a_video(model, config)
    return model


class ReplayedAttentionCache:
    """Test reference of an attention-output cache over ``reference_output``: on ``reused`` steps
    each layer in ``names`` returns the output it returned on its latest computing step, as finally
    returned, the reference enhancement's scaling included (what the defined semantics asks)."""

    def __init__(self, model, names: list[str], reused: set[int], placement: str):
        self.reused, self.step, self.outputs = reused, 0, {}
        self.reference_step = _reference_step(placement)
        for name in names:
            model.get_submodule(name).register_forward_pre_hook(self._arm(name))

    def _arm(self, name):
        def pre_hook(module, args):
            # Registered during this call, this forward hook runs after every forward hook
            # registered before it: the reference's own scaling has been applied when it runs.
            handle = module.register_forward_hook(lambda m, a, output: replay(output))

            def replay(output):
                handle.remove()
                if self.step in self.reused:
                    return self.outputs[name]
                self.outputs[name] = output
                return output
        return pre_hook

    def run_step(self, model, inputs):
        output = self.reference_step(model, inputs)
        self.step += 1
        return output


def _pab_layers(model) -> list[str]:
    return [name for name, module in model.named_modules()
            if getattr(module, "_diffusers_hook", None) is not None
            and module._diffusers_hook.get_hook("pyramid_attention_broadcast") is not None]


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
@pytest.mark.parametrize("order", ORDERS)
def test_pyramid_attention_broadcast_reuse_carries_the_producing_score(order, placement):
    clock = [0.0]
    steps = _step_inputs()
    model = _stack(_pab(clock), order, placement)
    actual = denoise(model, steps, clock)

    reference_model = CASE.build()
    names = _pab_layers(model)
    assert set(attention_layer_names(model, CASE)) <= set(names), names
    replay = ReplayedAttentionCache(reference_model, names, _pab_reused_steps(), placement)
    expected = denoise(reference_model, steps, clock, replay.run_step)
    without_cache = denoise(CASE.build(), steps, clock, _reference_step(placement))

    assert _pab_reused_steps() == {1, 3}
    for out, ref in zip(actual, expected):
        assert_matches(out, ref)
    assert_changed(actual[1], without_cache[1])  # the reuse happened: not a blind test


@pytest.mark.parametrize("apply_cache", [_first_block_cache, _taylorseer], ids=["first_block_cache", "taylorseer"])
@pytest.mark.parametrize("order", ORDERS)
def test_block_cache_reuse_carries_the_producing_score(apply_cache, order):
    """Block-level caches skip whole blocks: the enhanced attention inside never runs on a reused
    step, and the cached block output already carries its scores."""
    clock = [0.0]
    steps = _step_inputs()
    model = _stack(apply_cache, order, "to_out")
    tail_attention = model.get_submodule("blocks.1.attn1")
    calls = []
    tail_attention.register_forward_pre_hook(lambda module, args: calls.append(1))
    actual = denoise(model, steps, clock)

    reference_model = CASE.build()
    apply_cache(reference_model)
    expected = denoise(reference_model, steps, clock, _reference_step("to_out"))

    assert len(calls) < len(TIMESTEPS), "the cache reused nothing: the test is blind"
    for out, ref in zip(actual, expected):
        assert_matches(out, ref)


@pytest.mark.parametrize("apply_other", [_block_offloading, _leaf_offloading, _layerwise_casting],
                         ids=["block_offloading", "leaf_offloading", "layerwise_casting"])
@pytest.mark.parametrize("order", ORDERS)
def test_offloading_and_casting_change_nothing(apply_other, order):
    clock = [0.0]
    steps = _step_inputs()[:2]
    actual = denoise(_stack(apply_other, order, "to_out"), steps, clock)

    reference_model, plain = CASE.build(), CASE.build()
    apply_other(reference_model)
    apply_other(plain)
    expected = denoise(reference_model, steps, clock, _reference_step("to_out"))
    unenhanced = denoise(plain, steps, clock)
    for out, ref, unchanged in zip(actual, expected, unenhanced):
        assert_matches(out, ref)
        assert_changed(out, unchanged)


@pytest.mark.parametrize("order", ORDERS)
def test_remove_leaves_pyramid_attention_broadcast_working(order):
    clock = [0.0]
    steps = _step_inputs()
    model = _stack(_pab(clock), order, "to_out")
    denoise(model, steps, clock)
    remove_enhance_a_video(model)
    HookRegistry.check_if_exists_or_initialize(model).reset_stateful_hooks()
    actual = denoise(model, steps, clock)

    pab_only = CASE.build()
    _pab(clock)(pab_only)
    expected = denoise(pab_only, steps, clock)
    plain = denoise(CASE.build(), steps, clock)
    for out, ref in zip(actual, expected):
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert_changed(actual[1], plain[1])  # PAB still reuses after the removal


class _CopyingProcessor:
    """An attention processor that hands back a copy of its first output: the engine cannot tell
    that copy from an output computed without any attention call it can see."""

    def __init__(self, processor):
        self.processor, self.cached = processor, None

    def __call__(self, attn, *args, **kwargs):
        if self.cached is None:
            self.cached = self.processor(attn, *args, **kwargs)
        return self.cached.clone()


def test_an_unexplained_missing_attention_call_still_raises():
    model = CASE.build()
    layer = model.get_submodule("blocks.0.attn1")
    layer.processor = _CopyingProcessor(layer.processor)
    apply_enhance_a_video(model, enhance_config(WEIGHT))
    steps = _step_inputs()
    run(model, steps[0])
    with pytest.raises(RuntimeError, match=r"saw no attention computation in blocks\.0\.attn1"):
        run(model, steps[1])
