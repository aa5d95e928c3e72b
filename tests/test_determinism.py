"""Bitwise determinism of the CPU kernel's cross-frame intensity: the same inputs give the same
bits across 1 and 2 threads and across repeated calls (docs/determinism.md). The reference backend
is plain float64 PyTorch on fixed shapes (not tested here: it is the truth itself); the Triton
kernel's repeat-call determinism runs in its interpreter (test_triton_interpreter.py).
"""

from __future__ import annotations

import pytest
import torch

import eav_kernels as eav
from eav_kernels._extension import compiled_extension
from contract import random_query_key

pytestmark = pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    "shape, layout, kv_heads",
    [((2, 4, 13, 41, 72), "bnhd", 2), ((1, 3, 33, 20, 40), "bhnd", 3), ((2, 2, 5, 37, 16), "strided", 1)],
    ids=["bnhd-gqa", "bhnd", "strided-mqa"],
)
def test_bitwise_equal_across_threads_and_calls(dtype, shape, layout, kv_heads, restore_threads, generator):
    q, k = random_query_key(*shape, dtype, kv_heads=kv_heads, layout=layout, generator=generator)
    frames = shape[2]
    results = []
    for threads in (1, 2, 2, 1):
        torch.set_num_threads(threads)
        results.append(eav.cross_frame_intensity(q, k, frames, per_sample=True, backend="cpu"))
        results.append(eav.cross_frame_intensity(q, k, frames, backend="cpu"))  # mean, 0-d
    for other in results[2::2]:
        assert torch.equal(results[0], other), [r.tolist() for r in results[::2]]
    for other in results[3::2]:
        assert torch.equal(results[1], other), [r.item() for r in results[1::2]]


def test_enhance_score_path_is_deterministic(restore_threads, generator):
    """The score enhanced_sdpa applies (CFI of a text+video call) is bitwise stable too."""
    q, k = random_query_key(1, 2, 7, 10, 16, torch.bfloat16, layout="bnhd", generator=generator)
    v = torch.randn(q.shape, generator=generator).to(torch.bfloat16)
    scores = []
    for threads in (1, 2, 1):
        torch.set_num_threads(threads)
        _, score = eav.attention_with_enhance_score(
            q, k, v, num_frames=7, enhance_weight=3.0, video_tokens=slice(0, 70), backend="cpu"
        )
        scores.append(score)
    assert all(torch.equal(scores[0], s) for s in scores[1:]), [s.item() for s in scores]
