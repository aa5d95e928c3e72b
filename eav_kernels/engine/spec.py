"""``AdapterSpec``: what the engine needs to know about one video model, host-neutral and public.

A spec is data: which modules are the self-attention layers to enhance, where text tokens sit in
the sequence those layers hand to attention, how to read the latent frame count, and where the
score must go when the plain placement would be erased. A user's own model is one spec away::

    import eav_kernels as eav

    spec = eav.AdapterSpec(
        model="MyVideoDiT",                              # the class name (subclasses match too)
        self_attention=r"blocks\\.\\d+\\.temporal_attn",     # re.fullmatch on named_modules() names
        text=None,                                       # video-only self-attention
        num_frames=lambda model, args: args["x"].shape[2],   # [B, C, F, H, W] -> F latent frames
        video_input="x",                                 # the forward argument holding the latents
    )
    eav.enhance_module(model, spec, eav.EnhanceAVideoConfig(enhance_weight=4.0))

What a targeted layer must look like (checked at run time: a layer that breaks an assumption
raises, it is never silently skipped):

- its first argument (``[B', N_layer, C]``) holds the layer's video tokens: all of them, or
  (``video_tokens`` set) ``N_video`` generated ones with conditioning tokens (history latents,
  appended keyframes) on the side ``conditioning`` names, attended but neither measured nor
  scaled; joint attention layers take their text in another argument;
- the attention it computes sees those tokens **frame-major**, token ``t * S + s`` for frame
  ``t`` and spatial position ``s`` (``S = 1`` for temporal attention over ``[(B S), F, C]``,
  whose batch is then ``B * S`` sequences, batch-major ``b * S + s``), with text before
  (``text="first"``), after (``"last"``) or absent;
- it computes attention with something the engine sees (``eav_kernels.engine.calls``): torch
  SDPA or the aten attention ops, any diffusers attention-dispatcher backend, flash-attn, flex_attention,
  xformers, SageAttention, or a hand-written ``softmax(q kᵀ)``;
- it returns its video output as a tensor ``[B', N_layer, C]``, or as the first element of a
  ``(video, text)`` tuple.

Position-major token orders (token ``s * F + t``, e.g. attention inside ``8 x 8 x F`` windows
flattened with time fastest) are not the method's per-position temporal attention read the
frame-major way: ``token_order`` admits only ``"frame_major"`` and refuses anything else.

A model, or a mode of one, where the method has no clear meaning is refused with the reason: a
whole class through ``find_spec``'s ``refused`` map (the diffusers front-end's
``REFUSED_MODELS``), one forward through ``forward_refusal``, a denoising window other than the
whole schedule through ``window_refusal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

import torch

TextPosition = Literal["first", "last"]
FramesSource = Literal["model", "layer"]
ConditioningSide = Literal["before", "after"]
TOKEN_ORDERS = ("frame_major",)


@dataclass(frozen=True)
class AdapterSpec:
    """How Enhance-A-Video attaches to one video model class.

    Attributes:
        model: the model's class name (subclasses match too).
        self_attention: regex, ``re.fullmatch``-ed against ``named_modules()`` names: the
            self-attention layers to enhance. Cross-attention and text-only layers stay out.
        text: where text tokens sit in the q/k/v the layer hands to attention: ``"first"``,
            ``"last"`` or ``None`` (video only). Text tokens are never scaled.
        num_frames: ``(module, forward_arguments) -> int``: the latent frame count ``F`` of the
            targeted layers' frame-major tokens (after temporal patching). With
            ``num_frames_from="model"`` it gets the model and its forward's arguments (name ->
            value), read once per model forward; with ``"layer"`` the targeted layer and its own
            forward's arguments, read at every layer call (Open-Sora-Plan passes ``frame=``).
        num_frames_from: ``"model"`` (default) or ``"layer"``, see ``num_frames``.
        video_input: the model forward's argument holding the video latents; its first dimension
            (or its length, for a list of per-sample latents) is the batch that ``per_sample``
            scores fold back to.
        residual_branch: ``None``, or the name (relative to the attention layer's parent block)
            of the module whose output is the layer's video branch as added to the residual.
            Set when the block normalises the attention output before the residual add, which
            would erase a scalar applied earlier; the score then goes there for both placements.
        timestep_rises: ``True`` when the model's ``timestep`` grows while denoising.
        token_order: ``"frame_major"``, the only order the method is defined on here (see the
            module docstring); anything else raises ``NotImplementedError``.
        notes: the traps found in this model, for the docs and the next reader.
        video_tokens: ``None`` (every token of a targeted layer's first argument is a generated
            video token), or ``(model, forward_arguments) -> int | None``: how many of them are
            (``None``: all), read once per model forward; the rest are conditioning tokens,
            attended but neither measured nor scaled (Framepack's history latents, LTX-2's
            appended keyframes).
        conditioning: where those conditioning tokens sit in the layer's input: ``"before"``
            (the generated tokens are the last ``video_tokens``) or ``"after"``.
        forward_refusal: ``None``, or ``(model, forward_arguments) -> str | None``: a reason
            this forward cannot be enhanced (a mode of the model where the method has no clear
            meaning, e.g. a causal block mask); the forward then raises ``TypeError`` with it.
        forward_untouched: ``None``, or ``(model, forward_arguments) -> bool``: whether this
            forward is no denoising pass of the video being generated (Wan-Animate-2's
            reference pass, which only fills a K/V cache); such a forward runs untouched.
        window_refusal: ``None``, or why the denoising window cannot be read off this model's
            ``timestep`` (e.g. an EDM noise level): a window other than the whole schedule then
            raises ``ValueError`` with it.
        recommended_weight: the enhance weight the paper or the model's authors give, if any.
    """

    model: str
    self_attention: str
    text: TextPosition | None
    num_frames: Callable[[torch.nn.Module, Mapping[str, Any]], int]
    residual_branch: str | None = None
    timestep_rises: bool = False
    notes: str = ""
    num_frames_from: FramesSource = "model"
    video_input: str = "hidden_states"
    token_order: str = "frame_major"
    video_tokens: Callable[[torch.nn.Module, Mapping[str, Any]], int | None] | None = None
    conditioning: ConditioningSide = "after"
    forward_refusal: Callable[[torch.nn.Module, Mapping[str, Any]], str | None] | None = None
    forward_untouched: Callable[[torch.nn.Module, Mapping[str, Any]], bool] | None = None
    window_refusal: str | None = None
    recommended_weight: float | None = None

    def __post_init__(self) -> None:
        if self.text not in ("first", "last", None):
            raise ValueError(f"{self.model}: text must be 'first', 'last' or None, got {self.text!r}")
        if self.num_frames_from not in ("model", "layer"):
            raise ValueError(
                f"{self.model}: num_frames_from must be 'model' or 'layer', got {self.num_frames_from!r}"
            )
        if self.token_order not in TOKEN_ORDERS:
            raise NotImplementedError(
                f"{self.model}: token_order={self.token_order!r} is not supported. Enhance-A-Video "
                "reads each spatial position's frames as an F x F temporal attention; only "
                "frame-major tokens (token t * S + s) are read that way. Position-major windows "
                "(token s * F + t, e.g. 8x8xF windows with time fastest) would give a wrong "
                "score, so they are refused rather than computed"
            )
        if self.conditioning not in ("before", "after"):
            raise ValueError(
                f"{self.model}: conditioning must be 'before' or 'after', got {self.conditioning!r}"
            )
        re.compile(self.self_attention)  # a bad pattern fails here, not at the first forward

    def video_token_range(self, sequence_length: int, video_token_count: int) -> slice:
        """The video tokens' slice of a ``sequence_length``-token attention call."""
        if video_token_count > sequence_length or (
            self.text is None and video_token_count != sequence_length
        ):
            raise ValueError(
                f"{self.model}: attention sequence of {sequence_length} tokens cannot hold the "
                f"layer's {video_token_count} video tokens with text={self.text!r}"
            )
        return _span(sequence_length, video_token_count, at_end=self.text == "first")

    def generated_rows(self, layer_token_count: int, video_token_count: int | None) -> slice:
        """The generated video tokens' slice of a layer's ``layer_token_count`` input tokens
        (``video_token_count`` of them, or all when ``None``)."""
        if video_token_count is None or video_token_count == layer_token_count:
            return slice(0, layer_token_count)
        if not 0 < video_token_count < layer_token_count:
            raise ValueError(
                f"{self.model}: the forward has {video_token_count} generated video tokens but a "
                f"targeted layer got {layer_token_count} tokens"
            )
        return _span(layer_token_count, video_token_count, at_end=self.conditioning == "before")

    def attention_rows(self, sequence_length: int, layer_token_count: int,
                       video_token_count: int | None) -> slice:
        """The generated video tokens' slice of a ``sequence_length``-token attention call made
        by a layer of ``layer_token_count`` input tokens (text placed as ``text`` says)."""
        layer = self.video_token_range(sequence_length, layer_token_count)
        generated = self.generated_rows(layer_token_count, video_token_count)
        return slice(layer.start + generated.start, layer.start + generated.stop)

    def targeted_layers(self, model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """``[(name, module)]`` of the self-attention layers, in model order; raises if none."""
        pattern = re.compile(self.self_attention)
        layers = [(name, m) for name, m in model.named_modules() if pattern.fullmatch(name)]
        if not layers:
            raise ValueError(
                f"the {self.model} adapter's self_attention pattern {self.self_attention!r} "
                f"matches no module of this {type(model).__name__}: the model's layout "
                "changed, nothing would be enhanced"
            )
        return layers

    def matches(self, model: torch.nn.Module) -> bool:
        """Whether ``model``'s class (or a base class) is named ``self.model``."""
        return any(cls.__name__ == self.model for cls in type(model).__mro__)


def _span(total: int, count: int, at_end: bool) -> slice:
    """The last ``count`` of ``total`` tokens (``at_end``) or the first ``count``."""
    return slice(total - count, total) if at_end else slice(0, count)


def find_spec(model: torch.nn.Module, specs: Mapping[str, AdapterSpec],
              refused: Mapping[str, str] | None = None) -> AdapterSpec:
    """The spec of ``model``'s class (or nearest base class). Raises ``TypeError`` quoting the
    reason for a class in ``refused`` ({class name: why}), or listing the supported ones."""
    for cls in type(model).__mro__:
        if refused and cls.__name__ in refused:
            raise TypeError(
                f"Enhance-A-Video does not apply to {type(model).__name__}: {refused[cls.__name__]}"
            )
        if cls.__name__ in specs:
            return specs[cls.__name__]
    raise TypeError(
        f"Enhance-A-Video has no adapter for {type(model).__name__}; supported: "
        f"{', '.join(sorted(specs))}"
    )
