"""``AttentionCapture``: a ``TorchFunctionMode`` live during one enhanced layer's forward.

It sees every attention computation the layer makes (calls.py lists what; taps.py makes Python
attention functions visible), reads the cross-frame intensity of the video tokens from q and k
exactly as that attention was handed them, lets the attention compute its output unchanged,
and, when the score goes on the attention output, multiplies the video rows of that output.

Why a mode and not a replaced processor or a patched attention module: attention code differs
per model (a processor, a backend, a library function, a hand-written softmax) and all of it
ends in something torch dispatches; a mode scoped to one layer's forward intercepts exactly
that, without copying or replacing any of the model's code. Inside ``__torch_function__`` the
mode is off, so the attention the capture calls through is not seen twice (a dispatcher
backend's own SDPA call, the softmax inside ``F.softmax``).
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import DeviceContext

from ..api import cross_frame_intensity, scale_video_tokens
from ..dispatch import attention_with_cross_frame_intensity
from ..problem import attention_problem
from .attention_map import cross_frame_intensity_from_map
from .calls import AttentionCall
from .flex_mask import video_square_hole
from .taps import AttentionTap

if TYPE_CHECKING:
    from .layer import LayerEnhancement

# (call_index, query [B, H, N, D], key [B, Hk, N, D], video_token_count, num_frames, scale,
#  backend) -> (cfi [B] float32 or None, video rows of the call's output): a sharded host's CFI
# (diffusers context parallelism), identical on every rank.
ShardedIntensity = Callable[..., "tuple[torch.Tensor | None, list[slice]]"]


class AttentionCapture(TorchFunctionMode):
    """Collects each attention call's per-sequence CFI (``[B_call]`` float32) of one layer's
    forward; a layer may make several calls (Mochi makes one per batch element). With
    ``score_in_call`` the call's own score multiplies the video rows of its output."""

    reads_attention_taps = True  # taps.py routes tapped functions to this mode only

    def __init__(self, layer: "LayerEnhancement", num_frames: int, video_token_count: int,
                 score_in_call: bool, readers: dict, sharded: ShardedIntensity | None = None):
        super().__init__()
        self.layer = layer
        self.num_frames = num_frames
        self.video_token_count = video_token_count  # the layer's (this rank's) input tokens
        self.score_in_call = score_in_call
        self.readers = readers
        self.sharded = sharded
        self.calls = 0
        self.skipped_calls = 0  # attention calls replaced by one of their inputs outside ours
        self.cross_frame_intensities: list[torch.Tensor] = []  # one [B_call] per call
        self.last_cfi: torch.Tensor | None = None

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        reader = func.read if isinstance(func, AttentionTap) else self.readers.get(func)
        call = reader(args, kwargs) if reader is not None else None
        if call is None:
            if _is_python_tensor_method(func) and args and isinstance(args[0], torch.Tensor):
                # A Tensor method written in Python (torch/_tensor.py, e.g. Tensor.unflatten,
                # whose body ends in `super().unflatten(...)`) is called as the method it is, as
                # the layer wrote it: same result, and torch.compile traces it as a tensor method
                # (dynamo cannot trace that `super()` call when inlining the function itself).
                return getattr(args[0], func.__name__)(*args[1:], **kwargs)
            return func(*args, **kwargs)
        call_index, self.calls = self.calls, self.calls + 1
        if call.from_probabilities:
            result = func(*args, **kwargs)  # the map: the CFI is read off it
            cfi, targets = self._intensity_from_map(call.output(result))
        elif call.sdpa_arguments is not None and self.sharded is None and not _other_modes_active():
            result, cfi, targets = self._sdpa_through_core(call.sdpa_arguments)
        else:
            cfi, targets = self._intensity(call, call_index)
            result = func(*args, **kwargs)
            if _other_modes_active() and _returns_an_input(call.output(result), args, kwargs):
                # a mode outside ours replaced the attention by one of its inputs (diffusers'
                # layer skip with skip_attention_scores returns the values): nothing to enhance
                self.skipped_calls += 1
                return result
        if cfi is not None:
            self.cross_frame_intensities.append(cfi)
            self.last_cfi = cfi
        if not self.score_in_call:
            return result
        # one call holds the whole model batch here (B, or B * S temporal sequences). Ring
        # attention: every step's partial output gets the same score; the ring's merge of the
        # steps is an affine combination, so the merged output is scaled by it too.
        score = self.layer.score_from(self.last_cfi)
        return call.with_output(result, _scale_targets(call.output(result), score, targets, call.token_dim))

    def _sdpa_through_core(self, sdpa: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, list]:
        """An ``F.scaled_dot_product_attention`` call run by the dispatch core: ``(out
        [B, H, N, Dv] unscaled, cfi [B] float32, targets)``. A pure temporal call (Latte's and
        Open-Sora-Plan's temporal blocks) runs the fused temporal kernel where a backend has one."""
        video = self._video_rows(sdpa["query"].shape[2])
        problem = attention_problem(
            sdpa["query"], sdpa["key"], sdpa["value"], sdpa["attn_mask"], sdpa["dropout_p"], sdpa["is_causal"],
            sdpa["scale"], sdpa["enable_gqa"], self.num_frames, video,
        )
        out, cfi = attention_with_cross_frame_intensity(problem, self.layer.config.backend)
        return out, cfi, [(video, None)]

    def _video_rows(self, sequence_length: int) -> slice:
        """The generated video tokens' slice of one ``sequence_length``-token attention sequence
        of this layer (text and conditioning tokens left out)."""
        return self.layer.spec.attention_rows(sequence_length, self.video_token_count,
                                              self.layer.context.video_tokens)

    def _intensity(self, call: AttentionCall, call_index: int) -> tuple[torch.Tensor | None, list]:
        """``(cfi [B_call] or None, targets)``: ``targets`` are the output regions to scale,
        ``(token slice, sequence index of a packed call or None)``."""
        query, key = call.query, call.key  # [B, H, N, D], [B, Hk, N, D]
        backend = self.layer.config.backend
        if call.score_mod is not None:
            raise NotImplementedError(
                f"{self.layer.name}: flex_attention with score_mod "
                f"{getattr(call.score_mod, '__qualname__', call.score_mod)!r} changes the logits: the CFI of "
                "scale * q k^T would not be the softmax this attention computes"
            )
        with torch.no_grad():
            if self.sharded is not None:
                if call.sequences is not None or call.block_mask is not None:
                    kind = (f"packed variable-length ({len(call.sequences)} sequences)" if call.sequences is not None
                            else "flex_attention block-masked")
                    raise NotImplementedError(
                        f"{self.layer.name}: {kind} attention under context parallelism is not supported"
                    )
                cfi, rows = self.sharded(call_index, query, key, self.video_token_count, self.num_frames,
                                         call.scale, backend)
                return cfi, [(row, None) for row in rows]
            sequences = call.sequences or [slice(0, query.shape[2])]
            cfis, targets = [], []
            for index, sequence in enumerate(sequences):
                video = self._video_rows(sequence.stop - sequence.start)
                rows = slice(sequence.start + video.start, sequence.start + video.stop)
                self._require_full_mask(call, rows, query.shape[0], query.shape[1])
                cfis.append(cross_frame_intensity(  # [B] float32
                    query[:, :, rows], key[:, :, rows], self.num_frames,
                    scale=call.scale, per_sample=True, backend=backend,
                ))
                targets.append((rows, None if call.sequences is None else index))
        return torch.cat(cfis), targets

    def _require_full_mask(self, call: AttentionCall, rows: slice, batch_size: int, heads: int) -> None:
        """Refuse a flex call whose block mask hides a video key from a video query: the
        kernels measure the softmax over every frame (flex_mask.py)."""
        hole = None if call.block_mask is None else video_square_hole(call.block_mask, rows, batch_size, heads)
        if hole is not None:
            raise NotImplementedError(
                f"{self.layer.name}: flex_attention's block_mask is not full over the video tokens ({hole}): "
                "the CFI is the softmax over all F frames of a position, which this attention does not compute"
            )

    def _intensity_from_map(self, attention_map: torch.Tensor  # [L, ..., N, N]
                            ) -> tuple[torch.Tensor, list]:
        if self.sharded is not None:
            raise NotImplementedError(
                f"{self.layer.name}: a hand-written attention map under context parallelism is "
                "not supported"
            )
        video = self._video_rows(attention_map.shape[-1])
        with torch.no_grad():
            cfi = cross_frame_intensity_from_map(attention_map.detach(), self.num_frames, video)
        return cfi, [(video, None)]


def _scale_targets(output: torch.Tensor, score: torch.Tensor, targets: list, token_dim: int) -> torch.Tensor:
    """``output`` (batch first, tokens on ``token_dim``) with each target's video rows times the
    score: the batch's scores for dense calls, sequence ``i``'s score for packed ones."""
    for rows, sequence in targets:
        if sequence is None:
            factor = expand_to_batch(score, output.shape[0])
        else:
            factor = score if score.dim() == 0 else score[sequence]
        output = scale_video_tokens(output, factor, rows, token_dim=token_dim, inplace=not output.requires_grad)
    return output


def expand_to_batch(score: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``score`` (0-d or ``[B]``) for a tensor whose batch is ``batch_size = B * k``
    (batch-major: temporal layers fold ``B * S`` sequences as ``b * S + s``)."""
    if score.dim() == 0 or score.shape[0] == batch_size:
        return score
    return score.repeat_interleave(batch_size // score.shape[0])


def _other_modes_active() -> bool:
    """Whether a torch function mode other than ours (off inside ``__torch_function__``) and
    ``with torch.device(...)``'s is active: an SDPA call is then handed to it (it may replace the
    attention) rather than computed here."""
    return any(not isinstance(mode, DeviceContext) for mode in torch.overrides._get_current_function_mode_stack())


def _returns_an_input(output: torch.Tensor,  # the call's attention output, any layout
                      args: tuple, kwargs: dict) -> bool:
    """Whether an attention call's ``output`` is (a view of) one of the call's tensor inputs: no
    attention was computed, something outside replaced it (a real output is a new tensor)."""
    storage = output.untyped_storage().data_ptr()
    return any(isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() == storage
               for value in (*args, *kwargs.values()))


def _is_python_tensor_method(func: Any) -> bool:
    return isinstance(func, types.FunctionType) and getattr(torch.Tensor, func.__name__, None) is func
