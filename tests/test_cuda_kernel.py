"""The CUDA kernel (torch.ops.eav.cross_frame_intensity on CUDA tensors) against the shared
FlashAttention-style contract (tests/contract.py). Needs a GPU and an extension built with CUDA
kernels: skipped with the reason otherwise. Run on a GPU machine with benchmarks/gpu_check.sh.

Inputs are made on the GPU in the target dtype and only then viewed (``random_query_key``), so the
transposed, strided and misaligned cases reach the kernel's non-16-byte paths and strides.
"""

from __future__ import annotations

import pytest
import torch

from contract import assert_meets_contract, random_query_key
from eav_kernels._extension import compiled_extension
from eav_kernels.backends import select_backend

def _skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible"
    extension = compiled_extension()
    if extension is None:
        return "eav_kernels._C is not built"
    if not extension.cuda_archs():
        return "eav_kernels._C was built without CUDA kernels (CPU torch, or EAV_SKIP_CUDA_BUILD)"
    return None


SKIP_REASON = _skip_reason()
# Every test collected and skipped with the reason (not the module: gpu_check.sh's rehearsal
# counts the skipped tests, and a skipped module collects none).
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _cfi(query, key, num_frames, scale=None):
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    return torch.ops.eav.cross_frame_intensity(query, key, num_frames, scale)


def _check(batch, heads, frames, spatial, head_dim, dtype, *, kv_heads=None, layout="bhnd", seed=0):
    generator = torch.Generator().manual_seed(seed)
    query, key = random_query_key(batch, heads, frames, spatial, head_dim, dtype,
                                  kv_heads=kv_heads, layout=layout, generator=generator,
                                  device="cuda")
    actual = _cfi(query, key, frames)
    assert actual.device.type == "cuda" and actual.dtype == torch.float32
    assert actual.shape == (batch,)
    assert_meets_contract(actual, query.cpu(), key.cpu(), frames)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("frames", [2, 3, 13, 16, 17, 33, 64])
def test_frames(dtype, frames):
    _check(2, 3, frames, 7, 64, dtype, seed=frames)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head_dim", [8, 40, 72, 128, 200, 256, 320])
def test_head_dims(dtype, head_dim):
    _check(1, 2, 13, 7, head_dim, dtype, seed=head_dim)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spatial", [1, 7, 9, 1350])
def test_spatial(dtype, spatial):
    _check(1, 2, 5, spatial, 64, dtype, seed=spatial)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["bnhd", "strided", "misaligned"])
def test_transposed_strided_and_misaligned_views(dtype, layout):
    query, key = random_query_key(1, 2, 3, 4, 72, dtype, layout=layout, device="cuda")
    if layout == "strided":
        assert query.stride(-1) == 2, "the strided case must reach the kernel strided"
    if layout == "misaligned":
        assert query.data_ptr() % 16 != 0 and query.stride(2) % 8 != 0, "must not be 16-byte aligned"
    _check(2, 4, 13, 9, 72, dtype, layout=layout)
    _check(1, 2, 33, 7, 128, dtype, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gqa(dtype):
    _check(2, 8, 13, 7, 64, dtype, kv_heads=2)
    _check(1, 6, 3, 5, 128, dtype, kv_heads=1, layout="bnhd")


def test_strongly_diagonal_rows_keep_relative_accuracy():
    # q == k with a large scale: rows are almost one-hot, CFI ~ 1e-6 (off/(off+diag) matters).
    query, _ = random_query_key(1, 2, 13, 7, 64, torch.bfloat16, device="cuda")
    actual = _cfi(query, query, 13, scale=0.5)
    assert_meets_contract(actual, query.cpu(), query.cpu(), 13, scale=0.5)


def test_one_frame_is_zero():
    query, key = random_query_key(2, 2, 1, 5, 64, torch.bfloat16, device="cuda")
    assert torch.equal(_cfi(query, key, 1).cpu(), torch.zeros(2))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_deterministic(dtype):
    query, key = random_query_key(2, 4, 33, 300, 128, dtype, device="cuda", layout="bnhd")
    first = _cfi(query, key, 33)
    for _ in range(5):
        assert torch.equal(_cfi(query, key, 33), first)


def test_runs_on_the_current_stream():
    query, key = random_query_key(1, 4, 13, 64, 64, torch.bfloat16, device="cuda")
    expected = _cfi(query, key, 13)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # q and k were made on the current stream
    with torch.cuda.stream(stream):
        actual = _cfi(query, key, 13)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(actual, expected)


def test_auto_prefers_cuda():
    query, key = random_query_key(1, 2, 3, 4, 64, torch.float16, device="cuda")
    assert select_backend("auto", query, key).name == "cuda"


def test_64_bit_offsets():
    # Batch element 1 starts past 2**31 elements: offsets must be computed in 64 bits.
    heads, frames, spatial, head_dim = 2, 5, 3, 64
    per_batch = heads * frames * spatial * head_dim
    batch_stride = 2**31 + 64
    needed = (batch_stride + per_batch) * 2 * 2  # bytes of q and k, bf16
    if torch.cuda.mem_get_info()[0] < needed + 2**30:
        pytest.skip(f"needs {needed / 2**30:.1f} GiB of free GPU memory")
    generator = torch.Generator().manual_seed(7)
    tensors = []
    for _ in range(2):
        storage = torch.empty(batch_stride + per_batch, dtype=torch.bfloat16, device="cuda")
        view = storage.as_strided((2, heads, frames * spatial, head_dim),
                                  (batch_stride, frames * spatial * head_dim, head_dim, 1))
        view.copy_(torch.randn(view.shape, generator=generator).to(torch.bfloat16))
        tensors.append(view)
    query, key = tensors
    actual = _cfi(query, key, frames)
    assert_meets_contract(actual, query.cpu(), key.cpu(), frames)
    del tensors, query, key
    torch.cuda.empty_cache()


def test_errors_name_the_numbers():
    query, key = random_query_key(1, 2, 3, 4, 64, torch.float16, device="cuda")
    with pytest.raises(ValueError, match=r"\(12\) not divisible by num_frames \(5\)"):
        _cfi(query, key, 5)
