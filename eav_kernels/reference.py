"""Plain-PyTorch paths: the float64 truth for tests, and the paper's materialising path.

Both build the F x F temporal attention map explicitly. They are slow and memory hungry on
purpose: ``cross_frame_intensity_reference`` is the definition every kernel is tested against,
``official_style_cross_frame_intensity`` is what the paper's published code does (the baseline of
our benchmarks).
"""

from __future__ import annotations

import torch

from ._deprecation import renamed_keyword
from .problem import default_scale

__all__ = ["cross_frame_intensity_reference", "official_style_cross_frame_intensity"]


def _frames_layout(
    query: torch.Tensor,  # [B, H, N, D], N = num_frames * S, frame-major
    key: torch.Tensor,  # [B, Hk, N, D], H % Hk == 0
    num_frames: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns q, k as [B, H, F, S, D] in ``dtype`` (key heads repeated for GQA)."""
    batch, heads, tokens, head_dim = query.shape
    spatial = tokens // num_frames
    q = query.to(dtype).reshape(batch, heads, num_frames, spatial, head_dim)
    k = key.to(dtype)
    if k.shape[1] != heads:
        k = k.repeat_interleave(heads // k.shape[1], dim=1)
    return q, k.reshape(batch, heads, num_frames, spatial, head_dim)


def cross_frame_intensity_reference(
    query: torch.Tensor,  # [B, H, N, D] video tokens, frame-major (token t*S + s)
    key: torch.Tensor,  # [B, Hk, N, D]
    num_frames: int,
    *,
    scale: float | None = None,
    per_sample: bool = False,
    compute_dtype: torch.dtype = torch.float64,
    per_batch: bool | None = None,
) -> torch.Tensor:
    """CFI by its definition (docs/design.md), materialising every F x F softmax.

    Returns a 0-d tensor (``per_sample=False``) or a ``[B]`` tensor (one CFI per batch element),
    in ``compute_dtype``. ``per_batch`` is the deprecated spelling of ``per_sample``.
    With ``compute_dtype=torch.float64`` this is the truth the kernels are tested against; with the
    input's own dtype it is "the plain low-precision PyTorch path" whose error sets the tolerance.
    ``num_frames == 1`` gives 0 (no cross-frame pairs). Inputs are not validated here.
    """
    if per_batch is not None:
        per_sample = renamed_keyword("per_batch", per_batch, "per_sample", per_sample, False)
    batch = query.shape[0]
    if num_frames == 1:
        zeros = torch.zeros(batch, dtype=compute_dtype, device=query.device)
        return zeros if per_sample else zeros.mean()
    scale = default_scale(query.shape[-1]) if scale is None else scale
    q, k = _frames_layout(query, key, num_frames, compute_dtype)
    logits = torch.einsum("bhtsd,bhjsd->bhstj", q, k) * scale  # [B, H, S, F, F]
    attention = logits.softmax(dim=-1)
    diagonal = torch.eye(num_frames, dtype=torch.bool, device=query.device)
    off_diagonal = attention.masked_fill(diagonal, 0).sum(dim=(-1, -2))  # [B, H, S]
    off_diagonal = off_diagonal / (num_frames * (num_frames - 1))
    cfi = off_diagonal.mean(dim=(1, 2))  # [B]
    return cfi if per_sample else cfi.mean()


def official_style_cross_frame_intensity(
    query: torch.Tensor,  # [B, H, N, D] video tokens, frame-major
    key: torch.Tensor,  # [B, H, N, D]
    num_frames: int,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """CFI the way the paper's published code computes it (``feta_score`` in Enhance-A-Video).

    Rearranges q and k to ``[(B S), H, F, D]`` (copies), computes ``q @ k^T`` in the input dtype,
    softmax in float32, materialises the ``B*S*H x F x F`` map and masks its diagonal. Returns a
    0-d float32 tensor. This is the baseline our kernels are benchmarked against.
    """
    batch, heads, tokens, head_dim = query.shape
    spatial = tokens // num_frames
    scale = default_scale(head_dim) if scale is None else scale

    def frames_as_batch(x: torch.Tensor) -> torch.Tensor:  # "B H (T S) C -> (B S) H T C"
        x = x.reshape(batch, x.shape[1], num_frames, spatial, head_dim).permute(0, 3, 1, 2, 4)
        return x.reshape(batch * spatial, x.shape[2], num_frames, head_dim)

    q = frames_as_batch(query) * scale
    k = frames_as_batch(key)
    attention = (q @ k.transpose(-2, -1)).to(torch.float32).softmax(dim=-1)
    attention = attention.reshape(-1, num_frames, num_frames)
    diagonal = torch.eye(num_frames, device=query.device).bool()
    diagonal = diagonal.unsqueeze(0).expand(attention.shape[0], -1, -1)
    off_diagonal = attention.masked_fill(diagonal, 0)
    mean_scores = off_diagonal.sum(dim=(1, 2)) / (num_frames * num_frames - num_frames)
    return mean_scores.mean()
