"""The Triton kernels compiled and run on a CUDA device (their CPU twin is test_triton_interpreter.py).

Skipped, with the reason, where there is no CUDA device.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

import eav_kernels as eav  # noqa: E402

from contract import assert_meets_contract, random_query_key  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none available)"),
]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "case",
    [
        (2, 4, 2, 13, 45, 64, "bnhd"),  # cogvideox-like F, GQA
        (1, 3, 3, 33, 50, 128, "strided"),  # hunyuan F, D = 128
        (1, 2, 1, 16, 384, 72, "bhnd"),  # latte D, many positions
        (1, 2, 2, 256, 3, 40, "bnhd"),  # F = 256: query blocks x key chunks
        (1, 1, 1, 2, 1, 40, "bhnd"),
    ],
    ids=lambda c: "B{}H{}Hk{}F{}S{}D{}-{}".format(*c),
)
def test_cross_frame_intensity_meets_contract(case, dtype):
    batch, heads, kv_heads, frames, spatial, head_dim, layout = case
    query, key = random_query_key(batch, heads, frames, spatial, head_dim, dtype,
                                  kv_heads=kv_heads, layout=layout, device="cuda")
    actual = eav.cross_frame_intensity(query, key, frames, per_batch=True, backend="triton")
    assert actual.device.type == "cuda"
    assert_meets_contract(actual, query, key, frames)
    again = eav.cross_frame_intensity(query, key, frames, per_batch=True, backend="triton")
    assert torch.equal(actual, again), "not deterministic"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("frames", [2, 16, 33, 64, 130])
def test_temporal_attention_matches_sdpa(frames, dtype):
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    generator = torch.Generator(device="cuda").manual_seed(frames)
    make = lambda: torch.randn(77, frames, 4, 72, device="cuda", generator=generator).to(dtype).transpose(1, 2)  # noqa: E731
    query, key, value = make(), make(), make()
    result = temporal_attention_with_cfi(query, key, value)
    truth = F.scaled_dot_product_attention(query.double(), key.double(), value.double())
    vendor = F.scaled_dot_product_attention(query, key, value)
    error = (result.out.double() - truth).abs().max().item()
    allowed = 2 * (vendor.double() - truth).abs().max().item() + 1e-5
    assert error <= allowed, f"output error {error} > {allowed}"
    for i in (0, 41, 76):
        assert_meets_contract(result.cross_frame_intensity[i : i + 1], query[i : i + 1],
                              key[i : i + 1], frames)


def test_enhanced_sdpa_fused_matches_general_path():
    query, key, value = (torch.randn(512, 16, 8, 72, device="cuda", dtype=torch.float16).transpose(1, 2)
                         for _ in range(3))
    kwargs = dict(num_frames=16, enhance_weight=4.0)
    fused = eav.enhanced_sdpa(query, key, value, backend="triton", **kwargs)
    general = eav.enhanced_sdpa(query, key, value, backend="reference", **kwargs)
    torch.testing.assert_close(fused, general, atol=2e-3, rtol=2e-3)
