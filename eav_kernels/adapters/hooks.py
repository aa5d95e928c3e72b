"""The shared machinery: diffusers ``ModelHook``s that add Enhance-A-Video to any ``AdapterSpec``.

Three hooks, all registered in diffusers' own ``HookRegistry`` (so they stack with
``apply_first_block_cache`` & co. and come off cleanly):

- ``EnhanceAVideoTransformerHook`` on the transformer: reads this forward's latent frame count,
  batch size and denoising progress into a ``ForwardContext`` shared with the layer hooks of the
  same model (no module-level state: two models carry two contexts).
- ``EnhanceAVideoAttentionHook`` on each selected self-attention layer: runs the layer under an
  ``AttentionCapture`` (a ``TorchFunctionMode`` live only during that layer's forward), which sees
  the layer's own ``scaled_dot_product_attention`` call(s) with q/k exactly as handed to attention
  (after QK-norm and RoPE), runs each through the dispatch core that ``enhanced_sdpa`` uses (the
  attention output and the cross-frame intensity of the video tokens), and, for
  ``placement="attention_output"``, scales the video rows of the attention output. For
  ``placement="to_out"`` the hook scales the layer's video output after the output projection.
- ``EnhanceAVideoResidualHook`` where a spec names a ``residual_branch`` (Mochi's ``norm2``):
  scales that module's output with the score its layer just computed.

Why a ``TorchFunctionMode`` and not a wrapped processor: processors differ per model (CogVideoX
calls ``F.scaled_dot_product_attention`` on ``[B, H, N, D]``, Wan/LTX/HunyuanVideo go through
``dispatch_attention_fn`` on ``[B, N, H, D]``, Mochi loops over the batch); all of them end in
``F.scaled_dot_product_attention`` on ``[B, H, N, D]`` with the native backend, and a mode scoped
to one layer's forward intercepts exactly that call without copying or replacing any processor
and without patching any module attribute. diffusers' other torch-native backends call the aten
attention ops (``_scaled_dot_product_flash_attention`` & co.) on the same layout; those are seen
too. A layer that makes no such call (flash-attn, sage, xformers backends) raises instead of
silently running unenhanced.

Under diffusers context parallelism (``enable_parallelism(config=ContextParallelConfig(...))``)
each call sees a shard; ``context_parallel.py`` locates the video rows in it and all-reduces the
partial sums over the CP group, so every rank applies the exact single-process score.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.hooks import HookRegistry, ModelHook
from torch.overrides import TorchFunctionMode

from ..api import cross_frame_intensity, enhance_score, scale_video_tokens
from ..dispatch import attention_with_cross_frame_intensity
from ..problem import attention_problem
from .config import EnhanceAVideoConfig
from .context_parallel import ContextParallelLayout, context_parallel_layout, global_cross_frame_intensity
from .models import REFUSED_MODELS, SUPPORTED_MODELS
from .spec import AdapterSpec, find_spec

TRANSFORMER_HOOK = "enhance_a_video"
ATTENTION_HOOK = "enhance_a_video_attention"
RESIDUAL_HOOK = "enhance_a_video_residual"
_HOOK_NAMES = (TRANSFORMER_HOOK, ATTENTION_HOOK, RESIDUAL_HOOK)

# What diffusers' other torch-native backends call (_native_flash, _native_cudnn, _native_efficient;
# the first two also serve Ring attention, which needs each call's LSE): q and k are the first two
# arguments, [B, H, N, D], and ``scale`` a keyword, like SDPA's.
_ATEN_ATTENTION_OPS = frozenset(
    op
    for name in ("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
                 "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_efficient_attention")
    if hasattr(torch.ops.aten, name)
    for op in (getattr(torch.ops.aten, name), getattr(torch.ops.aten, name).default)
)

_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


@dataclass
class ForwardContext:
    """What the transformer's current forward tells its layer hooks. Kept after the forward
    returns, so activation-checkpointing recomputation sees the same values."""

    num_frames: int | None = None
    batch_size: int | None = None
    active: bool = False
    video_tokens: int | None = None  # generated video tokens per layer input; None: all of them


class EnhanceAVideoTransformerHook(ModelHook):
    """Reads ``num_frames``, the batch size and the denoising window off each transformer forward."""

    def __init__(self, spec: AdapterSpec, config: EnhanceAVideoConfig, context: ForwardContext,
                 forward_signature: inspect.Signature):
        super().__init__()
        self.spec, self.config, self.context = spec, config, context
        self._forward_signature = forward_signature

    def pre_forward(self, module: torch.nn.Module, *args, **kwargs):
        arguments = self._forward_signature.bind_partial(*args, **kwargs).arguments
        refusal = self.spec.forward_refusal(module, arguments) if self.spec.forward_refusal else None
        if refusal is not None:
            raise TypeError(f"Enhance-A-Video cannot enhance this {type(module).__name__} forward: {refusal}")
        # The whole schedule (the default window) needs no timestep: reading one costs a host
        # sync (.item()), which would break a torch.compile graph and a CUDA graph capture.
        whole_schedule = self.config.start == 0.0 and self.config.end == 1.0
        if not whole_schedule and self.spec.window_refusal is not None:
            raise ValueError(
                f"the window start={self.config.start}, end={self.config.end} cannot be read off "
                f"{type(module).__name__}'s timestep: {self.spec.window_refusal}"
            )
        progress = None if whole_schedule else self._progress(arguments.get("timestep"))
        self.context.active = self.config.is_active_at(progress)
        self.context.num_frames = self.spec.num_frames(module, arguments)
        self.context.batch_size = arguments[self.spec.latent_argument].shape[0]
        self.context.video_tokens = self.spec.video_tokens(module, arguments) if self.spec.video_tokens else None
        if self.config.recorder is not None:
            self.config.recorder.begin_forward(arguments.get("timestep"), self.context.num_frames)
        return args, kwargs

    def _progress(self, timestep: torch.Tensor | float | None) -> float | None:
        """Denoising progress in [0, 1] (0 = pure noise) of a ``timestep`` (scalar, ``[B]`` or
        ``[B, N]`` per token: the noisiest entry sets the schedule position)."""
        if timestep is None:
            return None
        timestep = torch.as_tensor(timestep)
        noise_level = (timestep.min() if self.spec.timestep_rises else timestep.max()).item()
        fraction = noise_level / self.config.num_train_timesteps
        return fraction if self.spec.timestep_rises else 1.0 - fraction


class AttentionCapture(TorchFunctionMode):
    """Live during one layer's forward: sees its ``F.scaled_dot_product_attention`` calls.

    Each call's per-sample CFI of the video tokens is collected (a layer may make several calls:
    Mochi makes one per batch element). An SDPA call is run by the dispatch core
    (``eav_kernels.dispatch``), which computes its output and CFI together, with the fused
    temporal kernel for a pure temporal call where a backend has one. With ``score_in_call`` the
    call's own score multiplies the video rows of its output (``placement="attention_output"``);
    otherwise the output is returned unscaled and the layer hook scales the layer's output.
    """

    def __init__(self, hook: "EnhanceAVideoAttentionHook", video_token_count: int, score_in_call: bool,
                 layout: ContextParallelLayout | None = None):
        super().__init__()
        self.hook = hook
        self.video_token_count = video_token_count  # this rank's shard under context parallelism
        self.score_in_call = score_in_call
        self.layout = layout
        self.calls = 0
        self.cross_frame_intensities: list[torch.Tensor] = []  # one [B_call] per call
        self.last_cfi: torch.Tensor | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention and func not in _ATEN_ATTENTION_OPS:
            if _is_python_tensor_method(func) and args and isinstance(args[0], torch.Tensor):
                # A Tensor method written in Python (torch/_tensor.py, e.g. Tensor.unflatten,
                # whose body ends in `super().unflatten(...)`) is called as the method it is, as
                # the layer wrote it: same result, and torch.compile traces it as a tensor method
                # (dynamo cannot trace that `super()` call when inlining the function itself).
                return getattr(args[0], func.__name__)(*args[1:], **kwargs)
            return func(*args, **kwargs)
        call_index, self.calls = self.calls, self.calls + 1
        if func is F.scaled_dot_product_attention and self.layout is None:
            out, cfi, video_rows = self._attention_with_cross_frame_intensity(args, kwargs)
        else:
            cfi, video_rows = self._cross_frame_intensity_of(func, args, kwargs, call_index)
            out = func(*args, **kwargs)  # [B, H, N, Dv], or a tuple starting with it
        if cfi is not None:
            self.cross_frame_intensities.append(cfi)
            self.last_cfi = cfi
        context = self.hook.context
        if self.score_in_call:
            # one call holds the whole model batch here (B, or Latte's B * S temporal sequences).
            # Ring: every step's partial output gets the same score; the ring's merge of the
            # steps is an affine combination, so the merged output is scaled by it too.
            score = self.hook.score_from(self.last_cfi, batch_size=context.batch_size)
            attention = out[0] if isinstance(out, tuple) else out
            for video in video_rows:
                attention = scale_video_tokens(
                    attention, self.hook.expand_to_batch(score, attention.shape[0]), video,
                    token_dim=2, inplace=not attention.requires_grad,
                )
            out = (attention,) + tuple(out[1:]) if isinstance(out, tuple) else attention
        return out


    def _attention_with_cross_frame_intensity(
        self, args: tuple, kwargs: dict
    ) -> tuple[torch.Tensor, torch.Tensor, list[slice]]:
        """One ``F.scaled_dot_product_attention`` call through the dispatch core: ``(out
        [B, H, N, Dv] unscaled, cfi [B] float32, [video rows])``. A pure temporal call (Latte's
        temporal blocks) runs the fused temporal kernel wherever a backend has one."""
        call = dict(zip(_SDPA_PARAMETERS, args), **kwargs)
        query = call["query"]  # [B, H, N, D]
        video = self.hook.spec.attention_rows(query.shape[2], self.video_token_count,
                                              self.hook.context.video_tokens)
        problem = attention_problem(
            query, call["key"], call["value"], call.get("attn_mask"), call.get("dropout_p", 0.0),
            call.get("is_causal", False), call.get("scale"), call.get("enable_gqa", False),
            self.hook.context.num_frames, video,
        )
        out, cfi = attention_with_cross_frame_intensity(problem, self.hook.config.backend)
        return out, cfi, [video]

    def _cross_frame_intensity_of(
        self, func, args: tuple, kwargs: dict, call_index: int
    ) -> tuple[torch.Tensor | None, list[slice]]:
        """``(cfi [B] float32 or None, [video rows])`` of an aten attention op's call (q and k
        are its first two arguments, ``scale`` a keyword), or of an SDPA call under context
        parallelism (its shard; ``None`` when it adds no rows)."""
        if func is F.scaled_dot_product_attention:
            call = dict(zip(_SDPA_PARAMETERS, args), **kwargs)
            query, key, scale = call["query"], call["key"], call.get("scale")  # [B, H, N, D]
        else:
            query, key, scale = args[0], args[1], kwargs.get("scale")
        num_frames, backend = self.hook.context.num_frames, self.hook.config.backend
        with torch.no_grad():
            if self.layout is not None:
                return global_cross_frame_intensity(
                    self.layout, self.hook.spec, call_index, query, key, self.video_token_count,
                    num_frames, scale, backend,
                )
            video = self.hook.spec.attention_rows(query.shape[2], self.video_token_count,
                                                  self.hook.context.video_tokens)
            cfi = cross_frame_intensity(
                query[:, :, video], key[:, :, video], num_frames, scale=scale, per_sample=True,
                backend=backend,
            )
            return cfi, [video]


def _is_python_tensor_method(func) -> bool:
    return isinstance(func, types.FunctionType) and getattr(torch.Tensor, func.__name__, None) is func


class EnhanceAVideoAttentionHook(ModelHook):
    """Enhance-A-Video on one self-attention layer (see the module docstring)."""

    def __init__(self, layer_name: str, spec: AdapterSpec, config: EnhanceAVideoConfig,
                 enhance_weight: float, context: ForwardContext):
        super().__init__()
        self.layer_name, self.spec, self.config, self.context = layer_name, spec, config, context
        self.enhance_weight = enhance_weight
        self.last_score: torch.Tensor | None = None  # 0-d or [B]: the score of the latest call
        self.pending_residual_score: torch.Tensor | None = None  # for the residual-branch hook

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        self.pending_residual_score = None
        if not self.context.active:
            return self.fn_ref.original_forward(*args, **kwargs)
        # diffusers context parallelism (ContextParallelConfig): each rank's attention call sees a
        # shard (Ulysses: a subset of heads; Ring: a token shard); partial sums are all-reduced
        # over the CP group so every rank applies the same, exact score (context_parallel.py).
        layout = context_parallel_layout(
            getattr(getattr(module, "processor", None), "_parallel_config", None), self.layer_name
        )
        hidden_states = args[0] if args else kwargs["hidden_states"]  # [B, N_layer, C]
        generated = self.spec.generated_rows(hidden_states.shape[1], self.context.video_tokens)
        if layout is not None and self.context.video_tokens is not None:
            raise NotImplementedError(
                f"{self.layer_name}: Enhance-A-Video does not support context parallelism on a layer "
                "whose input mixes conditioning tokens with the generated video tokens"
            )
        score_in_call = self.config.placement == "attention_output" and self.spec.residual_branch is None
        capture = AttentionCapture(self, hidden_states.shape[1], score_in_call, layout)
        with capture:
            output = self.fn_ref.original_forward(*args, **kwargs)
        if not capture.cross_frame_intensities:
            raise RuntimeError(
                f"Enhance-A-Video saw no torch.nn.functional.scaled_dot_product_attention call in "
                f"{self.layer_name}: its attention backend bypasses torch SDPA. Use diffusers' "
                "native attention backend for enhanced layers."
            )
        cross_frame_intensities = torch.cat(capture.cross_frame_intensities)
        self.last_score = self.score_from(cross_frame_intensities, batch_size=self.context.batch_size)
        if self.config.recorder is not None:
            self.config.recorder.record_layer(self.layer_name, cross_frame_intensities, self.last_score)
        if score_in_call:
            return output
        if self.spec.residual_branch is not None:
            self.pending_residual_score = self.last_score
            return output
        return _map_video_output(output, lambda video: self.scale_video(video, self.last_score, generated))

    def score_from(self, cross_frame_intensity_per_sequence: torch.Tensor,  # [L] float32
                   batch_size: int) -> torch.Tensor:
        """The score (0-d, or ``[batch_size]`` with ``per_sample``) from the CFIs of ``L``
        attention sequences, ``L`` a multiple of ``batch_size``, batch-major (Latte folds
        ``B * S`` temporal sequences into its batch as ``b * S + s``)."""
        cfi = cross_frame_intensity_per_sequence
        if self.config.per_sample:
            if cfi.shape[0] % batch_size:
                raise ValueError(
                    f"{self.layer_name}: {cfi.shape[0]} attention sequences do not fold into a "
                    f"batch of {batch_size} for per_sample scores"
                )
            cfi = cfi.view(batch_size, -1).mean(dim=1)
        else:
            cfi = cfi.mean()
        return enhance_score(cfi, self.context.num_frames, self.enhance_weight)

    @staticmethod
    def expand_to_batch(score: torch.Tensor, batch_size: int) -> torch.Tensor:
        """``score`` (0-d or ``[B]``) for a tensor whose batch is ``batch_size = B * k``."""
        if score.dim() == 0 or score.shape[0] == batch_size:
            return score
        return score.repeat_interleave(batch_size // score.shape[0])

    def scale_video(self, video: torch.Tensor,  # [B', N_layer, C]
                    score: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``video`` with its generated tokens (``rows``; ``None``: all) times ``score``."""
        return scale_video_tokens(video, self.expand_to_batch(score, video.shape[0]), rows, token_dim=1)


class EnhanceAVideoResidualHook(ModelHook):
    """Scales a residual-branch module's video output (``[B, N_video, C]``) by its layer's score."""

    def __init__(self, attention_hook: EnhanceAVideoAttentionHook):
        super().__init__()
        self.attention_hook = attention_hook

    def post_forward(self, module: torch.nn.Module, output: torch.Tensor) -> torch.Tensor:
        score, self.attention_hook.pending_residual_score = self.attention_hook.pending_residual_score, None
        return output if score is None else self.attention_hook.scale_video(output, score)


def _map_video_output(output: Any, scale_video) -> Any:
    """Apply ``scale_video`` to a layer output: a video tensor, or a ``(video, text)`` tuple."""
    if isinstance(output, tuple):
        return (scale_video(output[0]),) + tuple(output[1:])
    return scale_video(output)


def apply_enhance_a_video(transformer: torch.nn.Module, config: EnhanceAVideoConfig) -> None:
    """Enable Enhance-A-Video on a diffusers video transformer, in place.

    ``transformer``: one of the supported diffusers video models (``SUPPORTED_MODELS``).
    Raises ``TypeError`` for a refused model (with the reason) or an unsupported one (listing the
    supported ones), ``ValueError`` if the adapter finds no layer or the config selects none, and
    ``RuntimeError`` if already applied.
    Undo with ``remove_enhance_a_video``.
    """
    spec = find_spec(transformer, SUPPORTED_MODELS, REFUSED_MODELS)
    layers = spec.targeted_layers(transformer)
    weights = config.layer_weights([name for name, _ in layers])
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    if registry.get_hook(TRANSFORMER_HOOK) is not None:
        raise RuntimeError("Enhance-A-Video is already applied to this transformer; remove it first")
    context = ForwardContext()
    forward_signature = inspect.signature(transformer.forward)
    for name, layer in layers:
        if name not in weights:
            continue
        attention_hook = EnhanceAVideoAttentionHook(name, spec, config, weights[name], context)
        HookRegistry.check_if_exists_or_initialize(layer).register_hook(attention_hook, ATTENTION_HOOK)
        if spec.residual_branch is not None:
            block = transformer.get_submodule(name.rpartition(".")[0])
            branch = block.get_submodule(spec.residual_branch)
            HookRegistry.check_if_exists_or_initialize(branch).register_hook(
                EnhanceAVideoResidualHook(attention_hook), RESIDUAL_HOOK
            )
    registry.register_hook(
        EnhanceAVideoTransformerHook(spec, config, context, forward_signature), TRANSFORMER_HOOK
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
            registry.remove_hook(name, recurse=False)
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
