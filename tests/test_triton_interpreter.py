"""The Triton kernels in Triton's CPU interpreter (``TRITON_INTERPRET=1``), against float64.

Why a child process: Triton decides interpreter vs compiler when a ``@triton.jit`` function is
*decorated*, i.e. when ``eav_kernels.triton_kernels`` is first imported, and with the variable set
``backend="auto"`` would route every CPU CFI of the whole test session to the (slow) interpreter.
Setting it in a conftest or at this module's import would leak into the other test files (and
make the ahead-of-time tests see interpreted kernels). So in a normal run this file has one test
that runs this same file in a child pytest with ``TRITON_INTERPRET=1``; run directly with the
variable set, the individual cases are collected:

    TRITON_INTERPRET=1 python -m pytest tests/test_triton_interpreter.py -q

Shapes are tiny on purpose (the interpreter runs numpy per program).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

if not INTERPRETING:

    def test_interpreter_suite_in_child_process():
        env = dict(os.environ, TRITON_INTERPRET="1")
        env.pop("EAV_BACKEND", None)
        child = subprocess.run(
            [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-x"],
            env=env, capture_output=True, text=True, timeout=600,
        )
        report = child.stdout[-6000:] + child.stderr[-3000:]
        assert child.returncode == 0, f"interpreter tests failed:\n{report}"
        print(report.strip().splitlines()[-1])

    def test_triton_backend_says_why_it_refuses_cpu_tensors():
        import torch

        from eav_kernels.backends import available_backends

        query = torch.randn(1, 1, 6, 16)
        reason = available_backends(query, query)["triton"]
        assert reason is not None and "TRITON_INTERPRET=1" in reason

else:
    import torch
    import torch.nn.functional as F

    import eav_kernels as eav
    from eav_kernels.reference import cross_frame_intensity_reference
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    from contract import assert_meets_contract, random_query_key

    DTYPES = [torch.float32, torch.float16, torch.bfloat16]

    # (batch, heads, kv heads, frames, spatial, head dim, layout)
    CFI_CASES = [
        (2, 2, 1, 13, 3, 40, "strided"),  # GQA, odd F, D = 40 masked to 64
        (1, 3, 3, 2, 7, 72, "bnhd"),  # F = 2, transposed [B, N, H, D] views, D = 72
        (1, 1, 1, 33, 2, 72, "bhnd"),  # F = 33: query and key frames padded to 64
        (1, 2, 1, 70, 1, 40, "strided"),  # F = 70 > one 64-frame key chunk (and query block)
    ]

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    @pytest.mark.parametrize("case", CFI_CASES, ids=lambda c: "B{}H{}Hk{}F{}S{}D{}-{}".format(*c))
    def test_cross_frame_intensity_meets_contract(case, dtype):
        batch, heads, kv_heads, frames, spatial, head_dim, layout = case
        generator = torch.Generator().manual_seed(hash(case) % 2**31)
        query, key = random_query_key(
            batch, heads, frames, spatial, head_dim, dtype, kv_heads=kv_heads, layout=layout,
            generator=generator,
        )
        actual = eav.cross_frame_intensity(query, key, frames, per_batch=True, backend="triton")
        assert actual.shape == (batch,) and actual.dtype == torch.float32
        assert_meets_contract(actual, query, key, frames)

    def test_cross_frame_intensity_256_frames():
        """F = 256: four query blocks, four key chunks of the online softmax."""
        query, key = random_query_key(1, 1, 256, 1, 16, torch.float16, layout="bnhd",
                                      generator=torch.Generator().manual_seed(256))
        actual = eav.cross_frame_intensity(query, key, 256, per_batch=True, backend="triton")
        assert_meets_contract(actual, query, key, 256)

    def test_strongly_diagonal_rows_do_not_cancel():
        """q == k with a large scale: off-diagonal mass ~1e-6, where ``1 - p_tt`` would cancel."""
        generator = torch.Generator().manual_seed(7)
        query, _ = random_query_key(1, 2, 13, 3, 40, torch.float32, generator=generator)
        scale = 0.4
        actual = eav.cross_frame_intensity(query, query, 13, scale=scale, per_batch=True,
                                           backend="triton")
        truth = cross_frame_intensity_reference(query, query, 13, scale=scale, per_batch=True)
        assert 0 < truth.item() < 1e-3
        assert_meets_contract(actual, query, query, 13, scale=scale)
        assert abs(actual.item() - truth.item()) <= 1e-5 * truth.item()

    def test_single_frame_and_determinism():
        query, key = random_query_key(1, 2, 1, 5, 40, torch.float16)
        assert eav.cross_frame_intensity(query, key, 1, backend="triton").item() == 0.0
        query, key = random_query_key(2, 2, 13, 5, 40, torch.float16, layout="bnhd")
        first = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
        second = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
        assert torch.equal(first, second)

    def test_nan_input_gives_nan_for_its_batch_element_only():
        query, key = random_query_key(2, 1, 13, 2, 40, torch.float32)
        query[1, 0, 3, 5] = float("nan")
        actual = eav.cross_frame_intensity(query, key, 13, per_batch=True, backend="triton")
        assert torch.isfinite(actual[0]) and torch.isnan(actual[1])

    # ---------------------------------------------------------------- temporal attention + CFI

    def low_precision_attention(query, key, value, scale):
        """FlashAttention's ``attention_ref(upcast=False)``: products in the input dtype."""
        group = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(group, 1), value.repeat_interleave(group, 1)
        probabilities = torch.softmax((query @ key.transpose(-1, -2)).float() * scale, dim=-1)
        return probabilities.to(value.dtype) @ value

    # (sequences, heads, kv heads, frames, head dim, value dim)
    TEMPORAL_CASES = [
        (5, 2, 1, 13, 40, 40),  # 5 sequences over tiles of 4/8: a partial sequence block
        (3, 1, 1, 2, 72, 72),  # F = 2
        (2, 2, 2, 33, 72, 24),  # F = 33, Dv != D
        (1, 1, 1, 70, 16, 16),  # F = 70 > one key chunk
    ]

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    @pytest.mark.parametrize("case", TEMPORAL_CASES, ids=lambda c: "N{}H{}Hk{}F{}D{}Dv{}".format(*c))
    def test_temporal_attention_with_cfi(case, dtype):
        sequences, heads, kv_heads, frames, head_dim, value_dim = case
        generator = torch.Generator().manual_seed(hash(case) % 2**31)

        def make(h, d):  # transposed views of [N_seq, F, h, d] storage, as diffusers hands them
            return torch.randn(sequences, frames, h, d, generator=generator).to(dtype).transpose(1, 2)

        query, key, value = make(heads, head_dim), make(kv_heads, head_dim), make(kv_heads, value_dim)
        scale = head_dim ** -0.5
        result = temporal_attention_with_cfi(query, key, value, scale)

        truth = F.scaled_dot_product_attention(query.double(), key.double(), value.double(),
                                               scale=scale, enable_gqa=True)
        low = low_precision_attention(query, key, value, scale)
        error = (result.out.double() - truth).abs().max().item()
        allowed = 2 * (low.double() - truth).abs().max().item() + 1e-5
        assert result.out.shape == (sequences, heads, frames, value_dim)
        assert result.out.dtype == dtype
        assert error <= allowed, f"output error {error} > {allowed}"

        for i in range(sequences):
            assert_meets_contract(result.cross_frame_intensity[i : i + 1], query[i : i + 1],
                                  key[i : i + 1], frames, scale=scale)

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    def test_enhanced_sdpa_fuses_pure_temporal_attention(dtype, monkeypatch):
        import eav_kernels.triton_kernels.temporal_attention as temporal

        calls = []
        original = temporal.temporal_attention_with_cfi
        monkeypatch.setattr(temporal, "temporal_attention_with_cfi",
                            lambda *args: calls.append(1) or original(*args))
        generator = torch.Generator().manual_seed(3)
        shape = (6, 16, 2, 40)  # [B*S, F, H, D] storage, transposed to [B*S, H, F, D]
        query, key, value = (torch.randn(*shape, generator=generator).to(dtype).transpose(1, 2)
                             for _ in range(3))
        kwargs = dict(num_frames=16, enhance_weight=4.0)
        fused = eav.enhanced_sdpa(query, key, value, backend="triton", **kwargs)
        assert calls, "pure temporal attention did not take the fused Triton kernel"
        cfi = cross_frame_intensity_reference(query, key, 16)  # float64
        expected = F.scaled_dot_product_attention(query.double(), key.double(), value.double())
        assert eav.enhance_score(cfi, 16, 4.0) > 1, "the test must exercise a real enhancement"
        expected = expected * eav.enhance_score(cfi, 16, 4.0).double()
        baseline = eav.enhanced_sdpa(query, key, value, backend="reference", **kwargs)
        error = (fused.double() - expected).abs().max().item()
        allowed = 2 * (baseline.double() - expected).abs().max().item() + 1e-5
        assert error <= allowed, f"enhanced output error {error} > {allowed}"

        calls.clear()  # a causal call is not pure temporal attention: the general path runs
        eav.enhanced_sdpa(query, key, value, is_causal=True, backend="triton", **kwargs)
        assert not calls
