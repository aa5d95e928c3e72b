"""``ForwardContext``: what one model forward tells the enhanced layers inside it.

Each enhanced model owns one context, shared by its layers (no module-level state: two models
carry two contexts). A front-end calls ``begin`` at the start of every model forward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .calls import AttentionReader, attention_readers
from .spec import AdapterSpec
from .taps import install_taps


@dataclass
class ForwardContext:
    """Per-model state of the current forward. Kept after the forward returns, so
    activation-checkpointing recomputation sees the same values.

    Attributes:
        num_frames: the latent frame count of this forward (``None`` when the spec reads it per
            layer call, ``num_frames_from="layer"``).
        batch_size: the model batch (``per_sample`` scores fold back to it).
        active: whether this forward is inside the config's denoising window.
        video_tokens: the generated video tokens of each targeted layer's input (the spec's
            ``video_tokens``); ``None``: every token of it.
        readers: ``{callable: reader}`` of the attention functions and ops registered now.
        layer_modules: the modules defining the enhanced layers' classes (for taps).
    """

    num_frames: int | None = None
    batch_size: int | None = None
    active: bool = False
    video_tokens: int | None = None
    readers: dict[Any, AttentionReader] = field(default_factory=attention_readers)
    layer_modules: tuple[str, ...] = ()

    @classmethod
    def for_layers(cls, layers: list[tuple[str, torch.nn.Module]]) -> "ForwardContext":
        """The context of a model whose ``(name, module)`` layers are enhanced; taps the
        attention functions those layers can reach (taps.py)."""
        context = cls(layer_modules=tuple(dict.fromkeys(type(layer).__module__ for _, layer in layers)))
        install_taps(context.layer_modules)
        return context

    def begin(self, model: torch.nn.Module, spec: AdapterSpec, config: Any,
              arguments: Mapping[str, Any]) -> None:
        """Read this forward's batch, frame count, generated video tokens and denoising progress
        off the model's bound forward ``arguments``; record the forward if the config carries a
        recorder. A forward the spec leaves untouched (``forward_untouched``) only makes the
        context inactive: nothing is read or recorded and its layers run as they are. Raises
        ``TypeError`` for a forward the spec refuses (``forward_refusal``) and ``ValueError`` for a
        window the spec cannot read (``window_refusal``)."""
        refusal = spec.forward_refusal(model, arguments) if spec.forward_refusal is not None else None
        if refusal is not None:
            raise TypeError(f"Enhance-A-Video cannot enhance this {type(model).__name__} forward: {refusal}")
        if spec.forward_untouched is not None and spec.forward_untouched(model, arguments):
            self.active = False  # not a denoising pass of the generated video
            return
        if not torch.compiler.is_compiling():
            # attention libraries imported or backends registered since the last forward
            install_taps(self.layer_modules)
            self.readers = attention_readers()
        # The whole schedule (the default window) needs no timestep: reading one costs a host
        # sync (.item()), which would break a torch.compile graph and a CUDA graph capture.
        whole_schedule = config.start == 0.0 and config.end == 1.0
        if not whole_schedule and spec.window_refusal is not None:
            raise ValueError(
                f"the window start={config.start}, end={config.end} cannot be read off "
                f"{type(model).__name__}'s timestep: {spec.window_refusal}"
            )
        progress = None if whole_schedule else denoising_progress(
            arguments.get("timestep"), spec.timestep_rises, config.num_train_timesteps
        )
        self.active = config.is_active_at(progress)
        if spec.video_input not in arguments:
            raise ValueError(
                f"{spec.model}: the forward has no argument {spec.video_input!r} (the spec's "
                f"video_input); it got {sorted(arguments)}"
            )
        latents = arguments[spec.video_input]  # [B, ...], or a list of B per-sample latents
        self.batch_size = len(latents) if isinstance(latents, (list, tuple)) else latents.shape[0]
        self.num_frames = spec.num_frames(model, arguments) if spec.num_frames_from == "model" else None
        self.video_tokens = spec.video_tokens(model, arguments) if spec.video_tokens is not None else None
        if config.recorder is not None:
            config.recorder.begin_forward(arguments.get("timestep"), self.num_frames)


def denoising_progress(timestep: torch.Tensor | float | None, timestep_rises: bool,
                       num_train_timesteps: float) -> float | None:
    """Denoising progress in [0, 1] (0 = pure noise) of a ``timestep`` (scalar, ``[B]`` or
    ``[B, N]`` per token: the noisiest entry sets the schedule position)."""
    if timestep is None:
        return None
    timestep = torch.as_tensor(timestep)
    noise_level = (timestep.min() if timestep_rises else timestep.max()).item()
    fraction = noise_level / num_train_timesteps
    return fraction if timestep_rises else 1.0 - fraction


def bound_arguments(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    """``{parameter name: value}`` of one call, with ``**kwargs`` entries spread in (a layer
    whose forward takes ``**kwargs`` still shows ``frame=`` as ``"frame"``)."""
    arguments = dict(signature.bind_partial(*args, **kwargs).arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
    return arguments
