"""int64 indexing on CPU: a query of more than 2**31 elements. Slow, not in `make test`:

    .venv/bin/python -m pytest -m slow tests/test_big_input.py

q is [2, 1, N, 64] bf16 with N = 3 * 2**23 tokens (2 frames): 3 * 2**30 elements (6 GiB), so
batch element 1 spans offsets 1.5 * 2**30 .. 3 * 2**30 and its second frame lies entirely beyond
2**31: an int32 offset anywhere in the kernel's address arithmetic would wrap negative (a crash or
garbage). k is a stride-0 view ([1, 1, N, 1] storage expanded over batch and head_dim: 48 MiB), so
memory stays at ~6 GiB. Each batch element's positions tile a different small pattern (8
positions), so its exact CFI is that pattern's CFI, computed independently by the float64
reference on the pattern alone; reading batch 0's rows for batch 1 (or any wrong position) would
give the other pattern's value.
"""

from __future__ import annotations

import pytest
import torch

from eav_kernels._extension import compiled_extension
from contract import assert_meets_contract

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built"),
]

FRAMES, HEAD_DIM, PATTERN = 2, 64, 8
TOKENS = 3 * 2**23
SPATIAL = TOKENS // FRAMES


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def test_query_beyond_2_to_the_31_elements():
    if _available_bytes() < 10 * 2**30:
        pytest.skip("needs ~10 GiB of free memory (q alone is 6 GiB)")
    g = torch.Generator().manual_seed(31)
    query_patterns = torch.randn(2, FRAMES, PATTERN, HEAD_DIM, generator=g).to(torch.bfloat16)
    key_pattern = (0.5 * torch.randn(FRAMES, PATTERN, 1, generator=g)).to(torch.bfloat16)

    query = torch.empty(2, 1, TOKENS, HEAD_DIM, dtype=torch.bfloat16)  # [B, H, F*S, D]
    assert query.numel() > 2**31
    for b in range(2):  # token t*S + s holds pattern[t, s % PATTERN]
        tiles = query[b, 0].view(FRAMES, SPATIAL // PATTERN, PATTERN, HEAD_DIM)
        tiles.copy_(query_patterns[b][:, None].expand_as(tiles))
    key_storage = torch.empty(1, 1, TOKENS, 1, dtype=torch.bfloat16)
    key_storage[0, 0].view(FRAMES, SPATIAL // PATTERN, PATTERN, 1).copy_(
        key_pattern[:, None].expand(FRAMES, SPATIAL // PATTERN, PATTERN, 1))
    key = key_storage.expand(2, 1, TOKENS, HEAD_DIM)  # strides (0, .., 1, 0)

    actual = torch.ops.eav.cross_frame_intensity(query, key, FRAMES, HEAD_DIM**-0.5)  # [2]
    del query

    small_key = key_pattern.expand(FRAMES, PATTERN, HEAD_DIM).reshape(1, 1, FRAMES * PATTERN, HEAD_DIM)
    for b in range(2):
        small_query = query_patterns[b].reshape(1, 1, FRAMES * PATTERN, HEAD_DIM)
        assert_meets_contract(actual[b : b + 1], small_query, small_key, FRAMES)
    assert actual[0] != actual[1]  # the two patterns are distinguishable
