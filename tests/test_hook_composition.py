"""Enhance-A-Video with pyramid attention broadcast on a tiny Wan, in both orders and both
placements, against a reference that replays PAB's documented decisions (``ReplayedAttentionCache``:
a reused output is the enhanced output of the step that computed it), without running PAB; and a
missing attention call that nothing upstream explains still raises (docs/diffusers.md, "With
diffusers' other hooks"). Every other hook, and PAB on HunyuanVideo and CogVideoX, is in
test_hook_composition_caches.py and test_hook_composition_layer_skip.py.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from diffusers import PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast  # noqa: E402
from diffusers.hooks import HookRegistry, ModelHook  # noqa: E402

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


class ReplayedAttentionCache:
    """Test reference of an attention-output cache over ``reference_output``: on ``reused`` steps
    each layer in ``names`` returns the output it returned on its latest computing step, as finally
    returned, the reference enhancement's scaling included (what the defined semantics asks)."""

    def __init__(self, model, names: list[str], reused: set[int], placement: str):
        self.model, self.reused, self.step, self.outputs = model, reused, 0, {}
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


class _ReusingProcessor:
    """An attention processor caching inside the layer's own forward (where no diffusers hook
    sits): every second call hands back the very output object of the call before."""

    def __init__(self, processor):
        self.processor, self.calls, self.cached = processor, 0, None

    def __call__(self, attn, *args, **kwargs):
        if self.calls % 2 == 0:
            self.cached = self.processor(attn, *args, **kwargs)
        self.calls += 1
        return self.cached


@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
def test_an_output_reused_inside_the_layer_carries_the_producing_score(placement):
    clock = [0.0]
    steps = _step_inputs()
    model = CASE.build()
    names = attention_layer_names(model, CASE)
    for name in names:
        layer = model.get_submodule(name)
        layer.processor = _ReusingProcessor(layer.processor)
    apply_enhance_a_video(model, enhance_config(WEIGHT, placement=placement))
    actual = denoise(model, steps, clock)

    replay = ReplayedAttentionCache(CASE.build(), names, {1, 3}, placement)
    expected = denoise(replay.model, steps, clock, replay.run_step)
    for out, ref in zip(actual, expected):
        assert_matches(out, ref)


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


class _Passing(ModelHook):
    pass


def test_the_transformer_hook_stays_outside_the_context_parallel_split_only():
    """On the transformer, Enhance-A-Video's hook goes inside hooks registered before it (it reads
    the forward the model computes) but outside context parallelism's input split (diffusers
    names it ``cp_input---<module>``: the score is that of the whole forward)."""
    model = CASE.build()
    registry = HookRegistry.check_if_exists_or_initialize(model)
    for name in ("before_split", "cp_input---", "after_split"):
        registry.register_hook(_Passing(), name)
    apply_enhance_a_video(model, enhance_config(WEIGHT))
    assert registry._hook_order == ["before_split", "cp_input---", "enhance_a_video", "after_split"]
    expected = run(CASE.build(), _step_inputs()[0])
    remove_enhance_a_video(model)
    assert registry._hook_order == ["before_split", "cp_input---", "after_split"]
    torch.testing.assert_close(run(model, _step_inputs()[0]), expected, rtol=0, atol=0)


def test_registering_a_hook_name_twice_innermost_raises_with_the_chain():
    from eav_kernels.adapters.hook_chain import register_innermost

    registry = HookRegistry.check_if_exists_or_initialize(torch.nn.Linear(3, 5))
    registry.register_hook(_Passing(), "outer")
    register_innermost(registry, _Passing(), "inner")
    with pytest.raises(ValueError, match=r"'inner' is already registered .*innermost first: \['inner', 'outer'\]"):
        register_innermost(registry, _Passing(), "inner")


@pytest.mark.parametrize("order", ORDERS)
def test_an_output_computed_outside_the_window_is_reused_unenhanced(order):
    """Step 0 (progress 0.1) is before ``start=0.2``: PAB reuses its unenhanced attention outputs
    at step 1, inside the window, so step 1 is exactly PAB's own; step 2 computes, enhanced."""
    clock = [0.0]
    steps = _step_inputs()
    model = stack(CASE, _pab(clock), order, start=0.2)
    actual = denoise(model, steps, clock)
    pab_only = CASE.build()
    _pab(clock)(pab_only)
    expected = denoise(pab_only, steps, clock)

    assert _pab_reused_steps() == {1, 3}
    torch.testing.assert_close(actual[1], expected[1], rtol=0, atol=0)
    assert_changed(actual[2], expected[2])


def test_a_step_outside_the_window_leaves_no_score_behind():
    """The attention hooks' ``last_score`` is the latest call's: after a step outside the window
    (progress below ``start``) it is ``None``, not the score of the step before."""
    from context_parallel_worker import layer_scores

    steps = _step_inputs()  # timesteps fall: the first is the noisiest
    model = stack(CASE, lambda model: None, "eav_first", start=0.2)
    run(model, steps[1])
    assert all(score is not None for score in layer_scores(model).values())
    run(model, steps[0])  # progress 0.1: before the window
    scores = layer_scores(model)
    assert scores and all(score is None for score in scores.values())
