"""Temporal attention + cross-frame intensity in one pass (docs/design.md, contract 2).

Models such as Latte run attention whose sequence *is* the frames: a batch of ``B*S`` sequences
(one per spatial position) of length F, ``[B*S, H, F, D]``. This kernel is the usual flash
forward -- output and log-sum-exp -- that also keeps, per row, the diagonal and off-diagonal
softmax mass, so the cross-frame intensity of the same attention costs nothing extra.

* one program per (head, block of ``BLOCK_SEQ`` sequences, block of ``BLOCK_M`` query frames);
  q, k, v are read in place through their strides;
* online softmax over key-frame chunks of ``BLOCK_N`` frames (F of 256 and more works);
* per row: running max, diagonal sum and off-diagonal sum (the softmax denominator is their sum);
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

from ._common import LOG2_E, check_device, frame_block, head_dim_block, upcast_operands

__all__ = ["temporal_attention_kernel", "TemporalAttention", "temporal_attention_with_cfi"]

LN_2 = 0.6931471805599453


@triton.jit
def temporal_attention_kernel(
    q_ptr,  # [N_seq, H, F, D], any strides, fp32/fp16/bf16
    k_ptr,  # [N_seq, Hk, F, D], any strides, same dtype
    v_ptr,  # [N_seq, Hk, F, Dv], any strides, same dtype
    out_ptr,  # [N_seq, H, F, Dv], any strides, q's dtype (output)
    lse_ptr,  # [N_seq, H, F] float32, contiguous (output, natural log)
    partial_ptr,  # [N_seq, H, NUM_QUERY_BLOCKS] float32, contiguous (output: off-diagonal mass)
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_on, stride_od,
    num_sequences,  # N_seq
    num_heads,  # H
    group_size,  # H // Hk (GQA)
    num_frames,  # F (the sequence length)
    head_dim,  # D
    value_dim,  # Dv
    qk_scale,  # scale * log2(e)
    BLOCK_SEQ: tl.constexpr,  # sequences per program (the dots' batch dimension)
    BLOCK_M: tl.constexpr,  # query frames per program, power of two >= 16
    BLOCK_N: tl.constexpr,  # key frames per online-softmax chunk, power of two >= 16
    BLOCK_D: tl.constexpr,  # head dim padded to a power of two >= 16
    BLOCK_DV: tl.constexpr,  # value dim padded to a power of two >= 16
    UPCAST_OPERANDS: tl.constexpr,  # interpreter: dots in float32 (it multiplies bf16 bits)
    IEEE_DOT: tl.constexpr,  # float32 inputs: full-precision dots, not tf32
):
    tile = tl.program_id(0)  # (sequence block, query-frame block)
    h = tl.program_id(1)
    kv_h = h // group_size
    num_query_blocks = tl.cdiv(num_frames, BLOCK_M)
    sequence_block = tile // num_query_blocks
    query_block = tile % num_query_blocks

    offs_b = sequence_block * BLOCK_SEQ + tl.arange(0, BLOCK_SEQ)  # [BSEQ] sequences
    offs_m = query_block * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM] query frames
    offs_n = tl.arange(0, BLOCK_N)  # [BN]
    offs_d = tl.arange(0, BLOCK_D)  # [BD]
    offs_dv = tl.arange(0, BLOCK_DV)  # [BDV]
    sequence_ok = offs_b < num_sequences
    row_ok = sequence_ok[:, None] & (offs_m[None, :] < num_frames)  # [BSEQ, BM]
    seq64 = offs_b.to(tl.int64)

    # q tile [BSEQ, BM, BD]
    q_rows = q_ptr + seq64[:, None] * stride_qb + h.to(tl.int64) * stride_qh + offs_m[None, :] * stride_qn
    q = tl.load(
        q_rows[:, :, None] + offs_d[None, None, :] * stride_qd,
        mask=row_ok[:, :, None] & (offs_d < head_dim)[None, None, :],
        other=0.0,
    )
    if UPCAST_OPERANDS:
        q = q.to(tl.float32)

    k_seq = k_ptr + seq64 * stride_kb + kv_h.to(tl.int64) * stride_kh  # [BSEQ]
    v_seq = v_ptr + seq64 * stride_vb + kv_h.to(tl.int64) * stride_vh  # [BSEQ]
    row_max = tl.full([BLOCK_SEQ, BLOCK_M], float("-inf"), tl.float32)  # log2 units
    diag_sum = tl.zeros([BLOCK_SEQ, BLOCK_M], tl.float32)
    off_sum = tl.zeros([BLOCK_SEQ, BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_SEQ, BLOCK_M, BLOCK_DV], tl.float32)  # unnormalised output
    for start_n in range(0, num_frames, BLOCK_N):
        key_frame = start_n + offs_n  # [BN]
        key_ok = key_frame < num_frames
        # k^T tile [BSEQ, BD, BN]
        k = tl.load(
            k_seq[:, None, None] + key_frame[None, None, :] * stride_kn + offs_d[None, :, None] * stride_kd,
            mask=sequence_ok[:, None, None] & (offs_d < head_dim)[None, :, None] & key_ok[None, None, :],
            other=0.0,
        )
        # v tile [BSEQ, BN, BDV]
        v = tl.load(
            v_seq[:, None, None] + key_frame[None, :, None] * stride_vn + offs_dv[None, None, :] * stride_vd,
            mask=sequence_ok[:, None, None] & key_ok[None, :, None] & (offs_dv < value_dim)[None, None, :],
            other=0.0,
        )
        if UPCAST_OPERANDS:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        if IEEE_DOT:
            logits = tl.dot(q, k, input_precision="ieee")  # [BSEQ, BM, BN] float32
        else:
            logits = tl.dot(q, k)  # [BSEQ, BM, BN], fp16/bf16 operands, float32 accumulation
        logits = tl.where(key_ok[None, None, :], logits * qk_scale, float("-inf"))

        # Online softmax; every chunk holds a real key frame, so new_max is finite.
        new_max = tl.maximum(row_max, tl.max(logits, axis=2))  # [BSEQ, BM]
        correction = tl.exp2(row_max - new_max)
        p = tl.exp2(logits - new_max[:, :, None])  # [BSEQ, BM, BN]
        is_diag = offs_m[None, :, None] == key_frame[None, None, :]
        diag_sum = diag_sum * correction + tl.sum(tl.where(is_diag, p, 0.0), axis=2)
        off_sum = off_sum * correction + tl.sum(tl.where(is_diag, 0.0, p), axis=2)
        acc = acc * correction[:, :, None]
        if IEEE_DOT:
            acc = tl.dot(p, v, acc, input_precision="ieee")
        else:
            acc = tl.dot(p.to(v.dtype), v, acc)  # [BSEQ, BM, BDV]
        row_max = new_max

    denominator = off_sum + diag_sum  # [BSEQ, BM]
    out = acc / denominator[:, :, None]
    o_rows = out_ptr + seq64[:, None] * stride_ob + h.to(tl.int64) * stride_oh + offs_m[None, :] * stride_on
    tl.store(
        o_rows[:, :, None] + offs_dv[None, None, :] * stride_od,
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, :, None] & (offs_dv < value_dim)[None, None, :],
    )
    lse = (row_max + tl.log2(denominator)) * 0.6931471805599453  # natural log
    lse_offsets = (seq64[:, None] * num_heads + h) * num_frames + offs_m[None, :]  # [BSEQ, BM]
    tl.store(lse_ptr + lse_offsets, lse, mask=row_ok)

    off_mass = tl.where(row_ok, off_sum / denominator, 0.0)  # [BSEQ, BM]
    partial_offsets = (seq64 * num_heads + h) * num_query_blocks + query_block  # [BSEQ]
    tl.store(partial_ptr + partial_offsets, tl.sum(off_mass, axis=1), mask=sequence_ok)


class TemporalAttention(NamedTuple):
    out: torch.Tensor  # [N_seq, H, F, Dv], the query's dtype
    lse: torch.Tensor  # [N_seq, H, F] float32, natural log-sum-exp of each row's scaled logits
    cross_frame_intensity: torch.Tensor  # [N_seq] float32, CFI of each sequence (0 when F == 1)


def _launch_config(num_frames: int, num_sequences: int, head_dim: int, value_dim: int,
                   dtype: torch.dtype = torch.float16) -> dict:
    """~64-128 rows (sequences x query frames) per program; F chunked by at most 64 frames."""
    block_d, block_dv = head_dim_block(head_dim), head_dim_block(value_dim)
    wide = max(block_d, block_dv) > 64
    rows = 64 if wide else 128  # q tile + accumulator in registers
    largest_frame_block = 64
    if dtype == torch.float32:  # fp32 dots run on FMA units and stage operands in shared memory:
        rows //= 2  # smaller tiles keep F = 256, D = 128 within sm_80's 163 KiB
        largest_frame_block = 32 if wide else 64
    block_m = frame_block(num_frames, largest_frame_block)
    block_seq = max(1, min(rows // block_m, triton.next_power_of_2(num_sequences)))
    return dict(BLOCK_SEQ=block_seq, BLOCK_M=block_m, BLOCK_N=block_m, BLOCK_D=block_d,
                BLOCK_DV=block_dv, num_warps=4 if block_seq * block_m <= 64 else 8)


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
    scale = head_dim ** -0.5 if scale is None else float(scale)
    config = _launch_config(num_frames, num_sequences, head_dim, value_dim, query.dtype)
    num_query_blocks = triton.cdiv(num_frames, config["BLOCK_M"])
    device = query.device
    out = torch.empty(num_sequences, heads, num_frames, value_dim, dtype=query.dtype, device=device)
    lse = torch.empty(num_sequences, heads, num_frames, dtype=torch.float32, device=device)
    partials = torch.empty(num_sequences, heads, num_query_blocks, dtype=torch.float32, device=device)
    grid = (triton.cdiv(num_sequences, config["BLOCK_SEQ"]) * num_query_blocks, heads)
    temporal_attention_kernel[grid](
        query, key, value, out, lse, partials,
        *query.stride(), *key.stride(), *value.stride(), *out.stride(),
        num_sequences, heads, heads // key.shape[1], num_frames, head_dim, value_dim,
        scale * LOG2_E,
        UPCAST_OPERANDS=upcast_operands(),
        IEEE_DOT=query.dtype == torch.float32,
        **config,
    )
    if num_frames == 1:
        cfi = torch.zeros(num_sequences, dtype=torch.float32, device=device)
    else:  # fixed-order reduction of fixed-size partials: deterministic
        rows = heads * num_frames * (num_frames - 1)
        cfi = (partials.double().sum(dim=(1, 2)) / rows).to(torch.float32)
    return TemporalAttention(out, lse, cfi)
