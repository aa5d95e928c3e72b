"""The Triton kernels compiled and run on a CUDA device (their CPU twin is test_triton_interpreter.py).

Skipped, with the reason, where there is no CUDA device. Inputs are made on the device in the
target dtype and only then viewed (transposed, strided, misaligned), so the kernels see those
strides. The shapes are module constants: tests/test_triton_aot.py compiles the same launches.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

import eav_kernels as eav  # noqa: E402

from contract import assert_meets_contract, random_query_key, random_view  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none available)"),
]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (batch, heads, kv heads, frames, spatial, head dim, layout of random_query_key)
CFI_CASES = [
    (2, 4, 2, 13, 45, 64, "bnhd"),  # cogvideox-like F, GQA
    (1, 3, 3, 33, 50, 128, "strided"),  # hunyuan F, D = 128, every dim strided
    (1, 2, 1, 16, 384, 72, "bhnd"),  # latte D, many positions
    (1, 2, 2, 256, 3, 40, "bnhd"),  # F = 256: query blocks x key chunks
    (2, 2, 2, 21, 7, 72, "misaligned"),  # base one element past 16 bytes, odd row stride
    (1, 1, 1, 2, 1, 40, "bhnd"),  # one position: one warp
]
# temporal attention: (sequences, heads, kv heads, head dim, value dim, layout) x frames
TEMPORAL_FRAMES = [2, 16, 33, 64, 130]
TEMPORAL_CASES = [
    (77, 4, 4, 72, 72, "bnhd"),  # Latte-like transposed views
    (9, 4, 2, 40, 24, "strided"),  # GQA, Dv != D, every dim strided
    (3, 2, 2, 72, 72, "misaligned"),  # 3 sequences: a 4-wide sequence block with padding
]
FUSED_SHAPE = (512, 16, 8, 72)  # enhanced_sdpa's fused path: [B*S, F, H, D] storage


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CFI_CASES, ids=lambda c: "B{}H{}Hk{}F{}S{}D{}-{}".format(*c))
def test_cross_frame_intensity_meets_contract(case, dtype):
    batch, heads, kv_heads, frames, spatial, head_dim, layout = case
    query, key = random_query_key(batch, heads, frames, spatial, head_dim, dtype,
                                  kv_heads=kv_heads, layout=layout, device="cuda",
                                  generator=torch.Generator().manual_seed(frames))
    assert query.device.type == "cuda" and query.dtype == dtype
    actual = eav.cross_frame_intensity(query, key, frames, per_batch=True, backend="triton")
    assert actual.device.type == "cuda"
    assert_meets_contract(actual, query, key, frames)
    again = eav.cross_frame_intensity(query, key, frames, per_batch=True, backend="triton")
    assert torch.equal(actual, again), "not deterministic"


def _temporal_inputs(case, frames, dtype):
    sequences, heads, kv_heads, head_dim, value_dim, layout = case
    generator = torch.Generator().manual_seed(frames)
    return tuple(random_view((sequences, h, frames, d), layout, dtype, generator=generator, device="cuda")
                 for h, d in ((heads, head_dim), (kv_heads, head_dim), (kv_heads, value_dim)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("frames", TEMPORAL_FRAMES)
@pytest.mark.parametrize("case", TEMPORAL_CASES, ids=lambda c: "N{}H{}Hk{}D{}Dv{}-{}".format(*c))
def test_temporal_attention_matches_sdpa(case, frames, dtype):
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    query, key, value = _temporal_inputs(case, frames, dtype)
    result = temporal_attention_with_cfi(query, key, value)
    truth = F.scaled_dot_product_attention(query.double(), key.double(), value.double(), enable_gqa=True)
    vendor = F.scaled_dot_product_attention(query, key, value, enable_gqa=True)
    error = (result.out.double() - truth).abs().max().item()
    allowed = 2 * (vendor.double() - truth).abs().max().item() + 1e-5
    assert error <= allowed, f"output error {error} > {allowed}"
    for i in sorted({0, query.shape[0] // 2, query.shape[0] - 1}):
        assert_meets_contract(result.cross_frame_intensity[i : i + 1], query[i : i + 1],
                              key[i : i + 1], frames)


def test_enhanced_sdpa_fused_matches_general_path():
    query, key, value = (random_view(FUSED_SHAPE, "bnhd", torch.float16, device="cuda",
                                     generator=torch.Generator().manual_seed(i))
                         for i in range(3))
    kwargs = dict(num_frames=FUSED_SHAPE[2], enhance_weight=4.0)
    fused = eav.enhanced_sdpa(query, key, value, backend="triton", **kwargs)
    general = eav.enhanced_sdpa(query, key, value, backend="reference", **kwargs)
    torch.testing.assert_close(fused, general, atol=2e-3, rtol=2e-3)


def test_side_stream_after_the_producing_stream():
    """The kernels launch on the current stream: a side stream that waits for the stream which
    made q and k, and is waited for before the result is read, gives the same bits."""
    query, key = random_query_key(1, 4, 13, 64, 64, torch.bfloat16, device="cuda", layout="bnhd")
    expected = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        actual = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(actual, expected)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_launches_on_the_tensors_device_not_the_current_one():
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    query, key = random_query_key(1, 2, 13, 9, 64, torch.float16, device="cuda:1")
    with torch.cuda.device(0):
        cfi = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
        result = temporal_attention_with_cfi(query[:, :, :13], key[:, :, :13], key[:, :, :13])
    assert cfi.device == query.device and result.out.device == query.device
    assert_meets_contract(cfi, query, key, 13)
    expected = F.scaled_dot_product_attention(query[:, :, :13], key[:, :, :13], key[:, :, :13])
    torch.testing.assert_close(result.out, expected, atol=2e-3, rtol=2e-3)


def _huge_token_stride_view(tokens: int, head_dim: int, dtype: torch.dtype) -> torch.Tensor:
    """[1, 1, tokens, D] whose token stride makes token * stride pass 2**31 (~5 GB of storage)."""
    token_stride = 2**28 + 8
    needed = ((tokens - 1) * token_stride + head_dim) * torch.finfo(dtype).bits // 8
    if torch.cuda.mem_get_info()[0] < needed + 2**30:
        pytest.skip(f"needs {needed / 2**30:.1f} GiB of free GPU memory")
    storage = torch.empty((tokens - 1) * token_stride + head_dim, dtype=dtype, device="cuda")
    view = storage.as_strided((1, 1, tokens, head_dim), (0, 0, token_stride, 1))
    view.copy_(torch.randn(view.shape, generator=torch.Generator().manual_seed(tokens)).to(dtype))
    return view


def test_64_bit_offsets():
    """index * stride past 2**31 elements in both kernels (q = k = v share one strided view)."""
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    frames, spatial = 5, 2
    query = _huge_token_stride_view(frames * spatial, 64, torch.bfloat16)
    cfi = eav.cross_frame_intensity(query, query, frames, per_batch=True, backend="triton")
    assert_meets_contract(cfi, query, query, frames)
    result = temporal_attention_with_cfi(query, query, query)  # one sequence of 10 frames
    expected = F.scaled_dot_product_attention(query.double(), query.double(), query.double())
    error = (result.out.double() - expected).abs().max().item()
    assert error < 2e-2, f"temporal output error {error} with 64-bit offsets"
    del query
    torch.cuda.empty_cache()
