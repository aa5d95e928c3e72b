"""The dispatch core: one validated problem per call, backends declaring contracts and reasons,
the fused temporal path, capabilities found once, and the renamed keywords."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels import backends, capabilities, dispatch, validation
from eav_kernels._extension import compiled_extension
from eav_kernels.problem import attention_problem, cross_frame_problem, default_scale
from contract import assert_enhanced_output_meets_contract, random_query_key

requires_extension = pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")


class _Counter:
    """Stands in for a function and counts the calls."""

    def __init__(self, original):
        self.original, self.calls = original, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.original(*args, **kwargs)


def _temporal_inputs(sequences=6, heads=2, kv_heads=2, frames=16, head_dim=40, dtype=torch.float32, seed=0):
    """q, k, v [N_seq, H, F, D]: transposed views of [N_seq, F, H, D], as diffusers hands them."""
    generator = torch.Generator().manual_seed(seed)
    make = lambda h: torch.randn(sequences, frames, h, head_dim, generator=generator).to(dtype).transpose(1, 2)  # noqa: E731
    return make(heads), make(kv_heads), make(kv_heads)


def test_every_call_validates_once(monkeypatch, generator):
    """q and k are checked once per call (they were checked three times per enhanced_sdpa call)."""
    counter = _Counter(validation.check_query_key)
    monkeypatch.setattr("eav_kernels.problem.check_query_key", counter)
    q, k = random_query_key(1, 2, 4, 8, 16, torch.float32, generator=generator)
    eav.cross_frame_intensity(q, k, 4)
    assert counter.calls == 1
    eav.enhanced_sdpa(q, k, k, num_frames=4, enhance_weight=4.0, video_tokens=slice(0, 32))
    eav.attention_with_enhance_score(q, k, k, num_frames=4, enhance_weight=4.0)
    assert counter.calls == 3


def test_problem_resolves_the_scale_once_and_keeps_sdpas_own():
    q = torch.randn(1, 1, 6, 8)
    assert cross_frame_problem(q, q, 3, None).scale == default_scale(8) == 8 ** -0.5
    problem = attention_problem(q, q, q, None, 0.0, False, None, False, 3, slice(3, 6))
    assert (problem.scale, problem.sdpa_scale) == (8 ** -0.5, None)  # SDPA keeps its own default
    assert (problem.video_start, problem.video_length) == (3, 3)
    assert attention_problem(q, q, q, None, 0.0, False, 2, False, 3, None).scale == 2.0


@pytest.mark.parametrize(
    "change, pure",
    [({}, True), ({"attn_mask": torch.ones(16, 16, dtype=torch.bool)}, False), ({"dropout_p": 0.1}, False),
     ({"is_causal": True}, False), ({"num_frames": 8}, False), ({"grad": True}, False)],
    ids=["pure", "mask", "dropout", "causal", "tokens-are-not-frames", "grad"],
)
def test_pure_temporal_problems(change, pure):
    q, k, v = _temporal_inputs()
    if change.get("grad"):
        q = q.detach().requires_grad_()
    problem = attention_problem(q, k, v, change.get("attn_mask"), change.get("dropout_p", 0.0),
                                change.get("is_causal", False), None, False, change.get("num_frames", 16), None)
    assert problem.is_pure_temporal() is pure
    if change.get("grad"):  # the fused kernels are forward-only: fine without autograd
        with torch.no_grad():
            assert problem.is_pure_temporal()


def test_registry_declares_contracts_and_whole_problem_reasons():
    q, k, v = _temporal_inputs()
    problem = attention_problem(q, k, v, None, 0.0, False, None, False, 16, None)
    reference = backends.BACKENDS["reference"]
    assert backends.TEMPORAL_ATTENTION not in reference.contracts
    assert reference.not_supported_reasons(problem, backends.TEMPORAL_ATTENTION) == (
        f"does not implement the {backends.TEMPORAL_ATTENTION} contract",)
    cuda = backends.BACKENDS["cuda"].not_supported_reasons(problem, backends.CROSS_FRAME_INTENSITY)
    assert cuda and ("runs on cuda tensors, got cpu" in cuda[0] or "not built" in cuda[0])
    assert backends.backend_for(backends.CROSS_FRAME_INTENSITY, problem, "reference") is reference
    with pytest.raises(ValueError, match="backend 'reference' cannot take this input: does not implement"):
        backends.backend_for(backends.TEMPORAL_ATTENTION, problem, "reference")


@requires_extension
def test_auto_never_takes_the_cpu_fused_op_and_says_why(monkeypatch):
    """On CPU the fused temporal op is slower than SDPA + the CFI kernel: a declared reason."""
    counter = _Counter(eav.ops.temporal_attention_with_cfi)
    monkeypatch.setattr(eav.ops, "temporal_attention_with_cfi", counter)
    q, k, v = _temporal_inputs()
    problem = attention_problem(q, k, v, None, 0.0, False, None, False, 16, None)
    reasons = backends.BACKENDS["cpu"].not_supported_reasons(problem, backends.TEMPORAL_ATTENTION)
    assert reasons == (backends.CPU_TEMPORAL_REASON,)
    if not capabilities.triton_interpreting():
        assert backends.fused_backend_for(problem, "auto") is None
    for backend in ("auto", "cpu"):
        eav.enhanced_sdpa(q, k, v, num_frames=16, enhance_weight=4.0, backend=backend)
    assert counter.calls == 0


@requires_extension
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kv_heads", [2, 1], ids=["mha", "gqa"])
def test_fused_path_through_the_cpu_twin(dtype, kv_heads, monkeypatch):
    """The path a CUDA/Triton pure temporal call takes (fused op, its per-sequence CFI averaged,
    the score applied in place), run here with the CPU-compiled op as the backend's kernel."""
    monkeypatch.setattr(backends.BACKENDS["cpu"], "temporal_reason", None)
    counter = _Counter(eav.ops.temporal_attention_with_cfi)
    monkeypatch.setattr(eav.ops, "temporal_attention_with_cfi", counter)
    q, k, v = _temporal_inputs(kv_heads=kv_heads, dtype=dtype)
    out = eav.enhanced_sdpa(q, k, v, enable_gqa=kv_heads != 2, num_frames=16, enhance_weight=4.0,
                            backend="cpu")
    assert counter.calls == 1, "pure temporal attention did not take the fused op"
    assert out.shape == (6, 2, 16, 40) and out.dtype == dtype
    assert_enhanced_output_meets_contract(out, q, k, v, 16, 4.0)
    eav.enhanced_sdpa(q, k, v, is_causal=True, enable_gqa=kv_heads != 2, num_frames=16,
                      enhance_weight=4.0, backend="cpu")
    assert counter.calls == 1, "a causal call is not pure temporal attention"


@requires_extension
def test_attention_with_enhance_score_takes_the_fused_path_too(monkeypatch):
    monkeypatch.setattr(backends.BACKENDS["cpu"], "temporal_reason", None)
    q, k, v = _temporal_inputs(seed=4)
    out, score = eav.attention_with_enhance_score(q, k, v, num_frames=16, enhance_weight=4.0,
                                                  per_sample=True, backend="cpu")
    fused_out, fused_cfi = torch.ops.eav.temporal_attention_with_cfi(q, k, v, 40 ** -0.5)
    assert torch.equal(out, fused_out)  # unscaled
    assert torch.equal(score, eav.enhance_score(fused_cfi, 16, 4.0))


def test_capabilities_are_found_once(monkeypatch):
    import importlib.util

    capabilities.triton_importable()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: pytest.fail("looked for triton again"))
    q = torch.randn(1, 1, 4, 8)
    for _ in range(3):
        eav.available_backends(q, q)
        eav.cross_frame_intensity(q, q, 2)


def test_available_backends_give_every_reason():
    q = torch.randn(1, 1, 4, 8, device="meta")
    reasons = eav.available_backends(q, q)
    assert reasons["reference"] is None
    assert all(reasons[name] for name in ("cuda", "triton", "cpu")), reasons
    if compiled_extension() is not None:
        assert reasons["cpu"] == "runs on cpu tensors, got meta"


@pytest.mark.parametrize("weight", [math.nan, math.inf, -math.inf])
def test_non_finite_enhance_weight_is_an_error(weight, generator):
    q, k = random_query_key(1, 1, 3, 2, 8, torch.float32, generator=generator)
    message = f"enhance_weight must be a finite number, got {weight}"
    with pytest.raises(ValueError, match=message):
        eav.enhanced_sdpa(q, k, k, num_frames=3, enhance_weight=weight)
    with pytest.raises(ValueError, match=message):
        eav.attention_with_enhance_score(q, k, k, num_frames=3, enhance_weight=weight)
    with pytest.raises(ValueError, match=message):
        eav.enhance_score(torch.tensor(0.3), 3, weight)
    with pytest.raises(ValueError, match=message):
        eav.EnhanceAVideoConfig(enhance_weight=weight)
    with pytest.raises(ValueError, match=message):
        eav.EnhanceAVideoConfig(layers={"a": weight})


def test_old_keyword_spellings_warn_and_mean_the_same(generator):
    q, k = random_query_key(2, 2, 3, 4, 8, torch.float32, generator=generator)
    new = eav.cross_frame_intensity(q, k, 3, per_sample=True)
    with pytest.warns(DeprecationWarning, match="'per_batch' is deprecated; use 'per_sample'"):
        old = eav.cross_frame_intensity(q, k, 3, per_batch=True)
    assert torch.equal(old, new)
    with pytest.warns(DeprecationWarning, match="'per_batch'"):
        _, score = eav.attention_with_enhance_score(q, k, k, num_frames=3, enhance_weight=9.0, per_batch=True)
    assert score.shape == (2,)
    with pytest.warns(DeprecationWarning, match="'per_batch'"):
        reference = eav.cross_frame_intensity_reference(q, k, 3, per_batch=True)
    assert reference.shape == (2,)
    with pytest.warns(DeprecationWarning, match="'weight' is deprecated; use 'enhance_weight'"):
        config = eav.EnhanceAVideoConfig(weight=3.4)
    assert config == eav.EnhanceAVideoConfig(enhance_weight=3.4)
    with pytest.warns(DeprecationWarning, match="EnhanceAVideoConfig.weight is deprecated"):
        assert config.weight == 3.4
    with pytest.raises(TypeError, match="got both per_sample=True and its old spelling per_batch=False"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            eav.cross_frame_intensity(q, k, 3, per_sample=True, per_batch=False)


def test_one_element_mean_is_the_element(generator):
    q, k = random_query_key(1, 3, 5, 7, 16, torch.bfloat16, generator=generator)
    per_sample = eav.cross_frame_intensity(q, k, 5, per_sample=True)
    mean = eav.cross_frame_intensity(q, k, 5)
    assert mean.shape == () and mean.item() == per_sample.item()
    assert dispatch.batch_mean(torch.tensor([0.25, 0.5])).item() == 0.375


def test_enhanced_sdpa_scales_in_place_only_without_autograd(generator):
    q, k = random_query_key(1, 2, 4, 3, 8, torch.float32, generator=generator)
    v = q.detach().clone().requires_grad_()
    out = eav.enhanced_sdpa(q, k, v, num_frames=4, enhance_weight=30.0)
    expected = F.scaled_dot_product_attention(q, k, v) * eav.enhance_score(eav.cross_frame_intensity(q, k, 4), 4, 30.0)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    out.sum().backward()
    assert v.grad is not None


def test_host_made_score_has_the_bits_of_the_tensor_ops():
    """The CPU score made in Python equals ``score_in_place(batch_mean(cfi))`` bit for bit, over
    batch sizes, frame counts, weights (negative ones too) and CFI magnitudes; NaN stays NaN."""
    rng = torch.Generator().manual_seed(7)
    for trial in range(3000):
        batch = (1, 2, 3)[trial % 3]
        num_frames = (2, 3, 13, 33)[trial % 4]
        enhance_weight = float(torch.empty(()).uniform_(-40.0, 40.0, generator=rng))
        cfi = torch.rand(batch, generator=rng) * (1e-3, 0.1, 1.0, 10.0)[trial % 4]
        if trial % 97 == 0:
            cfi[0] = float("nan")
        fast = dispatch.whole_batch_score(cfi.clone(), num_frames, enhance_weight)
        tensor_ops = dispatch.score_in_place(dispatch.batch_mean(cfi.clone()), num_frames, enhance_weight)
        assert fast.dtype == torch.float32 and fast.shape == ()
        assert torch.equal(fast, tensor_ops) or (fast.isnan() and tensor_ops.isnan()), (cfi, enhance_weight)
