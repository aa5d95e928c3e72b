"""One attention call, described and validated once: what every backend is asked to run.

``cross_frame_problem`` (contract 1 alone: the CFI of q and k) and ``attention_problem`` (an SDPA
call with its video token range: contract 1 beside SDPA, or contract 2 when the call is pure
temporal attention) check their arguments once, with the errors of ``validation.py``, and resolve
the scale. Backends and kernels then trust the problem; the compiled ops still check their own
preconditions for callers that bypass Python.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .validation import check_num_frames, check_query_key, check_scale, resolve_video_tokens

__all__ = ["AttentionProblem", "attention_problem", "cross_frame_problem", "default_scale"]


def default_scale(head_dim: int) -> float:
    """The softmax scale when the caller gives none: ``head_dim ** -0.5``, as in SDPA."""
    return head_dim ** -0.5


class AttentionProblem(NamedTuple):
    """An attention call whose video tokens are ``num_frames`` frames of ``S`` positions each,
    frame-major (token ``video_start + t * S + s`` is frame ``t``, position ``s``)."""

    query: torch.Tensor  # [B, H, N, D], any strides
    key: torch.Tensor  # [B, Hk, N, D], H % Hk == 0
    value: torch.Tensor | None  # [B, Hk, N, Dv]; None when only the CFI is asked for
    num_frames: int  # F >= 1
    video_start: int  # first video token
    video_length: int  # F * S video tokens from video_start
    scale: float  # of the logits, resolved (default_scale(D) when the caller gave None)
    enable_gqa: bool = False
    sdpa_scale: float | None = None  # as the caller gave it: SDPA's own default rounds differently
    attn_mask: torch.Tensor | None = None  # SDPA's, for the attention only (never the CFI)
    dropout_p: float = 0.0
    is_causal: bool = False

    def device_type(self) -> str:
        """"cpu", "cuda", ... of the tensors (cheap for CPU ones: asked on every call)."""
        return "cpu" if self.query.is_cpu else self.query.device.type

    def video_query_key(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(query [B, H, F*S, D], key [B, Hk, F*S, D])`` of the video tokens, views outside
        autograd (the CFI is a constant for autograd): what contract 1 reads."""
        query, key = self.query, self.key
        if not (self.video_start == 0 and self.video_length == query.shape[2]):
            query = query.narrow(2, self.video_start, self.video_length)
            key = key.narrow(2, self.video_start, self.video_length)
        if query.requires_grad or key.requires_grad:
            query, key = query.detach(), key.detach()
        return query, key

    def is_pure_temporal(self) -> bool:
        """Each batch element is one sequence of the frames (``N == F``, as in Latte's temporal
        blocks), attended without mask, dropout or causality, and nothing needs gradients: what
        the fused temporal-attention kernels (contract 2) compute."""
        value = self.value
        return (
            self.num_frames >= 2
            and self.query.shape[2] == self.num_frames
            and self.attn_mask is None
            and self.dropout_p == 0.0
            and not self.is_causal
            and isinstance(value, torch.Tensor)
            and value.dim() == 4
            and value.shape[:3] == self.key.shape[:3]
            and value.dtype == self.query.dtype
            and value.device == self.query.device
            and not (torch.is_grad_enabled()
                     and (self.query.requires_grad or self.key.requires_grad or value.requires_grad))
        )


def cross_frame_problem(
    query: torch.Tensor,  # [B, H, F*S, D], all video
    key: torch.Tensor,  # [B, Hk, F*S, D]
    num_frames: int,
    scale: float | None,
) -> AttentionProblem:
    """The CFI of ``query`` and ``key`` (key heads shared as in GQA), validated."""
    check_query_key(query, key, num_frames, enable_gqa=True)
    _, _, tokens, head_dim = query.shape
    if scale is None:
        scale = default_scale(head_dim)
    else:
        check_scale(scale)
        scale = float(scale)
    return AttentionProblem(query, key, None, num_frames, 0, tokens, scale, True)


def attention_problem(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    value: torch.Tensor,  # [B, Hk, N, Dv] (SDPA validates it)
    attn_mask: torch.Tensor | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
    num_frames: int,
    video_tokens: slice | None,
) -> AttentionProblem:
    """An SDPA call and its video tokens (``None``: all of them), validated."""
    if video_tokens is None:  # all tokens are video
        check_query_key(query, key, num_frames, enable_gqa=enable_gqa)
        start, length = 0, query.shape[2]
    else:
        check_query_key(query, key, 1, enable_gqa=enable_gqa)
        start, length = resolve_video_tokens(video_tokens, query.shape[2])
        check_num_frames(num_frames, length)
    check_scale(scale)
    return AttentionProblem(
        query, key, value, num_frames, start, length,
        default_scale(query.shape[3]) if scale is None else float(scale), enable_gqa, scale,
        attn_mask, dropout_p, is_causal,
    )
