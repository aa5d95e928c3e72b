"""CFI backends against the float64 reference (FlashAttention's contract), and their edge cases.

The contract tests run the compiled CPU kernel: the ``reference`` backend *is* the float64
reference, so holding it against itself could not fail.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import eav_kernels as eav
from eav_kernels._extension import compiled_extension
from contract import assert_meets_contract, random_query_key

requires_extension = pytest.mark.skipif(
    compiled_extension() is None, reason="eav_kernels._C is not built"
)
CPU_BACKENDS = ["cpu", "reference"]  # for the edge cases every backend must get right
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ["bhnd", "bnhd", "strided"]
# (batch, heads, num_frames, spatial, head_dim): the odd sizes the contract tests use.
SHAPES = [
    (1, 1, 2, 1, 40),
    (2, 3, 3, 7, 72),
    (1, 2, 13, 7, 128),
    (2, 1, 33, 1, 72),
    (1, 1, 33, 7, 40),
    (1, 2, 64, 3, 128),
    (1, 1, 5, 37, 16),  # crosses a chunk boundary of the CPU kernel (16 positions)
]


@requires_extension
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}H{}F{}S{}D{}".format(*s))
def test_meets_contract(dtype, layout, shape, generator):
    batch, heads, frames, spatial, head_dim = shape
    q, k = random_query_key(batch, heads, frames, spatial, head_dim, dtype, layout=layout, generator=generator)
    per_sample = eav.cross_frame_intensity(q, k, frames, per_sample=True, backend="cpu")
    assert per_sample.shape == (batch,) and per_sample.dtype == torch.float32
    assert_meets_contract(per_sample, q, k, frames)
    mean = eav.cross_frame_intensity(q, k, frames, backend="cpu")
    assert mean.shape == () and torch.equal(mean, per_sample.mean())


@requires_extension
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_grouped_query_heads_and_custom_scale(dtype, generator):
    q, k = random_query_key(2, 6, 13, 5, 72, dtype, kv_heads=2, layout="bnhd", generator=generator)
    per_sample = eav.cross_frame_intensity(q, k, 13, scale=0.3, per_sample=True, backend="cpu")
    assert_meets_contract(per_sample, q, k, 13, scale=0.3)
    repeated = k.repeat_interleave(3, dim=1)
    expanded = eav.cross_frame_intensity(q, repeated, 13, scale=0.3, per_sample=True, backend="cpu")
    # the same logits, summed in another order (key heads outer or inner): float32 rounding only
    torch.testing.assert_close(per_sample, expanded, rtol=1e-6, atol=0)


@requires_extension
def test_strongly_diagonal_rows_do_not_cancel(generator):
    """Off-diagonal mass of ~1e-6 per row: computing it as 1 - p_diag would lose it to rounding."""
    q, _ = random_query_key(1, 2, 8, 16, 64, torch.float32, generator=generator)
    k = q.clone()
    per_sample = eav.cross_frame_intensity(q, k, 8, scale=1.0, per_sample=True, backend="cpu")
    assert_meets_contract(per_sample, q, k, 8, scale=1.0)
    assert 0 < per_sample.item() < 1e-3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_single_frame_is_zero(backend, generator):
    if backend == "cpu" and compiled_extension() is None:
        pytest.skip("eav_kernels._C is not built")
    q, k = random_query_key(2, 2, 1, 9, 40, torch.bfloat16, generator=generator)
    cfi = eav.cross_frame_intensity(q, k, 1, per_sample=True, backend=backend)
    assert torch.equal(cfi, torch.zeros(2))
    assert eav.enhance_score(cfi, 1, 4.0).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("poison", [math.nan, math.inf])
def test_non_finite_input_gives_nan(backend, poison, generator):
    if backend == "cpu" and compiled_extension() is None:
        pytest.skip("eav_kernels._C is not built")
    q, k = random_query_key(2, 2, 3, 5, 16, torch.float32, generator=generator)
    q[1, 0, 4, 3] = poison
    cfi = eav.cross_frame_intensity(q, k, 3, per_sample=True, backend=backend)
    assert math.isfinite(cfi[0].item()) and math.isnan(cfi[1].item())
    assert math.isnan(eav.enhance_score(cfi, 3, 4.0)[1].item())


def test_enhance_score_formula():
    cfi = torch.tensor([0.0, 0.05, 0.5])
    assert eav.enhance_score(cfi, 13, 3.4).tolist() == pytest.approx([1.0, 1.0, 8.2])
    # uniform attention: every off-diagonal entry is 1/F, so the score is 1 + w/F
    assert eav.enhance_score(1 / 16, 16, 4.0).item() == pytest.approx(1 + 4 / 16)


@requires_extension
def test_bitwise_deterministic_across_threads_and_calls(restore_threads, generator):
    q, k = random_query_key(2, 3, 13, 41, 72, torch.bfloat16, layout="bnhd", generator=generator)
    results = []
    for threads in (1, 2, 1, 2):
        torch.set_num_threads(threads)
        results.append(eav.cross_frame_intensity(q, k, 13, per_sample=True, backend="cpu"))
    for other in results[1:]:
        assert torch.equal(results[0], other), [r.tolist() for r in results]


@requires_extension
def test_extension_is_really_multithreaded(restore_threads):
    extension = compiled_extension()  # its parallel regions run on torch's thread pool
    torch.set_num_threads(2)
    assert extension.parallel_region_threads() == 2
    torch.set_num_threads(1)
    assert extension.parallel_region_threads() == 1


@requires_extension
@pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="the AVX2 build exists on x86-64 only")
def test_portable_build_meets_contract_too():
    """ATEN_CPU_CAPABILITY=default makes PyTorch, and so our dispatch, take the portable build."""
    script = textwrap.dedent(
        """
        import torch, eav_kernels as eav
        from eav_kernels._extension import compiled_extension
        from contract import assert_meets_contract, random_query_key
        assert compiled_extension().cpu_kernel_capability() == "DEFAULT"
        g = torch.Generator().manual_seed(7)
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            q, k = random_query_key(2, 2, 13, 7, 72, dtype, layout="bnhd", generator=g)
            assert_meets_contract(eav.cross_frame_intensity(q, k, 13, per_sample=True, backend="cpu"), q, k, 13)
        print("ok")
        """
    )
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    tests_dir = os.path.dirname(__file__)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tests_dir, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@requires_extension
def test_opcheck(generator):
    q, k = random_query_key(2, 4, 3, 5, 40, torch.bfloat16, kv_heads=2, layout="bnhd", generator=generator)
    torch.library.opcheck(torch.ops.eav.cross_frame_intensity.default, (q, k, 3, 0.125))
    q32, k32 = random_query_key(1, 2, 7, 3, 16, torch.float32, generator=generator)
    torch.library.opcheck(torch.ops.eav.cross_frame_intensity.default, (q32, k32, 7, 0.25))


@requires_extension
@pytest.mark.parametrize("batch, per_sample", [(2, True), (2, False), (1, False)])
def test_compiles_fullgraph(batch, per_sample, generator):
    """"auto" too: the cached capabilities and the per-call EAV_BACKEND read trace without a
    graph break; batch 1's mean (the element itself, made 0-d in place) as well."""
    q, k = random_query_key(batch, 2, 5, 6, 16, torch.float32, layout="bnhd", generator=generator)
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda q, k: eav.cross_frame_intensity(q, k, 5, per_sample=per_sample), fullgraph=True
    )
    expected = eav.cross_frame_intensity(q, k, 5, per_sample=per_sample, backend="cpu")
    assert torch.equal(compiled(q, k), expected)
    torch._dynamo.reset()


@pytest.mark.parametrize(
    "make_inputs, error, message",
    [
        (lambda: (torch.randn(2, 6, 8), torch.randn(2, 6, 8)), ValueError, "got 3 dims"),
        (lambda: (torch.ones(1, 1, 6, 8, dtype=torch.int32),) * 2, TypeError, "float32, float16 or bfloat16"),
        (lambda: (torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 8).half()), TypeError, "same dtype"),
        (lambda: (torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 8, device="meta")), ValueError, "same device"),
        (lambda: (torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 4)), ValueError, "agree in batch, tokens and head_dim"),
        (lambda: (torch.randn(1, 3, 6, 8), torch.randn(1, 2, 6, 8)), ValueError, r"query heads \(3\) must be a multiple of key heads \(2\)"),
        (lambda: (torch.randn(1, 1, 7, 8), torch.randn(1, 1, 7, 8)), ValueError, r"video tokens \(7\) not divisible by num_frames \(3\)"),
        (lambda: (torch.randn(0, 1, 6, 8), torch.randn(0, 1, 6, 8)), ValueError, "zero-size"),
    ],
    ids=["rank", "integer", "dtype-mismatch", "device-mismatch", "shape-mismatch", "heads", "divisible", "empty"],
)
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_bad_input_is_a_clear_error(make_inputs, error, message, backend):
    q, k = make_inputs()
    with pytest.raises(error, match=message):
        eav.cross_frame_intensity(q, k, 3, backend=backend)


@pytest.mark.parametrize("num_frames, message", [(0, ">= 1, got 0"), (-2, ">= 1, got -2")])
def test_bad_num_frames(num_frames, message):
    q = torch.randn(1, 1, 6, 8)
    with pytest.raises(ValueError, match=message):
        eav.cross_frame_intensity(q, q, num_frames)


@requires_extension
@pytest.mark.parametrize(
    "q_shape, k_shape, frames, message",
    [
        ((2, 6, 8), (2, 6, 8), 3, "got 3 dims"),
        ((1, 1, 7, 8), (1, 1, 7, 8), 3, r"video tokens \(7\) not divisible by num_frames \(3\)"),
        ((1, 3, 6, 8), (1, 2, 6, 8), 3, r"query heads \(3\) must be a multiple of key heads \(2\)"),
        ((1, 1, 6, 8), (1, 1, 6, 8), 0, "num_frames must be >= 1, got 0"),
        ((1, 0, 6, 8), (1, 0, 6, 8), 3, "zero-size"),
    ],
)
def test_compiled_op_checks_its_preconditions(q_shape, k_shape, frames, message):
    """The C++ entry point validates on its own, for callers that bypass the Python API."""
    with pytest.raises(ValueError, match=message):
        torch.ops.eav.cross_frame_intensity(torch.randn(q_shape), torch.randn(k_shape), frames, 0.5)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):  # the op: ValueError only
        torch.ops.eav.cross_frame_intensity(torch.ones(1, 1, 6, 8, dtype=torch.int64), torch.ones(1, 1, 6, 8, dtype=torch.int64), 3, 0.5)


def test_unknown_or_unavailable_backend_says_why():
    q = torch.randn(1, 1, 6, 8)
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        eav.cross_frame_intensity(q, q, 3, backend="nope")
    with pytest.raises(ValueError, match="backend 'cuda' cannot take this input"):
        eav.cross_frame_intensity(q, q, 3, backend="cuda")


def test_environment_variable_chooses_auto_backend_per_call(monkeypatch, generator):
    from eav_kernels.backends import select_backend

    q, k = random_query_key(1, 1, 3, 4, 8, torch.float32, generator=generator)
    monkeypatch.setenv("EAV_BACKEND", "reference")
    assert select_backend("auto", q, k).name == "reference"
    assert select_backend("cpu", q, k).name == "cpu"  # a named backend is not replaced
    monkeypatch.setenv("EAV_BACKEND", "cuda")  # read again at the next call
    with pytest.raises(ValueError, match="backend 'cuda' cannot take this input: runs on cuda"):
        eav.cross_frame_intensity(q, k, 3)
    monkeypatch.setenv("EAV_BACKEND", "nope")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        eav.cross_frame_intensity(q, k, 3)
    monkeypatch.delenv("EAV_BACKEND")
    expected = "cpu" if compiled_extension() is not None else "reference"
    assert select_backend("auto", q, k).name == expected


def test_available_backends_report_reasons():
    q = torch.randn(1, 1, 6, 8)
    reasons = eav.available_backends(q, q)
    assert reasons["reference"] is None
    assert "cuda" in reasons and reasons["cuda"]  # never usable for CPU tensors, with a reason


@pytest.mark.parametrize("heads, key_heads", [(4, 4), (4, 2)])
@pytest.mark.parametrize("cuts", [(0, 30), (0, 7, 19, 30), (0, 10, 20, 30)])
def test_off_diagonal_mass_sums_of_row_shards_give_the_reference(heads, key_heads, cuts):
    """Row shards (whole or partial frames) against all keys, summed, give the float64 CFI."""
    from eav_kernels.partial import off_diagonal_mass_sums

    generator = torch.Generator().manual_seed(3)
    batch, frames, spatial, head_dim = 2, 3, 10, 8
    query = 2 * torch.randn(batch, heads, frames * spatial, head_dim, generator=generator)
    key = 2 * torch.randn(batch, key_heads, frames * spatial, head_dim, generator=generator)
    expected = eav.cross_frame_intensity_reference(
        query, key.repeat_interleave(heads // key_heads, dim=1), frames, scale=0.3, per_sample=True
    )
    total = sum(
        off_diagonal_mass_sums(query[:, :, start:stop], key, frames, start, scale=0.3)
        for start, stop in zip(cuts, cuts[1:])
    )
    torch.testing.assert_close(total / (heads * frames * spatial), expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(off_diagonal_mass_sums(query, key, 1, 0), torch.zeros(batch, dtype=torch.float64))
