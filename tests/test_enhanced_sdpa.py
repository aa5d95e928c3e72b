"""enhanced_sdpa: SDPA with the video rows scaled by the enhance score, text rows untouched."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels._extension import compiled_extension
from contract import contract_bound

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# The score's backend: the compiled kernel (the reference where it is not built).
BACKENDS = ["cpu"] if compiled_extension() is not None else ["reference"]


def joint_attention_inputs(batch, heads, frames, spatial, text, head_dim, dtype, generator, text_first=True):
    """q, k, v [B, H, N, D] as transposed views of [B, N, H, D] (diffusers' layout)."""
    tokens = frames * spatial + text
    make = lambda: torch.randn(batch, tokens, heads, head_dim, generator=generator).to(dtype).transpose(1, 2)
    video = slice(text, None) if text_first else slice(0, frames * spatial)
    return make(), make(), make(), video


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("text_first", [True, False], ids=["text-first", "text-last"])
def test_text_rows_untouched_video_rows_scaled(backend, dtype, text_first, generator):
    frames, spatial, text = 13, 5, 11
    q, k, v, video = joint_attention_inputs(2, 3, frames, spatial, text, 40, dtype, generator, text_first)
    # a large weight, so that the score is above 1 and the scaling is visible
    out = eav.enhanced_sdpa(q, k, v, num_frames=frames, enhance_weight=40.0, video_tokens=video, backend=backend)
    plain = F.scaled_dot_product_attention(q, k, v)
    cfi = eav.cross_frame_intensity(q[:, :, video], k[:, :, video], frames, backend=backend)
    score = eav.enhance_score(cfi, frames, 40.0)
    assert score.item() > 1.0
    text_rows = slice(0, text) if text_first else slice(frames * spatial, None)
    assert torch.equal(out[:, :, text_rows], plain[:, :, text_rows])
    assert torch.equal(out[:, :, video], (plain[:, :, video].float() * score).to(dtype))
    # and the score is the reference's, within the contract
    truth, allowed = contract_bound(q[:, :, video], k[:, :, video], frames)
    assert abs(cfi.item() - truth.mean().item()) <= allowed.max().item()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_attention_with_enhance_score_per_sample(backend, dtype, generator):
    q, k, v, video = joint_attention_inputs(3, 2, 7, 4, 5, 16, dtype, generator)
    out, score = eav.attention_with_enhance_score(
        q, k, v, num_frames=7, enhance_weight=30.0, video_tokens=video, per_sample=True, backend=backend
    )
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v))
    assert score.shape == (3,)
    # the score enhanced_sdpa computes in place equals the public formula on the public CFI
    per_sample_cfi = eav.cross_frame_intensity(q[:, :, video], k[:, :, video], 7, per_sample=True, backend=backend)
    assert torch.equal(score, eav.enhance_score(per_sample_cfi, 7, 30.0))
    scaled = eav.scale_video_tokens(out, score, video, token_dim=2)
    in_place = eav.scale_video_tokens(out.clone(), score, video, token_dim=2, inplace=True)
    assert torch.equal(scaled, in_place)
    for b in range(3):
        assert torch.equal(scaled[b, :, video], (out[b, :, video].float() * score[b]).to(dtype))
        assert torch.equal(scaled[b, :, :5], out[b, :, :5])


def test_all_video_tokens_and_gqa(generator):
    q = torch.randn(1, 4, 12, 8, generator=generator)
    k = torch.randn(1, 2, 12, 8, generator=generator)
    v = torch.randn(1, 2, 12, 8, generator=generator)
    out = eav.enhanced_sdpa(q, k, v, enable_gqa=True, num_frames=3, enhance_weight=50.0)
    plain = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    score = eav.enhance_score(eav.cross_frame_intensity(q, k, 3), 3, 50.0)
    assert torch.equal(out, plain * score)
    with pytest.raises(ValueError, match="pass enable_gqa=True"):
        eav.enhanced_sdpa(q, k, v, num_frames=3, enhance_weight=4.0)


def test_single_frame_returns_sdpa_exactly(generator):
    q, k, v, video = joint_attention_inputs(1, 2, 1, 9, 4, 16, torch.bfloat16, generator)
    out = eav.enhanced_sdpa(q, k, v, num_frames=1, enhance_weight=100.0, video_tokens=video)
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v))


def test_score_clamped_to_one_returns_sdpa_exactly(generator):
    q, k, v, video = joint_attention_inputs(1, 2, 5, 3, 4, 16, torch.bfloat16, generator)
    out = eav.enhanced_sdpa(q, k, v, num_frames=5, enhance_weight=-100.0, video_tokens=video)
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v))


def test_nan_in_nan_out(generator):
    q, k, v, video = joint_attention_inputs(1, 1, 3, 2, 2, 8, torch.float32, generator)
    q[0, 0, 4, 0] = math.nan
    out = eav.enhanced_sdpa(q, k, v, num_frames=3, enhance_weight=4.0, video_tokens=video)
    assert torch.isnan(out[:, :, video]).all()


def test_gradients_flow_through_attention(generator):
    q, k, v, video = joint_attention_inputs(1, 2, 4, 3, 2, 8, torch.float32, generator)
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    out = eav.enhanced_sdpa(q, k, v, num_frames=4, enhance_weight=40.0, video_tokens=video)
    out.sum().backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in (q, k, v))
    assert not q.detach().isnan().any()  # nothing was modified in place


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_frames=4, video_tokens=slice(2, None)), r"video tokens \(18\) not divisible by num_frames \(4\)"),
        (dict(num_frames=3, video_tokens=slice(2, 30)), "must be a non-empty range within the 20 tokens"),
        (dict(num_frames=3, video_tokens=slice(2, None, 2)), "contiguous"),
        (dict(num_frames=3, video_tokens=[1, 2]), "slice or None"),
    ],
)
def test_bad_video_tokens(kwargs, message, generator):
    q = torch.randn(1, 1, 20, 8, generator=generator)
    with pytest.raises((ValueError, TypeError), match=message):
        eav.enhanced_sdpa(q, q, q, enhance_weight=4.0, **kwargs)


def test_compiles_fullgraph_and_matches_eager(generator):
    q, k, v, video = joint_attention_inputs(2, 2, 5, 3, 4, 16, torch.float32, generator)

    def fn(q, k, v):
        return eav.enhanced_sdpa(q, k, v, num_frames=5, enhance_weight=40.0, video_tokens=video)

    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(q, k, v), fn(q, k, v), rtol=1e-6, atol=1e-6)
