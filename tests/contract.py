"""FlashAttention's correctness contract, shared by every backend's tests (docs/design.md).

A backend's error against the float64 reference must be at most twice the error of the plain
low-precision PyTorch path (the same reference computed in the input dtype), plus a noise term:
a few float32 ulps of the result, which is what the float32 output itself can resolve.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels.reference import cross_frame_intensity_reference

# Rounding of a float32 result: a few ulps, relative to the value.
FLOAT32_RESULT_NOISE = 8 * torch.finfo(torch.float32).eps


def contract_bound(
    query: torch.Tensor,  # [B, H, F*S, D]
    key: torch.Tensor,  # [B, Hk, F*S, D]
    num_frames: int,
    *,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 reference [B], allowed absolute error [B]) for a per-sample CFI of these inputs."""
    truth = cross_frame_intensity_reference(query, key, num_frames, scale=scale, per_sample=True)
    low_precision = cross_frame_intensity_reference(
        query, key, num_frames, scale=scale, per_sample=True, compute_dtype=query.dtype
    )
    allowed = 2 * (low_precision.double() - truth).abs() + FLOAT32_RESULT_NOISE * truth.abs().clamp(min=1e-3)
    return truth, allowed


def assert_meets_contract(
    actual: torch.Tensor,  # [B] per-sample CFI from a backend
    query: torch.Tensor,
    key: torch.Tensor,
    num_frames: int,
    *,
    scale: float | None = None,
) -> None:
    truth, allowed = contract_bound(query, key, num_frames, scale=scale)
    error = (actual.detach().cpu().double() - truth.cpu()).abs()
    assert torch.isfinite(actual).all(), f"non-finite CFI {actual.tolist()}"
    assert (error <= allowed.cpu()).all(), (
        f"error {error.tolist()} exceeds the contract {allowed.tolist()} "
        f"(reference {truth.tolist()}, got {actual.tolist()})"
    )


def assert_enhanced_output_meets_contract(
    actual: torch.Tensor,  # [B, H, N, Dv]: enhanced_sdpa's output (all tokens video)
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    value: torch.Tensor,  # [B, Hk, N, Dv]
    num_frames: int,
    enhance_weight: float,
) -> None:
    """``enhanced_sdpa``'s output against float64 SDPA scaled by the float64 score: the error is at
    most twice that of the general low-precision path (SDPA in the input dtype, the reference
    backend's score, the float32 scaling), plus a few float32 ulps of the output's magnitude."""
    cfi = cross_frame_intensity_reference(query, key, num_frames)  # float64
    score = (cfi * (num_frames + enhance_weight)).clamp(min=1.0)
    assert score > 1, "the test must exercise a real enhancement"
    gqa = query.shape[1] != key.shape[1]
    truth = F.scaled_dot_product_attention(
        query.cpu().double(), key.cpu().double(), value.cpu().double(), enable_gqa=gqa
    ) * score.cpu()
    general = eav.enhanced_sdpa(query, key, value, enable_gqa=gqa, num_frames=num_frames,
                                enhance_weight=enhance_weight, backend="reference")
    error = (actual.cpu().double() - truth).abs().max().item()
    allowed = 2 * (general.cpu().double() - truth).abs().max().item()
    allowed += FLOAT32_RESULT_NOISE * truth.abs().max().item()
    assert error <= allowed, f"enhanced output error {error} exceeds the contract {allowed}"


def random_view(
    shape: tuple[int, int, int, int],  # [B, H, N, D] of the view
    layout: str,
    dtype: torch.dtype,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:  # [B, H, N, D], strides as ``layout`` says
    """Fresh standard-normal values (never zeros) seen through the strides of ``layout``.

    "bhnd": contiguous; "bnhd": a transposed view of [B, N, H, D] storage, as diffusers hands q,
    k, v to SDPA; "strided": every dimension strided (a slice of a larger buffer); "misaligned":
    rows of D + 1 elements, the view starting one element in (no 16-byte alignment).
    The full buffer is made on ``device`` in ``dtype`` first and sliced there: ``.to()`` of a
    sliced view would return a contiguous copy, and a GPU kernel would never see the strides.
    """
    b, h, n, d = shape

    def buffer(*size: int) -> torch.Tensor:
        if torch.device(device).type == "meta":  # sizes, strides and alignment only
            return torch.empty(*size, dtype=dtype, device="meta")
        return torch.randn(*size, generator=generator).to(device=device, dtype=dtype)

    if layout == "bhnd":
        return buffer(b, h, n, d)
    if layout == "bnhd":
        return buffer(b, n, h, d).transpose(1, 2)
    if layout == "strided":
        return buffer(b, h * 2, n, d * 2 + 1)[:, ::2, :, 1 : 2 * d + 1 : 2]
    if layout == "misaligned":
        return buffer(b, h, n, d + 1)[..., 1:]
    raise ValueError(f"unknown layout {layout!r}")


def random_query_key(
    batch: int,
    heads: int,
    num_frames: int,
    spatial: int,
    head_dim: int,
    dtype: torch.dtype,
    *,
    kv_heads: int | None = None,
    layout: str = "bhnd",
    generator: torch.Generator | None = None,
    device: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh random q [B, H, F*S, D] and k [B, Hk, F*S, D] (never zeros), laid out as
    ``random_view`` says: "bhnd", "bnhd", "strided" or "misaligned"."""
    kv_heads = heads if kv_heads is None else kv_heads
    tokens = num_frames * spatial
    return tuple(random_view((batch, h, tokens, head_dim), layout, dtype, generator=generator, device=device)
                 for h in (heads, kv_heads))
