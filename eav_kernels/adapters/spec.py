"""``AdapterSpec``: what the shared machinery needs to know about one diffusers transformer.

A spec is data: which modules are the self-attention layers, where text tokens sit in the
sequence those layers hand to attention, how to read the latent frame count off a forward's
arguments, and where the score must go when the plain placement would be erased. Adding a model
costs one spec in ``models.py`` and one test, never a copied attention processor.

Assumptions the machinery checks at run time (a layer that breaks them raises, it is never
silently skipped):

- a targeted layer's first argument (``hidden_states``, ``[B, N_layer, C]``) holds the layer's
  video tokens, frame-major: all of them, or (``video_tokens`` set) ``N_video`` generated ones
  with conditioning tokens (history latents, appended keyframes) on the side ``conditioning``
  names; joint-attention layers take text as ``encoder_hidden_states``;
- the layer calls ``torch.nn.functional.scaled_dot_product_attention`` (directly, or through
  diffusers' ``dispatch_attention_fn`` with the native backend) with ``[B, H, N, D]`` q/k/v whose
  token axis is ``[text; video]`` (``text="first"``), ``[video; text]`` (``"last"``) or video only;
- the layer returns its video output as a tensor ``[B, N_layer, C]``, or as the first element of
  a ``(video, text)`` tuple.

Models where the method has no clear meaning, or that the machinery cannot reach, are refused by
name with the reason (``models.REFUSED_MODELS``): ``find_spec`` raises ``TypeError`` quoting it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

import torch

TextPosition = Literal["first", "last"]
ConditioningSide = Literal["before", "after"]


@dataclass(frozen=True)
class AdapterSpec:
    """How Enhance-A-Video attaches to one diffusers transformer class.

    Attributes:
        model: the transformer's class name (subclasses match too).
        self_attention: regex, ``re.fullmatch``-ed against ``named_modules()`` names: the
            self-attention layers to enhance. Cross-attention and text-only layers stay out.
        text: where text tokens sit in the q/k/v the layer hands to attention: ``"first"``,
            ``"last"`` or ``None`` (video only). Text tokens are never scaled.
        num_frames: ``(transformer, forward_arguments) -> int``: latent frames of this forward
            after temporal patching (the ``F`` of every targeted layer's frame-major tokens).
            ``forward_arguments`` maps the transformer's forward parameter names to this call's
            values.
        residual_branch: ``None``, or the name (relative to the attention layer's parent block)
            of the module whose output is the layer's video branch as added to the residual.
            Set when the block normalises the attention output before the residual add, which
            would erase a scalar applied earlier; the score then goes there for both placements.
        timestep_rises: ``True`` when the model's ``timestep`` grows while denoising.
        notes: the traps found in this model, for the docs and the next reader.
        latent_argument: the forward parameter holding the latent video (its dim 0 is the batch):
            ``"hidden_states"`` for transformers, ``"sample"`` for the UNets.
        video_tokens: ``None`` (every token of a targeted layer's ``hidden_states`` is a generated
            video token), or ``(model, forward_arguments) -> int``: how many of them are, the
            rest being conditioning tokens that are attended but neither measured nor scaled
            (Framepack's history latents, LTX's appended keyframe / reference tokens).
        conditioning: where those conditioning tokens sit in the layer's ``hidden_states``:
            ``"before"`` (the generated tokens are the last ``video_tokens``) or ``"after"``.
        forward_refusal: ``None``, or ``(model, forward_arguments) -> str | None``: a reason this
            forward cannot be enhanced (a mode of the model where the method has no clear
            meaning, e.g. a causal block mask); the forward then raises ``TypeError`` with it.
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
    latent_argument: str = "hidden_states"
    video_tokens: Callable[[torch.nn.Module, Mapping[str, Any]], int] | None = None
    conditioning: ConditioningSide = "after"
    forward_refusal: Callable[[torch.nn.Module, Mapping[str, Any]], str | None] | None = None
    window_refusal: str | None = None
    recommended_weight: float | None = None

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

    def targeted_layers(self, transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """``[(name, module)]`` of the self-attention layers, in model order; raises if none."""
        pattern = re.compile(self.self_attention)
        layers = [(name, m) for name, m in transformer.named_modules() if pattern.fullmatch(name)]
        if not layers:
            raise ValueError(
                f"the {self.model} adapter's self_attention pattern {self.self_attention!r} "
                f"matches no module of this {type(transformer).__name__}: the diffusers layout "
                "changed, nothing would be enhanced"
            )
        return layers


def _span(total: int, count: int, at_end: bool) -> slice:
    """The last ``count`` of ``total`` tokens (``at_end``) or the first ``count``."""
    return slice(total - count, total) if at_end else slice(0, count)


def find_spec(transformer: torch.nn.Module, specs: Mapping[str, AdapterSpec],
              refused: Mapping[str, str] | None = None) -> AdapterSpec:
    """The spec of ``transformer``'s class (or nearest base class). Raises ``TypeError`` quoting
    the reason for a class in ``refused`` ({class name: why}), or listing the supported ones."""
    for cls in type(transformer).__mro__:
        if refused and cls.__name__ in refused:
            raise TypeError(
                f"Enhance-A-Video does not apply to {type(transformer).__name__}: {refused[cls.__name__]}"
            )
        if cls.__name__ in specs:
            return specs[cls.__name__]
    raise TypeError(
        f"Enhance-A-Video has no adapter for {type(transformer).__name__}; supported: "
        f"{', '.join(sorted(specs))}"
    )
