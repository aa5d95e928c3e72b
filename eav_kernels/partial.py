"""Cross-frame intensity of a *subset* of query rows: the building block for sharded attention.

Under diffusers Ring context parallelism each rank holds a contiguous shard of the video tokens
(whole or partial frames, all heads). A query row ``t * S + s`` needs its logits against the keys
of *every* frame at position ``s``, most of which live on other ranks. The adapter gathers the
video keys of the layer once (``torch.distributed.all_gather``) and calls
``off_diagonal_mass_sums`` on its local query rows; the per-rank sums, and the row counts, are
then summed over the group, which gives exactly the global CFI (a mean over rows).

Plain PyTorch, chunked over rows so memory stays ``O(chunk * F * D)`` on top of the inputs.
"""

from __future__ import annotations

import torch

from .problem import default_scale

__all__ = ["off_diagonal_mass_sums"]

_CHUNK_ELEMENTS = 1 << 22  # floats of gathered keys per chunk (16 MiB in float32)


def off_diagonal_mass_sums(
    query_rows: torch.Tensor,  # [B, H, R, D]: global video rows [row_start, row_start + R)
    key: torch.Tensor,  # [B, Hk, F*S, D]: all video keys, frame-major (token t*S + s)
    num_frames: int,
    row_start: int,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """Per batch element, the sum over heads and the ``R`` rows of each row's normalised
    off-diagonal mass ``(1 - A[t, t]) / (F - 1)``, in float64 (``[B]``).

    ``A`` is the row's softmax over the ``F`` keys at its spatial position. Dividing the sum over
    all ``H * F * S`` rows by their count gives ``cross_frame_intensity(q, k, F, per_sample=True)``.
    The mass is ``off / (off + diag)`` with ``off`` the sum of the other frames' exponentials
    (no ``1 - diag`` cancellation); logits and sums are in float32, the row total in float64.
    """
    batch, heads, rows, head_dim = query_rows.shape
    key_heads, tokens = key.shape[1], key.shape[2]
    if heads % key_heads:
        raise ValueError(f"query heads ({heads}) must be a multiple of key heads ({key_heads})")
    if tokens % num_frames:
        raise ValueError(
            f"{tokens} video key tokens do not split into num_frames={num_frames} frames"
        )
    if not 0 <= row_start <= row_start + rows <= tokens:
        raise ValueError(f"query rows [{row_start}, {row_start + rows}) outside {tokens} video tokens")
    sums = torch.zeros(batch, dtype=torch.float64, device=query_rows.device)
    if num_frames == 1 or rows == 0:
        return sums
    scale = default_scale(head_dim) if scale is None else float(scale)
    spatial = tokens // num_frames
    frames_key = key.detach().unflatten(2, (num_frames, spatial))  # [B, Hk, F, S, D] (a view)
    group = heads // key_heads
    chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * heads * num_frames * head_dim))
    for begin in range(0, rows, chunk):
        end = min(rows, begin + chunk)
        index = torch.arange(row_start + begin, row_start + end, device=key.device)
        position, frame = index % spatial, index // spatial  # [R_c]
        keys = frames_key[:, :, :, position].float()  # [B, Hk, F, R_c, D]
        q = query_rows[:, :, begin:end].detach().float().unflatten(1, (key_heads, group))
        logits = torch.einsum("bkgrd,bkfrd->bkgrf", q, keys) * scale  # [B, Hk, G, R_c, F]
        logits = logits - logits.amax(dim=-1, keepdim=True)
        weights = logits.exp()
        is_diagonal = torch.arange(num_frames, device=key.device) == frame[:, None]  # [R_c, F]
        diagonal = (weights * is_diagonal).sum(dim=-1)
        off = (weights * ~is_diagonal).sum(dim=-1)
        mass = off / (off + diagonal)  # [B, Hk, G, R_c]
        sums += mass.sum(dim=(1, 2, 3), dtype=torch.float64)
    return sums / (num_frames - 1)
