"""Temporal attention + cross-frame intensity in one pass (docs/design.md, contract 2).

Models such as Latte run attention whose sequence *is* the frames: a batch of ``B*S`` sequences
(one per spatial position) of length F, ``[B*S, H, F, D]``. This kernel is the usual flash
forward -- the output only -- that also keeps, per row, the diagonal and off-diagonal
softmax mass, so the cross-frame intensity of the same attention costs nothing extra.

* one program per (head, block of ``BLOCK_SEQ`` sequences, block of ``BLOCK_M = 16`` query
  frames), all on grid axis 0; each warp owns one sequence (``launch_config``); q, k, v are read
  in place through their strides;
* online softmax over key-frame chunks of ``BLOCK_N`` frames (F of 256 and more works);
* per row: running max, diagonal sum and off-diagonal sum (the softmax denominator is their sum),
  updated by ``row_mass_update`` (``_common.py``), the same code as the CFI kernel's;
  ``off / (off + diag)`` is the row's off-diagonal mass, free of cancellation;
* each program writes, per sequence, its summed off-diagonal mass to ``[N_seq, H, query blocks]``
  float32; the host reduces it in a fixed order. No atomics, reproducible bit for bit.

Packing: vendor SDPA kernels put one sequence in a 128-row tile, so at F = 16..64 most of the tile
is padding. Here a tile is ``[BLOCK_SEQ sequences, BLOCK_M frames, D]`` and both products are
*batched* ``tl.dot`` s (``[BSEQ, BM, D] @ [BSEQ, D, BN]`` and ``[BSEQ, BM, BN] @ [BSEQ, BN, Dv]``):
several short sequences share a program and each one's F x F block is a full MMA tile once F is
padded to 16. Packing sequences into the rows of one 2-D tile instead would need a block-diagonal
mask and waste ``BLOCK_SEQ``x the MMA work of both products. (Triton lowers batched dots to
``mma.sync``; Hopper's wgmma has no batch dimension.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ..problem import default_scale
from ._common import (
    LOG2_E,
    check_device,
    chunk_logits,
    dot_chunk,
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

__all__ = ["temporal_attention_kernel", "TemporalAttention", "launch_config", "temporal_attention_with_cfi"]


@triton.jit
def temporal_attention_kernel(
    q_ptr,  # [N_seq, H, F, D], any strides, fp32/fp16/bf16
    k_ptr,  # [N_seq, Hk, F, D], any strides, same dtype
    v_ptr,  # [N_seq, Hk, F, Dv], any strides, same dtype
    out_ptr,  # [N_seq, H, F, Dv], any strides, q's dtype (output)
    partial_ptr,  # [N_seq, H, NUM_QUERY_BLOCKS] float32, contiguous (output: off-diagonal mass)
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_on, stride_od,
    num_sequences,  # N_seq
    num_heads,  # H
    group_size,  # H // Hk (GQA)
    num_frames,  # F (the sequence length)
    qk_scale,  # scale * log2(e)
    BLOCK_SEQ: tl.constexpr,  # sequences per program (the dots' batch dimension, >= num_warps)
    BLOCK_M: tl.constexpr,  # query frames per program (16: one mma tile per warp)
    BLOCK_N: tl.constexpr,  # key frames per online-softmax chunk, power of two >= 16
    BLOCK_D: tl.constexpr,  # head dim padded to a power of two >= 16
    BLOCK_DV: tl.constexpr,  # value dim padded to a power of two >= 16
    HEAD_DIM: tl.constexpr,  # D, a constant: the mask d < D then spans whole 16-byte vectors
    VALUE_DIM: tl.constexpr,  # Dv, likewise
    D_CHUNK: tl.constexpr,  # head dims per QK^T dot (chunk_logits)
    ROW_ALIGN: tl.constexpr,  # bytes every q, k, v, out row start is a multiple of (16: vectors)
    UPCAST_OPERANDS: tl.constexpr,  # interpreter: dots in float32 (it multiplies bf16 bits)
    IEEE_DOT: tl.constexpr,  # float32 inputs: full-precision dots, not tf32
):
    # One grid axis: program = h * tiles_per_head + (sequence block, query block).
    num_query_blocks = tl.cdiv(num_frames, BLOCK_M)
    tiles_per_head = tl.cdiv(num_sequences, BLOCK_SEQ) * num_query_blocks
    program = tl.program_id(0)
    h = program // tiles_per_head
    tile = program % tiles_per_head
    kv_h = h // group_size
    sequence_block = tile // num_query_blocks
    query_block = tile % num_query_blocks

    offs_b = sequence_block * BLOCK_SEQ + tl.arange(0, BLOCK_SEQ)  # [BSEQ] sequences
    offs_m = query_block * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM] query frames
    offs_n = tl.arange(0, BLOCK_N)  # [BN]
    offs_dv = tl.arange(0, BLOCK_DV)  # [BDV]
    sequence_ok = offs_b < num_sequences
    row_ok = sequence_ok[:, None] & (offs_m[None, :] < num_frames)  # [BSEQ, BM]
    # 64-bit offsets: every index * stride product can pass 2**31 at real sizes and strides.
    seq64 = offs_b.to(tl.int64)
    offs_m64 = offs_m.to(tl.int64)
    offs_dv64 = offs_dv.to(tl.int64)
    h64 = h.to(tl.int64)

    # q rows, read one key chunk at a time (chunk_logits)
    q_rows = q_ptr + seq64[:, None] * stride_qb + h64 * stride_qh + offs_m64[None, :] * stride_qn
    q_rows = tl.multiple_of(q_rows, [ROW_ALIGN, ROW_ALIGN])  # [BSEQ, BM]

    k_seq = k_ptr + seq64 * stride_kb + kv_h.to(tl.int64) * stride_kh  # [BSEQ]
    v_seq = v_ptr + seq64 * stride_vb + kv_h.to(tl.int64) * stride_vh  # [BSEQ]
    row_max = tl.full([BLOCK_SEQ, BLOCK_M], float("-inf"), tl.float32)  # log2 units
    diag_sum = tl.zeros([BLOCK_SEQ, BLOCK_M], tl.float32)
    off_sum = tl.zeros([BLOCK_SEQ, BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_SEQ, BLOCK_M, BLOCK_DV], tl.float32)  # unnormalised output
    for start_n in range(0, num_frames, BLOCK_N):
        key_frame = start_n + offs_n  # [BN]
        key_ok = key_frame < num_frames
        key_frame64 = key_frame.to(tl.int64)
        k_rows = tl.multiple_of(k_seq[:, None] + key_frame64[None, :] * stride_kn, [ROW_ALIGN, ROW_ALIGN])
        v_rows = tl.multiple_of(v_seq[:, None] + key_frame64[None, :] * stride_vn, [ROW_ALIGN, ROW_ALIGN])
        logits = chunk_logits(q_rows, row_ok, stride_qd, k_rows, sequence_ok, key_ok, stride_kd, qk_scale,
                              HEAD_DIM, BLOCK_D, D_CHUNK, UPCAST_OPERANDS, IEEE_DOT)  # [BSEQ, BM, BN]
        # v tile [BSEQ, BN, BDV]
        v = tl.load(
            v_rows[:, :, None] + offs_dv64[None, None, :] * stride_vd,
            mask=sequence_ok[:, None, None] & key_ok[None, :, None] & (offs_dv < VALUE_DIM)[None, None, :],
            other=0.0,
        )
        if UPCAST_OPERANDS:
            v = v.to(tl.float32)
        is_diag = offs_m[None, :, None] == key_frame[None, None, :]  # [1, BM, BN]
        row_max, diag_sum, off_sum, p, correction = row_mass_update(logits, is_diag, row_max,
                                                                    diag_sum, off_sum)
        acc = acc * correction[:, :, None]
        if IEEE_DOT:
            acc = tl.dot(p, v, acc, input_precision="ieee")
        else:
            acc = tl.dot(p.to(v.dtype), v, acc)  # [BSEQ, BM, BDV]

    denominator = off_sum + diag_sum  # [BSEQ, BM]
    out = acc / denominator[:, :, None]
    o_rows = out_ptr + seq64[:, None] * stride_ob + h64 * stride_oh + offs_m64[None, :] * stride_on
    o_rows = tl.multiple_of(o_rows, [ROW_ALIGN, ROW_ALIGN])  # [BSEQ, BM]
    tl.store(
        o_rows[:, :, None] + offs_dv64[None, None, :] * stride_od,
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, :, None] & (offs_dv < VALUE_DIM)[None, None, :],
    )

    off_mass = tl.where(row_ok, off_diagonal_mass(diag_sum, off_sum), 0.0)  # [BSEQ, BM]
    partial_offsets = (seq64 * num_heads + h) * num_query_blocks + query_block  # [BSEQ]
    tl.store(partial_ptr + partial_offsets, tl.sum(off_mass, axis=1), mask=sequence_ok)


class TemporalAttention(NamedTuple):
    out: torch.Tensor  # [N_seq, H, F, Dv], the query's dtype
    cross_frame_intensity: torch.Tensor  # [N_seq] float32, CFI of each sequence (0 when F == 1)


def launch_config(num_frames: int, num_sequences: int, head_dim: int, value_dim: int,
                  dtype: torch.dtype, vector_loads: bool = True) -> dict:
    """Tile sizes and warps (``_common.warp_tiles``): ``BLOCK_SEQ`` sequences, one per warp.

    ``VALUE_CHUNK``: value dims per launch. In the narrow cases of ``dot_chunk`` (fp32, or rows
    that cannot be read as vectors) a whole value row per thread does not fit: wide values take
    several launches, each of which recomputes the logits; the common case takes one.
    """
    narrow_chunk = dot_chunk(dtype, vector_loads)
    value_chunk = min(value_dim, narrow_chunk) if narrow_chunk else value_dim
    block_d, block_dv = head_dim_block(head_dim), head_dim_block(value_chunk)
    tiles = warp_tiles(num_frames, num_sequences, block_d, dtype, vector_loads, block_dv)
    return dict(BLOCK_SEQ=tiles["batch_block"], BLOCK_M=tiles["BLOCK_M"], BLOCK_N=tiles["BLOCK_N"],
                BLOCK_D=block_d, BLOCK_DV=block_dv, D_CHUNK=tiles["D_CHUNK"],
                VALUE_CHUNK=value_chunk, num_warps=tiles["num_warps"])


def temporal_attention_with_cfi(
    query: torch.Tensor,  # [N_seq, H, F, D], any strides (N_seq = B*S sequences of F frames)
    key: torch.Tensor,  # [N_seq, Hk, F, D], H % Hk == 0
    value: torch.Tensor,  # [N_seq, Hk, F, Dv]
    scale: float | None = None,
) -> TemporalAttention:
    """Non-causal, unmasked attention over the frames, and each sequence's cross-frame intensity.

    ``out`` equals ``F.scaled_dot_product_attention(query, key, value, scale=scale,
    enable_gqa=True)``; ``cross_frame_intensity[i]`` equals
    ``cross_frame_intensity(query[i:i+1], key[i:i+1], num_frames=F, per_batch=True)``.
    Forward only (no autograd).
    """
    check_device(query, key, value)
    num_sequences, heads, num_frames, head_dim = query.shape
    value_dim = value.shape[-1]
    if key.shape[0] != num_sequences or value.shape[:3] != key.shape[:3] or key.shape[2:] != query.shape[2:]:
        raise ValueError(
            f"query {tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)} "
            "must be [N_seq, H, F, D], [N_seq, Hk, F, D] and [N_seq, Hk, F, Dv]"
        )
    if heads % key.shape[1] != 0:
        raise ValueError(f"query heads ({heads}) must be a multiple of key heads ({key.shape[1]})")
    if not (query.dtype == key.dtype == value.dtype):
        raise TypeError(f"query, key and value dtypes differ: {query.dtype}, {key.dtype}, {value.dtype}")
    scale = default_scale(head_dim) if scale is None else float(scale)
    config = launch_config(num_frames, num_sequences, head_dim, value_dim, query.dtype,
                           vector_loads(query, key, value))
    value_chunk = config.pop("VALUE_CHUNK")
    num_query_blocks = triton.cdiv(num_frames, config["BLOCK_M"])
    device = query.device
    out = torch.empty(num_sequences, heads, num_frames, value_dim, dtype=query.dtype, device=device)
    partials = torch.empty(num_sequences, heads, num_query_blocks, dtype=torch.float32, device=device)
    tiles_per_head = triton.cdiv(num_sequences, config["BLOCK_SEQ"]) * num_query_blocks
    grid = flat_grid(heads * tiles_per_head, f"temporal attention of q {tuple(query.shape)}")
    with launch_device(query):
        for start in range(0, value_dim, value_chunk):  # one launch but in launch_config's narrow cases
            value_part, out_part = value[..., start : start + value_chunk], out[..., start : start + value_chunk]
            temporal_attention_kernel[grid](
                query, key, value_part, out_part, partials,
                *query.stride(), *key.stride(), *value_part.stride(), *out_part.stride(),
                num_sequences, heads, heads // key.shape[1], num_frames,
                scale * LOG2_E,
                HEAD_DIM=head_dim,
                VALUE_DIM=value_part.shape[-1],
                ROW_ALIGN=row_alignment(query, key, value_part, out_part),
                UPCAST_OPERANDS=upcast_operands(),
                IEEE_DOT=query.dtype == torch.float32,
                **config,
            )
    if num_frames == 1:
        cfi = torch.zeros(num_sequences, dtype=torch.float32, device=device)
    else:  # fixed-order reduction of fixed-size partials: deterministic
        rows = heads * num_frames * (num_frames - 1)
        cfi = (partials.double().sum(dim=(1, 2)) / rows).to(torch.float32)
    return TemporalAttention(out, cfi)
