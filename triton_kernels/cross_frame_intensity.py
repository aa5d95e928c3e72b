"""Cross-frame intensity from q and k in one pass (docs/design.md, contract 1).

For every (batch b, head h, spatial position s) the F frames of that position form an F x F
softmax ``A = softmax_j(scale * <q[t*S+s], k[j*S+s]>)``; CFI is the mean of the off-diagonal
entries. A row of ``A`` needs only its log-sum-exp and its diagonal logit, so the kernel is a
flash-attention forward *without* the value product:

* one program per (b, h, block of ``BLOCK_S`` spatial positions, block of ``BLOCK_M`` query
  frames); q and k are read in place through their strides (token ``t * S + s``);
* online softmax over key-frame chunks of ``BLOCK_N`` frames, so F is unbounded (256 and more);
* per row it keeps two running sums rescaled to the running max: the diagonal term and the
  off-diagonal terms. The off-diagonal mass is ``off / (off + diag)`` -- no ``1 - p_tt``, which
  cancels when the rows are strongly diagonal (exactly the regime the paper cares about);
* each program writes one float32 partial (its summed off-diagonal mass) to a buffer
  ``[B, H, programs]``; the host reduces it in a fixed order (float64). No atomics: the result is
  bitwise reproducible.

Dot / packing choice: the tile is 3-D, ``[BLOCK_S positions, BLOCK_M frames, BLOCK_D]``, and the
logits come from a *batched* ``tl.dot`` (``[BS, BM, D] @ [BS, D, BN] -> [BS, BM, BN]``), one
small F x F product per position. The alternative -- packing positions into the rows of a 2-D
tile and masking the block diagonal -- would spend ``BLOCK_S``x the MMA work on logits between
different positions that are thrown away. With the batched dot each position's block is a full
MMA tile as soon as F is padded to 16 (Triton lowers it to ``mma.sync`` on sm_80 and sm_90;
wgmma has no batch dimension). The 3-D tile also makes the loads coalesced: the ``BLOCK_S``
positions of one frame are ``BLOCK_S`` consecutive tokens.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import LOG2_E, check_device, frame_block, head_dim_block, upcast_operands

__all__ = ["cross_frame_intensity_kernel", "per_batch_cross_frame_intensity"]


@triton.jit
def cross_frame_intensity_kernel(
    q_ptr,  # [B, H, F*S, D], any strides, fp32/fp16/bf16
    k_ptr,  # [B, Hk, F*S, D], any strides, same dtype
    partial_ptr,  # [B, H, NUM_POSITION_BLOCKS * NUM_QUERY_BLOCKS] float32, contiguous (output)
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    num_heads,  # H
    group_size,  # H // Hk: query heads per key head (GQA)
    num_positions,  # S
    num_frames,  # F
    head_dim,  # D
    qk_scale,  # scale * log2(e)
    BLOCK_S: tl.constexpr,  # spatial positions per program (the dot's batch dimension)
    BLOCK_M: tl.constexpr,  # query frames per program, power of two >= 16
    BLOCK_N: tl.constexpr,  # key frames per chunk of the online softmax, power of two >= 16
    BLOCK_D: tl.constexpr,  # head dim padded to a power of two >= 16
    UPCAST_OPERANDS: tl.constexpr,  # interpreter: dot in float32 (it multiplies bf16 bits)
    IEEE_DOT: tl.constexpr,  # float32 inputs: full-precision dot, not tf32
):
    tile = tl.program_id(0)  # (position block, query-frame block)
    batch_head = tl.program_id(1)  # (b, h)
    b = batch_head // num_heads
    h = batch_head % num_heads
    kv_h = h // group_size
    num_query_blocks = tl.cdiv(num_frames, BLOCK_M)
    position_block = tile // num_query_blocks
    query_block = tile % num_query_blocks

    offs_s = position_block * BLOCK_S + tl.arange(0, BLOCK_S)  # [BS] spatial positions
    offs_m = query_block * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM] query frames
    offs_n = tl.arange(0, BLOCK_N)  # [BN] key frames within a chunk
    offs_d = tl.arange(0, BLOCK_D)  # [BD]
    position_ok = offs_s < num_positions
    d_ok = offs_d < head_dim

    # q tile [BS, BM, BD]: token t * S + s. 64-bit offsets: B * H * N * D passes 2**31 at real sizes.
    q_base = q_ptr + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
    q_token = offs_m[None, :].to(tl.int64) * num_positions + offs_s[:, None]  # [BS, BM]
    row_ok = position_ok[:, None] & (offs_m[None, :] < num_frames)  # [BS, BM]
    q = tl.load(
        q_base + q_token[:, :, None] * stride_qn + offs_d[None, None, :] * stride_qd,
        mask=row_ok[:, :, None] & d_ok[None, None, :],
        other=0.0,
    )
    if UPCAST_OPERANDS:
        q = q.to(tl.float32)

    k_base = k_ptr + b.to(tl.int64) * stride_kb + kv_h.to(tl.int64) * stride_kh
    row_max = tl.full([BLOCK_S, BLOCK_M], float("-inf"), tl.float32)  # running max, log2 units
    diag_sum = tl.zeros([BLOCK_S, BLOCK_M], tl.float32)  # exp2(l_tt - row_max)
    off_sum = tl.zeros([BLOCK_S, BLOCK_M], tl.float32)  # sum_{j != t} exp2(l_tj - row_max)
    for start_n in range(0, num_frames, BLOCK_N):
        key_frame = start_n + offs_n  # [BN]
        key_ok = key_frame < num_frames
        k_token = key_frame[None, :].to(tl.int64) * num_positions + offs_s[:, None]  # [BS, BN]
        # k^T tile [BS, BD, BN]
        k = tl.load(
            k_base + k_token[:, None, :] * stride_kn + offs_d[None, :, None] * stride_kd,
            mask=position_ok[:, None, None] & d_ok[None, :, None] & key_ok[None, None, :],
            other=0.0,
        )
        if UPCAST_OPERANDS:
            k = k.to(tl.float32)
        if IEEE_DOT:
            logits = tl.dot(q, k, input_precision="ieee")  # [BS, BM, BN] float32
        else:
            logits = tl.dot(q, k)  # [BS, BM, BN] float32 accumulation of fp16/bf16 products
        logits = tl.where(key_ok[None, None, :], logits * qk_scale, float("-inf"))

        # Online softmax. Every chunk holds at least one real key frame, so new_max is finite.
        new_max = tl.maximum(row_max, tl.max(logits, axis=2))  # [BS, BM]
        correction = tl.exp2(row_max - new_max)
        p = tl.exp2(logits - new_max[:, :, None])  # [BS, BM, BN]; masked keys give 0
        is_diag = offs_m[None, :, None] == key_frame[None, None, :]  # [1, BM, BN]
        diag_sum = diag_sum * correction + tl.sum(tl.where(is_diag, p, 0.0), axis=2)
        off_sum = off_sum * correction + tl.sum(tl.where(is_diag, 0.0, p), axis=2)
        row_max = new_max

    off_mass = off_sum / (off_sum + diag_sum)  # [BS, BM]: sum_{j != t} A[t, j], no cancellation
    off_mass = tl.where(row_ok, off_mass, 0.0)
    partial = tl.sum(tl.sum(off_mass, axis=1), axis=0)
    tl.store(partial_ptr + batch_head.to(tl.int64) * tl.num_programs(0) + tile, partial)


def _launch_config(num_frames: int, num_positions: int, head_dim: int,
                   dtype: torch.dtype = torch.float16) -> dict:
    """Tile sizes: ~128 rows (positions x query frames) per program, F chunked by at most 64."""
    block_m = frame_block(num_frames)
    block_d = head_dim_block(head_dim)
    rows = 128 if block_d <= 64 else 64  # keep the q tile + logits within the register budget
    if dtype == torch.float32:  # fp32 dots run on FMA units and stage operands in shared memory:
        rows //= 2  # half the rows keeps F = 256 within sm_80's 163 KiB
    block_s = max(1, min(rows // block_m, triton.next_power_of_2(num_positions)))
    return dict(BLOCK_S=block_s, BLOCK_M=block_m, BLOCK_N=block_m, BLOCK_D=block_d,
                num_warps=4 if block_s * block_m * block_d <= 8192 else 8)


def per_batch_cross_frame_intensity(
    query: torch.Tensor,  # [B, H, F*S, D], any strides
    key: torch.Tensor,  # [B, Hk, F*S, D], any strides, H % Hk == 0
    num_frames: int,
    scale: float,
) -> torch.Tensor:  # [B] float32
    """Per-batch CFI (the backend contract of ``eav_kernels.backends``): ``[B]`` float32.

    Inputs are not copied. ``num_frames == 1`` gives zeros (no cross-frame pairs).
    """
    check_device(query, key)
    batch, heads, tokens, head_dim = query.shape
    num_positions = tokens // num_frames
    if num_frames == 1:
        return torch.zeros(batch, dtype=torch.float32, device=query.device)
    config = _launch_config(num_frames, num_positions, head_dim, query.dtype)
    num_tiles = triton.cdiv(num_positions, config["BLOCK_S"]) * triton.cdiv(num_frames, config["BLOCK_M"])
    partials = torch.empty(batch, heads, num_tiles, dtype=torch.float32, device=query.device)
    grid = (num_tiles, batch * heads)
    cross_frame_intensity_kernel[grid](
        query, key, partials,
        *query.stride(), *key.stride(),
        heads, heads // key.shape[1], num_positions, num_frames, head_dim,
        scale * LOG2_E,
        UPCAST_OPERANDS=upcast_operands(),
        IEEE_DOT=query.dtype == torch.float32,
        **config,
    )
    # Fixed-order reduction of fixed-size partials: deterministic.
    rows = heads * num_positions * num_frames * (num_frames - 1)
    return (partials.double().sum(dim=(1, 2)) / rows).to(torch.float32)
