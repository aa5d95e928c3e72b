"""torch.ops.eav.temporal_attention_with_cfi (docs/design.md, contract 2): the CPU
op here, the CUDA op in the gpu-marked twin, both against the float64 truth:

* out vs ``F.scaled_dot_product_attention`` in float64 (FlashAttention's contract: error at most
  twice that of the plain low-precision PyTorch path, plus a small noise term);
* cfi vs ``cross_frame_intensity_reference`` per sequence (tests/contract.py).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contract import assert_meets_contract, random_view
from eav_kernels._extension import compiled_extension

if compiled_extension() is None:
    pytest.skip("eav_kernels._C is not built", allow_module_level=True)

DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (sequences, heads, kv heads, frames, head dim, value dim, layout)
CASES = [
    (3, 2, 2, 1, 40, 40, "bhfd"),  # F = 1: out = v, CFI 0
    (5, 2, 1, 2, 72, 72, "bfhd"),  # F = 2, GQA
    (4, 3, 3, 3, 40, 40, "strided"),
    (9, 2, 2, 13, 72, 72, "bfhd"),  # 9 sequences: a partial block of 8 on CUDA
    (3, 4, 2, 16, 128, 128, "bhfd"),  # GQA
    (2, 2, 1, 33, 72, 40, "bfhd"),  # F = 33: three query tiles, Dv != D
    (2, 1, 1, 33, 128, 128, "strided"),
]


def _make(shape_nhfd, layout, dtype, generator, device):
    # bfhd: transposed views of [N, F, H, D] storage, as diffusers hands them; strided: every dim
    contract_layout = {"bhfd": "bhnd", "bfhd": "bnhd", "strided": "strided"}[layout]
    return random_view(shape_nhfd, contract_layout, dtype, generator=generator, device=device)


def _inputs(case, dtype, device="cpu", seed=0):
    sequences, heads, kv_heads, frames, head_dim, value_dim, layout = case
    generator = torch.Generator().manual_seed(seed + 1000 * frames + head_dim)
    query = _make((sequences, heads, frames, head_dim), layout, dtype, generator, device)
    key = _make((sequences, kv_heads, frames, head_dim), layout, dtype, generator, device)
    value = _make((sequences, kv_heads, frames, value_dim), layout, dtype, generator, device)
    return query, key, value


def _low_precision_attention(query, key, value, scale):
    """FlashAttention's ``attention_ref(upcast=False)``: products in the input dtype."""
    group = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(group, 1), value.repeat_interleave(group, 1)
    probabilities = torch.softmax((query @ key.transpose(-1, -2)).float() * scale, dim=-1)
    return probabilities.to(value.dtype) @ value


def check_against_reference(query, key, value, scale=None):
    """Runs the op on the inputs' device and checks it against the float64 truth on the CPU."""
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    out, cfi = torch.ops.eav.temporal_attention_with_cfi(query, key, value, scale)
    sequences, heads, frames, _ = query.shape
    assert out.shape == (sequences, heads, frames, value.shape[-1]) and out.dtype == query.dtype
    assert cfi.shape == (sequences,) and cfi.dtype == torch.float32
    assert out.device == query.device == cfi.device

    query, key, value = query.cpu(), key.cpu(), value.cpu()
    out, cfi = out.cpu(), cfi.cpu()
    truth = F.scaled_dot_product_attention(query.double(), key.double(), value.double(),
                                           scale=scale, enable_gqa=True)
    low = _low_precision_attention(query, key, value, scale)
    error = (out.double() - truth).abs().max().item()
    allowed = 2 * (low.double() - truth).abs().max().item() + 1e-5
    assert error <= allowed, f"output error {error} > {allowed}"

    if frames == 1:
        assert torch.equal(cfi, torch.zeros_like(cfi))
    else:
        for i in range(sequences):
            assert_meets_contract(cfi[i : i + 1], query[i : i + 1], key[i : i + 1], frames, scale=scale)
    return out, cfi


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}H{}Hk{}F{}D{}Dv{}-{}".format(*c))
def test_cpu_op_matches_float64_reference(case, dtype):
    check_against_reference(*_inputs(case, dtype))


def test_cpu_op_custom_scale_and_determinism():
    query, key, value = _inputs((6, 2, 2, 13, 40, 40, "bfhd"), torch.bfloat16)
    first = check_against_reference(query, key, value, scale=0.3)
    second = torch.ops.eav.temporal_attention_with_cfi(query, key, value, 0.3)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_cpu_op_thread_count_does_not_change_bits(restore_threads):
    query, key, value = _inputs((33, 2, 1, 16, 72, 72, "bfhd"), torch.float16)
    torch.set_num_threads(1)
    single = torch.ops.eav.temporal_attention_with_cfi(query, key, value, 0.125)
    torch.set_num_threads(2)
    multi = torch.ops.eav.temporal_attention_with_cfi(query, key, value, 0.125)
    assert all(torch.equal(a, b) for a, b in zip(single, multi))


def test_cpu_op_rejects_bad_input_with_numbers():
    query, key, value = _inputs((2, 4, 2, 5, 40, 40, "bhfd"), torch.float32)
    with pytest.raises(ValueError, match=r"value .* must be \[sequences, kv_heads, frames, value_dim\]"):
        torch.ops.eav.temporal_attention_with_cfi(query, key, value[:, :, :4], 1.0)
    with pytest.raises(ValueError, match=r"query heads \(4\) must be a multiple of key heads \(3\)"):
        torch.ops.eav.temporal_attention_with_cfi(query, key[:, :1].expand(2, 3, 5, 40), value, 1.0)
    with pytest.raises(ValueError, match="dtype"):
        torch.ops.eav.temporal_attention_with_cfi(query, key, value.half(), 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_opcheck(dtype):
    query, key, value = _inputs((3, 2, 1, 13, 40, 24, "bfhd"), dtype)
    torch.library.opcheck(torch.ops.eav.temporal_attention_with_cfi.default, (query, key, value, 0.2))


def test_fake_validates_like_the_kernel():
    query, key, value = _inputs((2, 2, 2, 5, 40, 40, "bhfd"), torch.float32)
    with torch._subclasses.fake_tensor.FakeTensorMode() as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (query, key, value))
        out, cfi = torch.ops.eav.temporal_attention_with_cfi(fq, fk, fv, 0.5)
        assert out.shape == (2, 2, 5, 40) and cfi.shape == (2,)
        with pytest.raises(ValueError, match="value"):
            torch.ops.eav.temporal_attention_with_cfi(fq, fk, fv[:, :, :3], 0.5)


# enhanced_sdpa's routing of pure temporal attention to this op: tests/test_dispatch.py (the CPU
# twin through the dispatch, and "auto" keeping the general path on CPU).


# ------------------------------------------------------------------------------- CUDA twin

def _cuda_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible"
    if not compiled_extension().cuda_archs():
        return "eav_kernels._C was built without CUDA kernels (CPU torch, or EAV_SKIP_CUDA_BUILD)"
    return None


CUDA_CASES = CASES + [
    (77, 4, 4, 16, 72, 72, "bfhd"),  # Latte-like: many sequences, several blocks
    (5, 2, 2, 64, 64, 64, "bhfd"),
    (3, 2, 2, 70, 40, 40, "bfhd"),  # 5 query tiles: one sequence per block
    (2, 2, 2, 16, 200, 200, "bhfd"),  # kDimChunks = 8
    (2, 2, 2, 13, 256, 320, "bhfd"),  # Dv > 256: SIMT path with two value passes
    (2, 2, 2, 13, 20, 20, "bhfd"),  # head_dim % 8 != 0: scalar fragment loads
]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CUDA_CASES, ids=lambda c: "N{}H{}Hk{}F{}D{}Dv{}-{}".format(*c))
def test_cuda_op_matches_float64_reference(case, dtype):
    reason = _cuda_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    query, key, value = _inputs(case, dtype, device="cuda")
    first = check_against_reference(query, key, value)
    again = torch.ops.eav.temporal_attention_with_cfi(query, key, value, query.shape[-1] ** -0.5)
    assert torch.equal(first[1], again[1].cpu()), "CFI not deterministic"


@pytest.mark.gpu
def test_cuda_enhanced_sdpa_takes_the_compiled_op(monkeypatch):
    """CPU twin: tests/test_dispatch.py::test_fused_path_through_the_cpu_twin."""
    reason = _cuda_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    import eav_kernels as eav
    from contract import assert_enhanced_output_meets_contract

    calls = []
    original = eav.ops.temporal_attention_with_cfi
    monkeypatch.setattr(eav.ops, "temporal_attention_with_cfi", lambda *args: calls.append(1) or original(*args))
    query, key, value = (torch.randn(64, 16, 4, 72, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
                         for _ in range(3))
    fused = eav.enhanced_sdpa(query, key, value, num_frames=16, enhance_weight=4.0, backend="cuda")
    assert calls == [1], "pure temporal attention did not take the compiled CUDA op"
    assert_enhanced_output_meets_contract(fused, query, key, value, 16, 4.0)
