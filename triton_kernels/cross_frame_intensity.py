"""Cross-frame intensity from q and k in one pass (docs/design.md, contract 1).

For every (batch b, head h, spatial position s) the F frames of that position form an F x F
softmax ``A = softmax_j(scale * <q[t*S+s], k[j*S+s]>)``; CFI is the mean of the off-diagonal
entries. A row of ``A`` needs only its log-sum-exp and its diagonal logit, so the kernel is a
flash-attention forward *without* the value product:

* one program per (b, h, block of ``BLOCK_S`` spatial positions, block of ``BLOCK_M = 16`` query
  frames), all on grid axis 0; each warp of a program owns one position (``launch_config``);
  q and k are read in place through their strides (token ``t * S + s``);
* online softmax over key-frame chunks of ``BLOCK_N`` frames, so F is unbounded (256 and more);
* per row it keeps two running sums rescaled to the running max: the diagonal term and the
  off-diagonal terms (``row_mass_update`` in ``_common.py``, shared with the temporal kernel).
  The off-diagonal mass is ``off / (off + diag)`` -- no ``1 - p_tt``, which
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

from ._common import (
    LOG2_E,
    check_device,
    chunk_logits,
    flat_grid,
    head_dim_block,
    launch_device,
    row_alignment,
    vector_loads,
    off_diagonal_mass,
    row_mass_update,
    upcast_operands,
    warp_tiles,
)

__all__ = ["cross_frame_intensity_kernel", "launch_config", "per_batch_cross_frame_intensity"]


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
    qk_scale,  # scale * log2(e)
    BLOCK_S: tl.constexpr,  # spatial positions per program (the dot's batch dimension, >= num_warps)
    BLOCK_M: tl.constexpr,  # query frames per program (16: one mma tile per warp)
    BLOCK_N: tl.constexpr,  # key frames per chunk of the online softmax, power of two >= 16
    BLOCK_D: tl.constexpr,  # head dim padded to a power of two >= 16
    HEAD_DIM: tl.constexpr,  # D, a constant: the mask d < D then spans whole 16-byte vectors
    D_CHUNK: tl.constexpr,  # head dims per dot (chunk_logits)
    ROW_ALIGN: tl.constexpr,  # bytes every q and k row start is a multiple of (16: vector loads)
    UPCAST_OPERANDS: tl.constexpr,  # interpreter: dot in float32 (it multiplies bf16 bits)
    IEEE_DOT: tl.constexpr,  # float32 inputs: full-precision dot, not tf32
):
    # One grid axis: program = (b * H + h) * tiles_per_head + (position block, query block).
    num_query_blocks = tl.cdiv(num_frames, BLOCK_M)
    tiles_per_head = tl.cdiv(num_positions, BLOCK_S) * num_query_blocks
    program = tl.program_id(0)
    batch_head = program // tiles_per_head
    tile = program % tiles_per_head
    b = batch_head // num_heads
    h = batch_head % num_heads
    kv_h = h // group_size
    position_block = tile // num_query_blocks
    query_block = tile % num_query_blocks

    offs_s = position_block * BLOCK_S + tl.arange(0, BLOCK_S)  # [BS] spatial positions
    offs_m = query_block * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM] query frames
    offs_n = tl.arange(0, BLOCK_N)  # [BN] key frames within a chunk
    position_ok = offs_s < num_positions

    # q rows: token t * S + s, read one key chunk at a time (chunk_logits).
    q_base = q_ptr + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
    q_token = offs_m[None, :].to(tl.int64) * num_positions + offs_s[:, None]  # [BS, BM]
    q_rows = tl.multiple_of(q_base + q_token * stride_qn, [ROW_ALIGN, ROW_ALIGN])  # [BS, BM]
    row_ok = position_ok[:, None] & (offs_m[None, :] < num_frames)  # [BS, BM]

    k_base = k_ptr + b.to(tl.int64) * stride_kb + kv_h.to(tl.int64) * stride_kh
    row_max = tl.full([BLOCK_S, BLOCK_M], float("-inf"), tl.float32)  # running max, log2 units
    diag_sum = tl.zeros([BLOCK_S, BLOCK_M], tl.float32)  # exp2(l_tt - row_max)
    off_sum = tl.zeros([BLOCK_S, BLOCK_M], tl.float32)  # sum_{j != t} exp2(l_tj - row_max)
    for start_n in range(0, num_frames, BLOCK_N):
        key_frame = start_n + offs_n  # [BN]
        key_ok = key_frame < num_frames
        k_token = key_frame[None, :].to(tl.int64) * num_positions + offs_s[:, None]  # [BS, BN]
        k_rows = tl.multiple_of(k_base + k_token * stride_kn, [ROW_ALIGN, ROW_ALIGN])  # [BS, BN]
        logits = chunk_logits(q_rows, row_ok, stride_qd, k_rows, position_ok, key_ok, stride_kd, qk_scale,
                              HEAD_DIM, BLOCK_D, D_CHUNK, UPCAST_OPERANDS, IEEE_DOT)  # [BS, BM, BN]
        is_diag = offs_m[None, :, None] == key_frame[None, None, :]  # [1, BM, BN]
        row_max, diag_sum, off_sum, _, _ = row_mass_update(logits, is_diag, row_max, diag_sum, off_sum)

    off_mass = tl.where(row_ok, off_diagonal_mass(diag_sum, off_sum), 0.0)  # [BS, BM]
    partial = tl.sum(tl.sum(off_mass, axis=1), axis=0)
    tl.store(partial_ptr + program.to(tl.int64), partial)


def launch_config(num_frames: int, num_positions: int, head_dim: int, dtype: torch.dtype,
                  vector_loads: bool = True) -> dict:
    """Tile sizes and warps (``_common.warp_tiles``): ``BLOCK_S`` positions, one per warp."""
    block_d = head_dim_block(head_dim)
    tiles = warp_tiles(num_frames, num_positions, block_d, dtype, vector_loads)
    return dict(BLOCK_S=tiles["batch_block"], BLOCK_M=tiles["BLOCK_M"], BLOCK_N=tiles["BLOCK_N"],
                BLOCK_D=block_d, D_CHUNK=tiles["D_CHUNK"], num_warps=tiles["num_warps"])


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
    config = launch_config(num_frames, num_positions, head_dim, query.dtype, vector_loads(query, key))
    num_tiles = triton.cdiv(num_positions, config["BLOCK_S"]) * triton.cdiv(num_frames, config["BLOCK_M"])
    partials = torch.empty(batch, heads, num_tiles, dtype=torch.float32, device=query.device)
    grid = flat_grid(batch * heads * num_tiles, f"CFI of q {tuple(query.shape)}")
    with launch_device(query):
        cross_frame_intensity_kernel[grid](
            query, key, partials,
            *query.stride(), *key.stride(),
            heads, heads // key.shape[1], num_positions, num_frames,
            scale * LOG2_E,
            HEAD_DIM=head_dim,
            ROW_ALIGN=row_alignment(query, key),
            UPCAST_OPERANDS=upcast_operands(),
            IEEE_DOT=query.dtype == torch.float32,
            **config,
        )
    # Fixed-order reduction of fixed-size partials: deterministic.
    rows = heads * num_positions * num_frames * (num_frames - 1)
    return (partials.double().sum(dim=(1, 2)) / rows).to(torch.float32)
