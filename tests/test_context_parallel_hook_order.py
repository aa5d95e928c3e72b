"""Enhance-A-Video applied before ``enable_parallelism``, in one process: diffusers then registers
its context-parallel input split (``cp_input---<module>``) outermost on the transformer, around
our transformer hook, which must still read the whole forward (hook_chain.move_outside). A
stand-in split hook records, when it runs, whether our hook has already begun the forward; the
real split under Ulysses and Ring is in test_context_parallel.py.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from diffusers.hooks import HookRegistry, ModelHook  # noqa: E402

from adapters_tiny_base import enhance_config, gen, one_thread, run  # noqa: E402,F401
from adapters_tiny_models import CASES  # noqa: E402
from eav_kernels import apply_enhance_a_video, remove_enhance_a_video  # noqa: E402
from eav_kernels.adapters.hooks import TRANSFORMER_HOOK  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

CASE = CASES["wan"]
BATCH = 2
SPLIT = "cp_input---"  # diffusers' name for the split on the transformer itself ("" in a plan)


class CountingHook(ModelHook):
    """A pass-through hook with its own forward (as diffusers' caches have): counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def new_forward(self, module, *args, **kwargs):
        self.calls += 1
        return self.fn_ref.original_forward(*args, **kwargs)


class StandInSplitHook(ModelHook):
    """Registered under diffusers' split name; records the batch Enhance-A-Video's forward context
    holds when it runs (``None``: our hook had not begun this forward)."""

    def __init__(self, context):
        super().__init__()
        self.context, self.seen_batch_sizes = context, []

    def pre_forward(self, module, *args, **kwargs):
        self.seen_batch_sizes.append(self.context.batch_size)
        return args, kwargs


def _hooked_model():
    """Tiny Wan enhanced, then a counting hook and the stand-in split registered after it (the
    order ``enable_parallelism`` after ``apply_enhance_a_video`` gives)."""
    model = CASE.build()
    apply_enhance_a_video(model, enhance_config(4.0))
    registry = HookRegistry.check_if_exists_or_initialize(model)
    context = registry.get_hook(TRANSFORMER_HOOK).context
    counting, split = CountingHook(), StandInSplitHook(context)
    registry.register_hook(counting, "counting")
    registry.register_hook(split, SPLIT)
    context.batch_size = None  # no forward begun yet
    return model, registry, counting, split


def test_a_split_registered_later_runs_inside_the_transformer_hook_from_the_first_forward():
    model, registry, counting, split = _hooked_model()
    assert registry._hook_order == [TRANSFORMER_HOOK, "counting", SPLIT]
    inputs = CASE.inputs(BATCH, gen(5))
    enhanced = run(model, inputs)
    assert split.seen_batch_sizes == [BATCH]  # our hook read the forward before the split ran
    assert registry._hook_order == ["counting", SPLIT, TRANSFORMER_HOOK]  # the others keep their order
    assert counting.calls == 1
    run(model, inputs)
    assert split.seen_batch_sizes == [BATCH, BATCH] and counting.calls == 2

    reference = CASE.build()
    apply_enhance_a_video(reference, enhance_config(4.0))
    assert torch.equal(enhanced, run(reference, inputs))  # the pass-through hooks change nothing


def test_removal_after_the_move_leaves_the_other_hooks_working():
    model, registry, counting, split = _hooked_model()
    inputs = CASE.inputs(BATCH, gen(5))
    run(model, inputs)  # moves our hook outermost
    remove_enhance_a_video(model)
    assert registry._hook_order == ["counting", SPLIT]
    assert not model._forward_pre_hooks  # the placement guard went with the hook
    plain = run(model, inputs)
    assert counting.calls == 2 and len(split.seen_batch_sizes) == 2
    assert torch.equal(plain, run(CASE.build(), inputs))
