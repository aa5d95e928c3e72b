"""What both Triton kernels share: the online-softmax row mass, tile sizes, launch checks.

The two ``@triton.jit`` helpers are the one place where a key chunk's logits become the running
per-row sums (the diagonal kept apart from the off-diagonal terms), as ``RowMass`` in
``csrc/cuda/row_softmax.cuh`` is for the CUDA kernels.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from ..capabilities import triton_interpreting

LOG2_E = 1.4426950408889634  # logits are scaled by scale * log2(e) so the kernels can use exp2
MAX_GRID_PROGRAMS = 2**31 - 1  # grid axis 0 (the only axis the kernels use); axes 1, 2: 65535
QUERY_FRAMES_PER_WARP = 16  # BLOCK_M: one mma m16 tile of query frames per (sequence, warp)


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``), as the
    package found it once (``eav_kernels.capabilities.triton_interpreting``): Triton reads the
    variable when a ``@triton.jit`` function is decorated, i.e. when this package is imported, so
    set it before the first import of ``eav_kernels.triton_kernels``.
    """
    return triton_interpreting()


def upcast_operands() -> bool:
    """The interpreter multiplies bfloat16 *bits* in ``tl.dot``: upcast to float32 after loading.

    On a GPU the dot operands stay in fp16/bf16 (tensor cores) with float32 accumulation.
    """
    return interpreting()


def head_dim_block(head_dim: int) -> int:
    """Head dim padded to a power of two >= 16 (D = 40, 72 are masked)."""
    return max(16, triton.next_power_of_2(head_dim))


FP32_DOT_CHUNK = 32  # fp32 FMA dots: K (head dims) and N (value dims) per dot
SCALAR_LOAD_CHUNK = 64  # fp16/bf16 rows loaded element by element: dims per dot


def warp_tiles(num_frames: int, num_batched: int, block_d: int, dtype: torch.dtype,
               vector_loads: bool, block_dv: int = 0) -> dict:
    """Tile sizes of a batched 3-D ``tl.dot`` kernel, sized to its warps.

    Triton gives a 3-D dot's warps to the batch dimension (TTGIR ``warpsPerCTA = [num_warps, 1,
    1]``): with fewer batch entries (positions, sequences) than warps every warp would compute the
    whole tile again. So the batch block equals ``num_warps`` (4, fewer only when there are fewer
    than 4 positions or sequences), each warp owns one 16-frame query tile of its own batch entry,
    and key frames come in chunks of 32, or 16 when F <= 16 or a warp holds much per row: the
    padded head dim ``block_d`` plus the padded value dim ``block_dv`` of a P V accumulator over
    128, or the narrow cases of ``dot_chunk`` (which also cut the head dim into ``D_CHUNK``
    slices). This keeps a warp's fragments in registers:
    tests/test_triton_aot.py reads, for every launch at the test and benchmark shapes, no
    local-memory stack and no repeated warp work (Triton 3.6 and 3.9, sm_80 and sm_90).
    """
    num_warps = min(4, triton.next_power_of_2(max(1, num_batched)))
    narrow_chunk = dot_chunk(dtype, vector_loads)
    block_n = 16 if num_frames <= 16 or block_d + block_dv > 128 or narrow_chunk else 32
    return dict(BLOCK_M=QUERY_FRAMES_PER_WARP, BLOCK_N=block_n, D_CHUNK=min(block_d, narrow_chunk or block_d),
                num_warps=num_warps, batch_block=num_warps)


def dot_chunk(dtype: torch.dtype, vector_loads: bool) -> int | None:
    """Dims per dot where whole rows per thread do not fit in registers (None: whole rows).

    fp32 dots run on FMA units, whose operand layouts hold a whole K slice per thread; rows that
    cannot be read as 16-byte vectors (``vector_loads`` false) need an address per element.
    """
    if dtype == torch.float32:
        return FP32_DOT_CHUNK if vector_loads else FP32_DOT_CHUNK // 2
    return None if vector_loads else SCALAR_LOAD_CHUNK


def row_alignment(*tensors: torch.Tensor) -> int:
    """Bytes (16 at most) that every row start of every tensor is a multiple of: the largest power
    of two dividing each base address and each row stride (all strides but the last, over the
    dimensions longer than one). Given to the kernels as a hint, 16 lets them load 16-byte vectors
    where Triton's own specialization (divisible by 16 *elements*, or not) would load scalars, as
    for D = 72 (a row stride of 72 or H * 72 elements)."""
    alignment = 16
    for tensor in tensors:
        size = tensor.element_size()
        for value in [tensor.data_ptr()] + [stride * size for stride, length in
                                            zip(tensor.stride()[:-1], tensor.shape[:-1]) if length > 1]:
            while value % alignment:
                alignment //= 2
    return alignment


def vector_loads(*tensors: torch.Tensor) -> bool:
    """True when every row of every tensor can be read as 16-byte vectors: unit stride along the
    last dim and row starts on 16 bytes (``row_alignment``)."""
    return row_alignment(*tensors) == 16 and all(t.stride(-1) == 1 or t.shape[-1] == 1 for t in tensors)


def flat_grid(num_programs: int, what: str) -> tuple[int]:
    """A 1-D grid (axis 0 allows 2**31 - 1 programs; B*H on axis 1 would stop at 65535)."""
    if num_programs > MAX_GRID_PROGRAMS:
        raise ValueError(f"{what} needs {num_programs} Triton programs, more than one launch allows "
                         f"({MAX_GRID_PROGRAMS})")
    return (num_programs,)


def launch_device(tensor: torch.Tensor) -> contextlib.AbstractContextManager:
    """Triton launches on the *current* CUDA device: make it the tensors' device for the launch."""
    if tensor.device.type == "cuda":
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()


def check_device(*tensors: torch.Tensor) -> None:
    devices = {tensor.device for tensor in tensors}
    if len(devices) > 1:
        raise ValueError(f"the tensors are on different devices: {sorted(map(str, devices))}")
    for tensor in tensors:
        if tensor.device.type == "cuda":
            continue
        if tensor.device.type == "cpu" and interpreting():
            continue
        raise ValueError(
            f"Triton kernels run on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), "
            f"got a {tensor.device.type} tensor"
        )


@triton.jit
def chunk_logits(
    q_rows,  # [BATCH, BM] pointers to the query rows (frame t of each batch entry)
    row_ok,  # [BATCH, BM] real query rows
    stride_qd,
    k_rows,  # [BATCH, BN] pointers to the key rows of this chunk
    batch_ok,  # [BATCH] real batch entries (positions, sequences)
    key_ok,  # [BN] real key frames
    stride_kd,
    qk_scale,  # scale * log2(e)
    HEAD_DIM: tl.constexpr,  # D
    BLOCK_D: tl.constexpr,  # D padded to a power of two
    D_CHUNK: tl.constexpr,  # head dims per dot: BLOCK_D (tensor cores), less for fp32 FMA dots
    UPCAST_OPERANDS: tl.constexpr,  # interpreter: dot in float32 (it multiplies bf16 bits)
    IEEE_DOT: tl.constexpr,  # float32 inputs: full-precision dot, not tf32
):
    """Scaled logits ``[BATCH, BM, BN]`` of one key chunk in log2 units, ``-inf`` for padded keys.

    Loads q ``[BATCH, BM, D_CHUNK]`` and k^T ``[BATCH, D_CHUNK, BN]`` slices and sums their batched
    dots over the head dim. fp16/bf16: one tensor-core dot (fp32 accumulation). fp32: FMA dots,
    whose operand layouts hold a whole K slice per thread, so K is cut into D_CHUNK slices.
    """
    for chunk in tl.static_range(BLOCK_D // D_CHUNK):
        offs_d = chunk * D_CHUNK + tl.arange(0, D_CHUNK)  # [DC]
        d_ok = offs_d < HEAD_DIM
        offs_d64 = offs_d.to(tl.int64)  # d * stride can pass 2**31 for strided views
        q = tl.load(q_rows[:, :, None] + offs_d64[None, None, :] * stride_qd,
                    mask=row_ok[:, :, None] & d_ok[None, None, :], other=0.0)  # [BATCH, BM, DC]
        k = tl.load(k_rows[:, None, :] + offs_d64[None, :, None] * stride_kd,
                    mask=batch_ok[:, None, None] & d_ok[None, :, None] & key_ok[None, None, :],
                    other=0.0)  # [BATCH, DC, BN]
        if UPCAST_OPERANDS:
            q = q.to(tl.float32)
            k = k.to(tl.float32)
        if IEEE_DOT:
            part = tl.dot(q, k, input_precision="ieee")
        else:
            part = tl.dot(q, k)
        if chunk == 0:
            logits = part
        else:
            logits += part
    return tl.where(key_ok[None, None, :], logits * qk_scale, float("-inf"))


@triton.jit
def row_mass_update(
    logits,  # [BATCH, BM, BN] float32, log2 units, -inf for padded keys
    is_diag,  # [1, BM, BN] query frame == key frame
    row_max,  # [BATCH, BM] running max of the row's logits (-inf before the first chunk)
    diag_sum,  # [BATCH, BM] exp2(l_tt - row_max)
    off_sum,  # [BATCH, BM] sum_{j != t} exp2(l_tj - row_max)
):
    """One key chunk of the online softmax with the diagonal term kept apart.

    Every chunk holds at least one real key frame, so the new max is finite (no ``-inf - -inf``).
    Returns ``(row_max, diag_sum, off_sum, p, correction)``: the updated running sums, the chunk's
    unnormalised probabilities ``p`` ``[BATCH, BM, BN]`` (relative to the new max) and the factor
    ``correction`` ``[BATCH, BM]`` that rescaled the old sums (for an output accumulator).
    """
    new_max = tl.maximum(row_max, tl.max(logits, axis=2))
    correction = tl.exp2(row_max - new_max)
    p = tl.exp2(logits - new_max[:, :, None])
    diag_sum = diag_sum * correction + tl.sum(tl.where(is_diag, p, 0.0), axis=2)
    off_sum = off_sum * correction + tl.sum(tl.where(is_diag, 0.0, p), axis=2)
    return new_max, diag_sum, off_sum, p, correction


@triton.jit
def off_diagonal_mass(diag_sum, off_sum):  # [BATCH, BM] each -> [BATCH, BM]
    """``sum_{j != t} A[t, j] = off / (off + diag)``: no ``1 - A[t, t]`` cancellation on strongly
    diagonal rows; round-to-nearest division (plain ``/`` is ``div.full.f32``, 2 ulp, on a GPU)."""
    return tl.math.div_rn(off_sum, off_sum + diag_sum)
