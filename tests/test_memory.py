"""1000 calls without memory growth: resident set size after a warm-up vs after 1000
more calls of cross_frame_intensity and enhanced_sdpa on CPU.

Tolerance: 4 MiB. Each call's inputs are 128 KiB per tensor (q [1, 2, 256, 64] fp32, 16 frames
of 16 positions) and enhanced_sdpa returns an output of the same size, so a leak of any per-call
tensor or of the CPU kernel's per-thread scratch (9 KiB: 16 x 16 logits plus two 16 x 64 row
copies) would grow the RSS by at least 9 MiB over 1000 calls (128 MiB for a leaked output). What the tolerance absorbs is the
allocator's one-off growth (glibc arenas per OpenMP thread, the dispatcher's caches), which the
warm-up already paid for and which does not scale with the number of calls.
"""

from __future__ import annotations

import gc

import pytest
import torch

import eav_kernels as eav
from eav_kernels._extension import compiled_extension

TOLERANCE_BYTES = 4 * 2**20
CALLS = 1000
WARMUP = 50


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096  # resident pages (4 KiB on x86-64 Linux)


def growth_over_calls(fn) -> int:
    for _ in range(WARMUP):
        fn()
    gc.collect()
    before = resident_bytes()
    for _ in range(CALLS):
        fn()
    gc.collect()
    return resident_bytes() - before


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.parametrize(
    "op, backend",
    [("cross_frame_intensity", "cpu"), ("cross_frame_intensity", "reference"), ("enhanced_sdpa", "cpu")],
)
def test_no_growth_over_1000_calls(op, backend, generator):
    if backend == "cpu" and compiled_extension() is None:
        pytest.skip("eav_kernels._C is not built")
    q = torch.randn(1, 2, 256, 64, generator=generator)
    k = torch.randn(1, 2, 256, 64, generator=generator)
    v = torch.randn(1, 2, 256, 64, generator=generator)
    if op == "cross_frame_intensity":
        fn = lambda: eav.cross_frame_intensity(q, k, 16, per_sample=True, backend=backend)  # noqa: E731
    else:
        fn = lambda: eav.enhanced_sdpa(q, k, v, num_frames=16, enhance_weight=4.0, backend=backend)  # noqa: E731
    growth = growth_over_calls(fn)
    assert growth <= TOLERANCE_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB over {CALLS} calls of {op}"
