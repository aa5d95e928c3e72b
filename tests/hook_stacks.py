"""Enhance-A-Video stacked with another diffusers hook on a tiny model, and the reference the
stack must equal: what tests/test_hook_composition*.py share.

``denoise`` runs a few denoising steps (one forward each, inside ``cache_context`` with the step,
sigma and step count that diffusers' caches read). ``reference_step`` computes the independent
reference (``reference_output``); with ``inside_hooks`` it sits directly around each enhanced
layer's own forward, inside the hooks applied to the layer later (``InnerReference``), which is
where the defined semantics puts the enhancement: a cache on an attention layer stores, reuses
and extrapolates enhanced outputs.
"""

from __future__ import annotations

from typing import Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook

from adapters_tiny_base import ModelCase, enhance_config, gen
from adapters_tiny_models import attention_layer_names, reference_output, run
from eav_kernels import apply_enhance_a_video

TIMESTEPS = (900.0, 700.0, 500.0, 300.0)
WEIGHT = 4.0
ORDERS = ("eav_first", "hook_first")


def step_inputs(case: ModelCase, batch_size: int = 1, steps: int = len(TIMESTEPS)) -> list[dict]:
    """One forward's inputs per denoising step, fresh random latents each step."""
    return [case.inputs(batch_size, gen(40 + step), timestep=t) for step, t in enumerate(TIMESTEPS[:steps])]


def denoise(model, steps: list[dict], clock: list[float], run_step=run) -> list[torch.Tensor]:
    """``run_step(model, inputs)`` for each step inside the model's ``cache_context`` (which
    diffusers' caches require), with ``clock[0]`` set to the step's timestep."""
    outputs = []
    for index, inputs in enumerate(steps):
        clock[0] = float(inputs["timestep"][0])
        with model.cache_context("cond", step_index=index, sigma=clock[0] / 1000, num_inference_steps=len(steps)):
            outputs.append(run_step(model, inputs))
    return outputs


def stack(case: ModelCase, apply_hook: Callable, order: str, placement: str = "to_out", **fields):
    """A tiny ``case`` model with Enhance-A-Video (``placement``, other config ``fields``) and
    ``apply_hook`` applied in ``order``."""
    model = case.build()
    config = enhance_config(WEIGHT, placement=placement, **fields)
    if order == "eav_first":
        apply_enhance_a_video(model, config)
        apply_hook(model)
    else:
        apply_hook(model)
        apply_enhance_a_video(model, config)
    return model


class InnerReference(ModelHook):
    """Registered on a layer before any other hook: runs the reference's pre and post hooks
    directly around the layer's own forward, so that hooks registered later wrap the reference."""

    def __init__(self):
        super().__init__()
        self.pre_hooks, self.post_hooks = [], []

    def new_forward(self, module, *args, **kwargs):
        for pre_hook in self.pre_hooks:
            pre_hook(module, args, kwargs)
        output = self.fn_ref.original_forward(*args, **kwargs)
        for post_hook in self.post_hooks:
            replaced = post_hook(module, args, kwargs, output)
            output = output if replaced is None else replaced
        return output

    def hook_layer(self, pre_hook, post_hook) -> list:
        self.pre_hooks.append(pre_hook)
        self.post_hooks.append(post_hook)
        return [_Removal(self.pre_hooks, pre_hook), _Removal(self.post_hooks, post_hook)]


class _Removal:
    def __init__(self, hooks: list, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        self.hooks.remove(self.hook)


def reference_model(case: ModelCase, apply_hook: Callable, inside_hooks: bool):
    """A fresh ``case`` model with ``apply_hook`` applied, ``InnerReference`` under it when
    ``inside_hooks``."""
    model = case.build()
    if inside_hooks:
        for name in attention_layer_names(model, case):
            HookRegistry.check_if_exists_or_initialize(model.get_submodule(name)).register_hook(
                InnerReference(), "inner_reference"
            )
    apply_hook(model)
    return model


def reference_step(case: ModelCase, placement: str = "to_out", inside_hooks: bool = False):
    """``run_step`` computing the independent reference of Enhance-A-Video on every layer."""
    def hook_layer(module, pre_hook, post_hook):
        return module._diffusers_hook.get_hook("inner_reference").hook_layer(pre_hook, post_hook)

    def run_step(model, inputs):
        weights = {name: WEIGHT for name in attention_layer_names(model, case)}
        if inside_hooks:
            return reference_output(model, case, inputs, weights, placement=placement, hook_layer=hook_layer)
        return reference_output(model, case, inputs, weights, placement=placement)
    return run_step
