"""``LayerEnhancement``: Enhance-A-Video on one self-attention layer, for any front-end.

A front-end (diffusers hooks, plain PyTorch forward wrappers) calls ``forward`` in place of the
layer's forward. It runs the layer under an ``AttentionCapture``, turns the CFIs of its
attention calls into the layer's score, and puts the score where the config says:

- ``placement="attention_output"``: inside the capture, on the video rows of each attention
  call's output (for a hand-written softmax: the video rows of its map, which ``attn @ v``
  carries to the output unchanged);
- ``placement="to_out"`` (the paper's): on the layer's video output, after its projection;
- a spec with a ``residual_branch``: on that module's output, for both placements
  (``residual_output``).

An output a cache hands back (the layer's forward short-circuited by a cache inside ours: an
attention processor or a host's own code that hands back its earlier output) makes no attention
call; it carries the score of the computation that produced it (``reuse.py``). Where the score
sits inside the output (``"attention_output"``), the cached object already has it and passes
through; where it goes on the layer's output (``"to_out"``) or a residual branch, the cache holds
the unscaled output and the producing computation's score is applied again. A cache outside ours
stores our already scaled output and never calls us; the diffusers front-end always puts our
hook innermost on the layer (adapters/hook_chain.py), so every diffusers cache is outside. An
attention call that a torch function mode outside ours replaced by one of its inputs (diffusers'
layer skip with ``skip_attention_scores``) computed nothing: a layer whose calls were all
replaced is not enhanced.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from ..api import enhance_score, scale_video_tokens
from .capture import AttentionCapture, ShardedIntensity, expand_to_batch
from .forward_context import ForwardContext, bound_arguments
from .reuse import ProducedOutput
from .spec import AdapterSpec


class LayerEnhancement:
    """Enhance-A-Video on one self-attention layer (see the module docstring).

    ``name``, ``layer``: the layer's module name (in messages and records) and module;
    ``enhance_weight``: its ``w``; ``context``: the model's ``ForwardContext``.
    """

    def __init__(self, name: str, layer: torch.nn.Module, spec: AdapterSpec, config: Any,
                 enhance_weight: float, context: ForwardContext):
        self.name, self.spec, self.config, self.context = name, spec, config, context
        self.enhance_weight = enhance_weight
        self.signature = inspect.signature(layer.forward)
        self.first_parameter = next(iter(self.signature.parameters))  # the video hidden states
        self.num_frames: int | None = None  # of the latest call
        self.last_score: torch.Tensor | None = None  # 0-d or [B]: the score of the latest call
        self.pending_residual_score: torch.Tensor | None = None  # for the residual branch
        self.generated: slice | None = None  # the generated video rows of the latest call's input
        self.produced: ProducedOutput | None = None  # the latest computed (not reused) output

    def forward(self, module: torch.nn.Module, layer_forward: Callable, args: tuple, kwargs: dict,
                sharded: ShardedIntensity | None = None) -> Any:
        """``layer_forward(*args, **kwargs)``, enhanced. ``sharded``: the CFI of a sharded host
        (diffusers context parallelism), else ``None``."""
        self.pending_residual_score = None
        if not self.context.active:
            output = layer_forward(*args, **kwargs)
            if self._is_reused(output):
                return self._reused(output)
            self.last_score = None  # outside the window: this call has no score
            self.produced = ProducedOutput(output, None, None)
            return output
        self.num_frames = self._num_frames(module, args, kwargs)
        hidden_states = args[0] if args else kwargs[self.first_parameter]  # [B', N_layer, C]
        if sharded is not None and self.context.video_tokens is not None:
            raise NotImplementedError(
                f"{self.name}: Enhance-A-Video does not support context parallelism on a layer "
                "whose input mixes conditioning tokens with the generated video tokens"
            )
        self.generated = self.spec.generated_rows(hidden_states.shape[1], self.context.video_tokens)
        score_in_call = self._score_in_call
        capture = AttentionCapture(self, self.num_frames, hidden_states.shape[1], score_in_call,
                                   self.context.readers, sharded)
        with capture:
            output = layer_forward(*args, **kwargs)
        if not capture.cross_frame_intensities:
            if self._is_reused(output):
                return self._reused(output)
            if capture.skipped_calls:  # its attention skipped from outside (layer skip): not enhanced
                self.last_score = None
                self.produced = ProducedOutput(output, None, None)
                return output
            raise RuntimeError(
                f"Enhance-A-Video saw no attention computation in {self.name} "
                f"({type(module).__name__}): no scaled_dot_product_attention, aten attention op, "
                "diffusers dispatcher backend, flash-attn / flex_attention / xformers / SageAttention call or "
                "softmax over a square attention map. Its attention goes through something the "
                "engine cannot see (see eav_kernels/engine/calls.py); nothing was enhanced"
            )
        cross_frame_intensities = torch.cat(capture.cross_frame_intensities)
        self.last_score = self.score_from(cross_frame_intensities)
        self.produced = ProducedOutput(output, self.last_score, self.generated)
        if self.config.recorder is not None:
            self.config.recorder.record_layer(self.name, cross_frame_intensities, self.last_score)
        if score_in_call:
            return output
        if self.spec.residual_branch is not None:
            self.pending_residual_score = self.last_score
            return output
        return _map_video_output(output, lambda video: self.scale_video(video, self.last_score))

    @property
    def _score_in_call(self) -> bool:
        """Whether the score multiplies each attention call's output (inside the layer)."""
        return self.config.placement == "attention_output" and self.spec.residual_branch is None

    def _is_reused(self, output: Any) -> bool:
        return self.produced is not None and self.produced.is_returned_again(output)

    def _reused(self, output: Any) -> Any:
        """A cached ``output`` the layer computed earlier, with the score of that computation:
        already inside it (score in the attention call, or the computation was not enhanced), or
        applied again here (``"to_out"``; a residual branch's output)."""
        score = self.last_score = self.produced.score
        if score is None or self._score_in_call:
            return output
        if self.spec.residual_branch is not None:
            self.pending_residual_score = score
            return output
        self.generated = self.produced.generated
        return _map_video_output(output, lambda video: self.scale_video(video, score))

    def _num_frames(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> int:
        if self.spec.num_frames_from == "layer":
            return int(self.spec.num_frames(module, bound_arguments(self.signature, args, kwargs)))
        if self.context.num_frames is None:
            raise RuntimeError(
                f"{self.name} ran outside its model's forward: the frame count is read there"
            )
        return self.context.num_frames

    def score_from(self, cross_frame_intensity_per_sequence: torch.Tensor  # [L] float32
                   ) -> torch.Tensor:
        """The score (0-d, or ``[B]`` with ``per_sample``) from the CFIs of ``L`` attention
        sequences, ``L`` a multiple of the model batch ``B``, batch-major (temporal layers fold
        ``B * S`` sequences into their batch as ``b * S + s``)."""
        cfi = cross_frame_intensity_per_sequence
        batch_size = self.context.batch_size
        if self.config.per_sample:
            if cfi.shape[0] % batch_size:
                raise ValueError(
                    f"{self.name}: {cfi.shape[0]} attention sequences do not fold into a "
                    f"batch of {batch_size} for per_sample scores"
                )
            cfi = cfi.view(batch_size, -1).mean(dim=1)
        else:
            cfi = cfi.mean()
        return enhance_score(cfi, self.num_frames, self.enhance_weight)

    def scale_video(self, video: torch.Tensor,  # [B', N_layer, C]
                    score: torch.Tensor) -> torch.Tensor:
        """``video`` with the generated video rows of the latest call's input times ``score``
        (0-d or ``[B]``); conditioning rows pass unchanged."""
        return scale_video_tokens(video, expand_to_batch(score, video.shape[0]), self.generated, token_dim=1)

    def residual_output(self, output: torch.Tensor  # [B', N_layer, C]
                        ) -> torch.Tensor:
        """A residual-branch module's output, scaled by the score its layer just computed."""
        score, self.pending_residual_score = self.pending_residual_score, None
        return output if score is None else self.scale_video(output, score)


def _map_video_output(output: Any, scale_video: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``scale_video`` to a layer output: a video tensor, or a ``(video, text)`` tuple."""
    if isinstance(output, tuple):
        return (scale_video(output[0]),) + tuple(output[1:])
    return scale_video(output)
