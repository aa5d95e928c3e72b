"""Cross-frame intensity read off an attention map a hand-written attention already made.

A layer that writes ``attn = softmax(q kᵀ)`` itself (Open-Sora v1.2's temporal attention) hands
us the full map ``A = softmax(L)`` over its ``N`` tokens. For the video row ``i = t * S + s``
the temporal logits are ``L[i, j * S + s]``, ``j < F``, and

    softmax_j(L[i, j S + s]) = A[i, j S + s] / sum_j' A[i, j' S + s]

(the row's log-sum-exp cancels), so the ``F x F`` temporal softmax of every spatial position is
the map's entries at those columns, renormalised. Only its diagonal and row sums are needed:
both are read through strided views of the map, never a second ``F x F`` map. For temporal
attention (``N == F``, ``S == 1``) the sums are the rows' own sums, 1.
"""

from __future__ import annotations

import torch


def cross_frame_intensity_from_map(
    attention_map: torch.Tensor,  # [L, ..., N, N]: softmax over the last axis; rows = queries
    num_frames: int,
    video_tokens: slice,  # the frame-major video tokens among the N
) -> torch.Tensor:
    """Per-leading-index CFI ``[L]`` float32 of the video tokens' temporal attention.

    ``L`` is the map's first axis (the call's batch, e.g. ``B * S`` temporal sequences); every
    other leading axis (heads) is averaged. Raises when the video tokens do not split into
    ``num_frames`` frames. ``num_frames == 1`` gives 0.
    """
    video = attention_map[..., video_tokens, video_tokens]  # [L, ..., F*S, F*S] view
    tokens = video.shape[-1]
    if tokens % num_frames:
        raise ValueError(f"video tokens ({tokens}) not divisible by num_frames ({num_frames})")
    if num_frames == 1:
        return attention_map.new_zeros(attention_map.shape[0], dtype=torch.float32)
    positions = tokens // num_frames
    # [L, ..., F(t), S, F(j), S'] -> same position s == s': [L, ..., F(t), F(j), S] (a view)
    temporal = video.unflatten(-1, (num_frames, positions)).unflatten(-3, (num_frames, positions))
    temporal = temporal.diagonal(dim1=-3, dim2=-1)
    row_sums = temporal.sum(dim=-2, dtype=torch.float64)  # [L, ..., F(t), S]
    diagonal = temporal.diagonal(dim1=-3, dim2=-2).transpose(-1, -2)  # [L, ..., F(t), S]
    off_diagonal = (1.0 - diagonal.double() / row_sums) / (num_frames - 1)
    return off_diagonal.flatten(1).mean(dim=1).to(torch.float32)
