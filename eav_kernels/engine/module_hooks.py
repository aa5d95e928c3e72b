"""The plain-PyTorch front-end: Enhance-A-Video on any ``torch.nn.Module``, needing only torch.

    import eav_kernels as eav
    from eav_kernels.engine import OPEN_SORA_V1_2

    eav.enhance_module(model, OPEN_SORA_V1_2, eav.EnhanceAVideoConfig(enhance_weight=4.0))
    ...                                   # sample as usual
    eav.remove_enhancement(model)         # back to the original model, bit for bit

The model and each enhanced layer get an instance ``forward`` that calls the one they had
(the class's, or whatever another library installed before), so ordinary forward hooks, other
wrappers installed earlier and ``state_dict`` are untouched. A residual branch (``spec.
residual_branch``) gets a forward hook. Everything lives on the modules themselves (no
module-level state): two models carry two configs.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from .forward_context import ForwardContext, bound_arguments
from .layer import LayerEnhancement
from .spec import AdapterSpec

_STATE = "_enhance_a_video"  # the attribute holding a module's EnhancedForward


class EnhancedForward:
    """An instance ``forward``: ``run(previous_forward, args, kwargs)``.

    ``previous`` is the instance ``forward`` it replaced (``None``: the class's own), restored
    by ``remove_enhancement``; ``extra_handles`` are hooks removed with it."""

    def __init__(self, module: torch.nn.Module, run: Callable[[Callable, tuple, dict], Any]):
        self.previous = module.__dict__.get("forward")
        self.wrapped = module.forward  # bound: the forward this one calls
        self.run = run
        self.extra_handles: list[torch.utils.hooks.RemovableHandle] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(self.wrapped, args, kwargs)


def enhance_module(model: torch.nn.Module, spec: AdapterSpec, config: Any) -> None:
    """Enable Enhance-A-Video on ``model`` (any ``torch.nn.Module``), in place.

    ``spec``: how the model is laid out (``eav_kernels.AdapterSpec``; presets in
    ``eav_kernels.engine.seed_models``); ``config``: an ``EnhanceAVideoConfig``.
    Raises ``TypeError`` when ``spec`` is for another class, ``ValueError`` when it matches no
    layer or the config selects none, ``RuntimeError`` if already enhanced. Undo with
    ``remove_enhancement``.
    """
    if not spec.matches(model):
        raise TypeError(f"the spec is for {spec.model}, not for this {type(model).__name__}")
    if _STATE in model.__dict__:
        raise RuntimeError("Enhance-A-Video is already enabled on this model; remove it first")
    layers = spec.targeted_layers(model)
    weights = config.layer_weights([name for name, _ in layers])
    context = ForwardContext.for_layers(layers)
    for name, layer in layers:
        if name not in weights:
            continue
        enhancement = LayerEnhancement(name, layer, spec, config, weights[name], context)
        forward = _install(layer, _layer_runner(layer, enhancement))
        if spec.residual_branch is not None:
            branch = model.get_submodule(name.rpartition(".")[0]).get_submodule(spec.residual_branch)
            forward.extra_handles.append(branch.register_forward_hook(
                lambda module, args, output, enhancement=enhancement: enhancement.residual_output(output)
            ))
    signature = inspect.signature(model.forward)

    def run_model(model_forward: Callable, args: tuple, kwargs: dict) -> Any:
        context.begin(model, spec, config, bound_arguments(signature, args, kwargs))
        return model_forward(*args, **kwargs)

    _install(model, run_model)


def remove_enhancement(model: torch.nn.Module) -> None:
    """Remove Enhance-A-Video from ``model`` and its layers: it computes exactly as before.

    Raises ``RuntimeError`` (changing nothing) when another wrapper was installed over an
    enhanced ``forward`` after it: that wrapper would keep calling the enhancement."""
    enhanced = [module for module in model.modules() if _STATE in module.__dict__]
    for module in enhanced:
        if module.__dict__.get("forward") is not module.__dict__[_STATE]:
            raise RuntimeError(
                f"the forward of {type(module).__name__} was wrapped again after "
                "Enhance-A-Video; remove that wrapper first"
            )
    for module in enhanced:
        forward = module.__dict__.pop(_STATE)
        for handle in forward.extra_handles:
            handle.remove()
        if forward.previous is None:
            del module.forward
        else:
            module.forward = forward.previous


def is_enhanced(model: torch.nn.Module) -> bool:
    """Whether ``enhance_module`` is in effect on ``model``."""
    return _STATE in model.__dict__


def _install(module: torch.nn.Module, run: Callable[[Callable, tuple, dict], Any]) -> EnhancedForward:
    forward = EnhancedForward(module, run)
    module.forward = forward
    module.__dict__[_STATE] = forward
    return forward


def _layer_runner(layer: torch.nn.Module, enhancement: LayerEnhancement):
    def run_layer(layer_forward: Callable, args: tuple, kwargs: dict) -> Any:
        return enhancement.forward(layer, layer_forward, args, kwargs)

    return run_layer

