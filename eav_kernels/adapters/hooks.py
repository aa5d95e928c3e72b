"""The diffusers front-end: ``ModelHook``s that put the engine (``eav_kernels.engine``) on any
``AdapterSpec``-described transformer.

Three hooks, all registered in diffusers' own ``HookRegistry`` (so they stack with
``apply_first_block_cache`` & co. and come off cleanly), the first two innermost on their module
whatever was registered before (``hook_chain.py``: the result does not depend on the order):

- ``EnhanceAVideoTransformerHook`` on the transformer: reads this forward's latent frame count,
  batch size, generated video tokens and denoising progress into the engine's
  ``ForwardContext`` (which raises for a forward or window the spec refuses), shared with the
  layer hooks of the same model (no module-level state: two models carry two contexts).
- ``EnhanceAVideoAttentionHook`` on each selected self-attention layer: runs the layer through
  the engine's ``LayerEnhancement``, which captures q and k exactly as handed to attention
  (after QK-norm and RoPE) by whatever computes it: torch SDPA, the aten attention ops, any
  backend of diffusers' attention dispatcher (``set_attention_backend("flex")``, ``"flash"``,
  ``"sage"``, ``"xformers"``, one a third party registered), flash-attn / xformers /
  SageAttention called directly, or a hand-written softmax; and scales the video rows at the
  configured placement.
- ``EnhanceAVideoResidualHook`` where a spec names a ``residual_branch`` (Mochi's ``norm2``):
  scales that module's output with the score its layer just computed.

Under diffusers context parallelism (``enable_parallelism(config=ContextParallelConfig(...))``)
each attention call sees a shard; ``context_parallel.py`` locates the video rows in it and
all-reduces the partial sums over the CP group, so every rank applies the exact single-process
score. Dispatcher backends then run untapped and their sharded attention calls are captured.
"""

from __future__ import annotations

import functools
import inspect

import torch
from diffusers.hooks import HookRegistry, ModelHook

from ..engine.forward_context import ForwardContext, bound_arguments
from ..engine.layer import LayerEnhancement
from .config import EnhanceAVideoConfig
from .context_parallel import context_parallel_layout, global_cross_frame_intensity
from .hook_chain import move_outside, register_innermost, remove_keeping_outer_hooks
from .models import REFUSED_MODELS, SUPPORTED_MODELS
from .spec import AdapterSpec, find_spec

TRANSFORMER_HOOK = "enhance_a_video"
ATTENTION_HOOK = "enhance_a_video_attention"
RESIDUAL_HOOK = "enhance_a_video_residual"
_HOOK_NAMES = (TRANSFORMER_HOOK, ATTENTION_HOOK, RESIDUAL_HOOK)
# the name prefixes of diffusers' context-parallel input split and output gather hooks
# (hooks/context_parallel.py: "cp_input---{module}", "cp_output---{module}")
_CONTEXT_PARALLEL_HOOKS = ("cp_input---", "cp_output---")
# diffusers' hook that hands the model half of a CFG batch (hooks/faster_cache.py)
_BATCH_HALVING_HOOK = "faster_cache_denoiser"


class EnhanceAVideoTransformerHook(ModelHook):
    """Reads ``num_frames``, the batch size, the generated video tokens and the denoising window
    off each model forward (``ForwardContext.begin``), outside context parallelism's input split
    whenever that was registered: a torch forward pre-hook, which runs before diffusers' hook
    chain, re-seats this hook outside a split that ``enable_parallelism`` added after it
    (``hook_chain.move_outside``)."""

    def __init__(self, spec: AdapterSpec, config: EnhanceAVideoConfig, context: ForwardContext,
                 forward_signature: inspect.Signature):
        super().__init__()
        self.spec, self.config, self.context = spec, config, context
        self._forward_signature = forward_signature
        self._placement_guard: torch.utils.hooks.RemovableHandle | None = None

    def initialize_hook(self, module: torch.nn.Module) -> torch.nn.Module:
        self._placement_guard = module.register_forward_pre_hook(_stay_outside_context_parallel_split)
        return module

    def deinitalize_hook(self, module: torch.nn.Module) -> torch.nn.Module:  # diffusers' spelling
        self._placement_guard.remove()
        return module

    def pre_forward(self, module: torch.nn.Module, *args, **kwargs):
        if self.config.per_sample:
            _refuse_batch_halving_inside(module._diffusers_hook)
        arguments = bound_arguments(self._forward_signature, args, kwargs)
        self.context.begin(module, self.spec, self.config, arguments)
        return args, kwargs


def _stay_outside_context_parallel_split(module: torch.nn.Module, args: tuple) -> None:
    """Forward pre-hook of an enhanced transformer: diffusers' hook chain has not run yet."""
    move_outside(module._diffusers_hook, TRANSFORMER_HOOK, _CONTEXT_PARALLEL_HOOKS)


def _refuse_batch_halving_inside(registry: HookRegistry) -> None:
    """Raise if FasterCache's denoiser hook sits inside the transformer hook: FasterCache applied
    before ``enable_parallelism`` sits inside the split, and the transformer hook outside it;
    ``per_sample`` scores would fold the CFG batch FasterCache halves."""
    order = registry._hook_order  # innermost first
    if _BATCH_HALVING_HOOK in order and order.index(_BATCH_HALVING_HOOK) < order.index(TRANSFORMER_HOOK):
        raise ValueError(
            "Enhance-A-Video with per_sample=True does not support FasterCache applied before "
            "enable_parallelism: FasterCache's denoiser hook then sits inside context parallelism's "
            "input split, and Enhance-A-Video's transformer hook outside it, where it cannot see the "
            f"batch FasterCache halves (hooks, innermost first: {order}). Apply FasterCache after "
            "enable_parallelism, or use per_sample=False. See docs/multi_gpu.md"
        )


class EnhanceAVideoAttentionHook(ModelHook):
    """Enhance-A-Video on one self-attention layer: the engine's ``LayerEnhancement``."""

    def __init__(self, enhancement: LayerEnhancement):
        super().__init__()
        self.enhancement = enhancement

    @property
    def last_score(self) -> torch.Tensor | None:
        """0-d or ``[B]``: the score of the layer's latest call."""
        return self.enhancement.last_score

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        # diffusers context parallelism (ContextParallelConfig): each rank's attention call sees a
        # shard (Ulysses: a subset of heads; Ring: a token shard); partial sums are all-reduced
        # over the CP group so every rank applies the same, exact score (context_parallel.py).
        layout = context_parallel_layout(
            getattr(getattr(module, "processor", None), "_parallel_config", None), self.enhancement.name
        )
        sharded = None if layout is None else functools.partial(
            global_cross_frame_intensity, layout, self.enhancement.spec
        )
        return self.enhancement.forward(module, self.fn_ref.original_forward, args, kwargs, sharded)


class EnhanceAVideoResidualHook(ModelHook):
    """Scales a residual-branch module's output (``[B, N_layer, C]``: its generated video rows) by
    its layer's score."""

    def __init__(self, enhancement: LayerEnhancement):
        super().__init__()
        self.enhancement = enhancement

    def post_forward(self, module: torch.nn.Module, output: torch.Tensor) -> torch.Tensor:
        return self.enhancement.residual_output(output)


def apply_enhance_a_video(transformer: torch.nn.Module, config: EnhanceAVideoConfig) -> None:
    """Enable Enhance-A-Video on a diffusers video model, in place.

    ``transformer``: one of the supported diffusers video models (``SUPPORTED_MODELS``).
    Raises ``TypeError`` for a refused model (with the reason, ``REFUSED_MODELS``) or an
    unsupported one (listing the supported ones), ``ValueError`` if the adapter finds no layer or
    the config selects none, and ``RuntimeError`` if already applied.
    Undo with ``remove_enhance_a_video``.
    """
    spec = find_spec(transformer, SUPPORTED_MODELS, REFUSED_MODELS)
    layers = spec.targeted_layers(transformer)
    weights = config.layer_weights([name for name, _ in layers])
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    if registry.get_hook(TRANSFORMER_HOOK) is not None:
        raise RuntimeError("Enhance-A-Video is already applied to this transformer; remove it first")
    context = ForwardContext.for_layers(layers)
    forward_signature = inspect.signature(transformer.forward)
    for name, layer in layers:
        if name not in weights:
            continue
        enhancement = LayerEnhancement(name, layer, spec, config, weights[name], context)
        register_innermost(  # other hooks on the layer see the enhanced layer (hook_chain.py)
            HookRegistry.check_if_exists_or_initialize(layer), EnhanceAVideoAttentionHook(enhancement), ATTENTION_HOOK
        )
        if spec.residual_branch is not None:
            block = transformer.get_submodule(name.rpartition(".")[0])
            branch = block.get_submodule(spec.residual_branch)
            HookRegistry.check_if_exists_or_initialize(branch).register_hook(
                EnhanceAVideoResidualHook(enhancement), RESIDUAL_HOOK
            )
    register_innermost(  # it reads the forward the model computes: after FasterCache halves a CFG batch
        registry, EnhanceAVideoTransformerHook(spec, config, context, forward_signature), TRANSFORMER_HOOK,
        outside_of=_CONTEXT_PARALLEL_HOOKS,  # but the whole forward, not this rank's shard
    )
    registry.invalidate_child_registries_cache()


def remove_enhance_a_video(transformer: torch.nn.Module) -> None:
    """Remove every Enhance-A-Video hook from ``transformer``: it computes exactly as before.
    Registries left empty are deleted and ``forward`` restored to the class method."""
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is None:
            continue
        for name in _HOOK_NAMES:
            remove_keeping_outer_hooks(registry, name)
        if not registry.hooks:
            del module._diffusers_hook
            _restore_class_forward(module)
    registry = getattr(transformer, "_diffusers_hook", None)
    if registry is not None:
        registry.invalidate_child_registries_cache()


def _restore_class_forward(module: torch.nn.Module) -> None:
    """Drop an instance ``forward`` that is just the class's own bound ``forward``."""
    forward = module.__dict__.get("forward")
    if getattr(forward, "__self__", None) is module and getattr(forward, "__func__", None) is type(module).forward:
        del module.forward
