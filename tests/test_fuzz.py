"""Property-based fuzzing of the public ops (hypothesis).

Every drawn call either meets the contract (tests/contract.py) or raises ValueError/TypeError
with a message naming what is wrong; nothing else (no crash, no other exception, no silent
wrong answer). Shapes mix 1s and primes; dtypes fp32/fp16/bf16; q and k each come contiguous,
transposed ([B, N, H, D] storage), sliced (every dim strided) or expanded (stride 0 over key
heads or batch); scale, GQA grouping and video slices vary, and some draws are invalid on
purpose (num_frames not dividing the tokens, video slices out of range).

Profiles (tests/conftest.py): "ci" (50 examples, part of `make test`) and "thorough" (1000):
    HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import pytest
import torch
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import eav_kernels as eav
from eav_kernels._extension import compiled_extension
from contract import assert_meets_contract

# The compiled kernel; the reference backend only where it is not built (against itself the
# contract cannot fail, so there the fuzzing checks the validation and the slices).
BACKENDS = ["cpu"] if compiled_extension() is not None else ["reference"]
SMALL = st.sampled_from([1, 2, 3, 5, 7])
LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SCALES = [None, 0.01, 0.3, 1.0, 2.5, -0.7]


def make_tensor(batch: int, heads: int, tokens: int, head_dim: int, dtype: torch.dtype, layout: str,
                seed: int) -> torch.Tensor:
    """[batch, heads, tokens, head_dim] random (never zeros) with the given memory layout."""
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        x = torch.randn(batch, heads, tokens, head_dim, generator=g)
    elif layout == "transposed":  # diffusers' [B, N, H, D] storage
        x = torch.randn(batch, tokens, heads, head_dim, generator=g).transpose(1, 2)
    elif layout == "sliced":  # every dimension strided, offset storage
        x = torch.randn(batch * 2, heads * 3, tokens + 1, head_dim * 2 + 1, generator=g)
        x = x[1::2, ::3, 1:, 1::2][..., :head_dim]
    elif layout == "expanded":  # stride 0: one key head shared by all heads, one batch by all
        x = torch.randn(1, 1, tokens, head_dim, generator=g).expand(batch, heads, tokens, head_dim)
    else:
        raise AssertionError(layout)
    # dtype conversion of a view copies; keep the layout by converting the base first
    if x.dtype != dtype:
        x = _same_strides_in(x, dtype)
    return x


def _same_strides_in(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` converted to ``dtype`` with the same strides (as_strided over converted storage)."""
    base = torch.empty(x.untyped_storage().nbytes() // x.element_size(), dtype=x.dtype)
    base.set_(x.untyped_storage(), 0, (base.numel(),), (1,))
    converted = base.to(dtype)
    return converted.as_strided(x.shape, x.stride(), x.storage_offset())


@st.composite
def problems(draw):
    batch = draw(st.sampled_from([1, 2, 3]))
    kv_heads = draw(SMALL)
    group = draw(st.sampled_from([1, 2, 3]))
    num_frames = draw(st.sampled_from([1, 2, 3, 5, 7, 13]))
    spatial = draw(SMALL)
    head_dim = draw(st.sampled_from([1, 2, 3, 7, 8, 16, 17, 40]))
    # usually frame-major tokens; sometimes one token too many (not divisible by num_frames)
    tokens = num_frames * spatial + draw(st.sampled_from([0] * 7 + [1]))
    return dict(
        batch=batch, heads=kv_heads * group, kv_heads=kv_heads, num_frames=num_frames,
        tokens=tokens, head_dim=head_dim,
        dtype=draw(st.sampled_from(DTYPES)),
        query_layout=draw(st.sampled_from(LAYOUTS)),
        key_layout=draw(st.sampled_from(LAYOUTS)),
        scale=draw(st.sampled_from(SCALES)),
        seed=draw(st.integers(0, 2**31 - 1)),
        backend=draw(st.sampled_from(BACKENDS)),
    )


def query_key(p):
    q = make_tensor(p["batch"], p["heads"], p["tokens"], p["head_dim"], p["dtype"], p["query_layout"], p["seed"])
    k = make_tensor(p["batch"], p["kv_heads"], p["tokens"], p["head_dim"], p["dtype"], p["key_layout"], p["seed"] + 1)
    return q, k


@given(problems())
def test_cross_frame_intensity_meets_contract_or_says_why(p):
    q, k = query_key(p)
    try:
        cfi = eav.cross_frame_intensity(q, k, p["num_frames"], scale=p["scale"], per_sample=True,
                                        backend=p["backend"])
    except (ValueError, TypeError) as error:
        # the only invalid draws: tokens not divisible by num_frames
        assert p["tokens"] % p["num_frames"] != 0, f"unexpected rejection: {error}"
        assert f"video tokens ({p['tokens']}) not divisible by num_frames ({p['num_frames']})" in str(error)
        return
    assert p["tokens"] % p["num_frames"] == 0, "an indivisible token count was accepted"
    assert cfi.shape == (p["batch"],) and cfi.dtype == torch.float32
    assert_meets_contract(cfi, q, k, p["num_frames"], scale=p["scale"])


@given(problems(), st.integers(-12, 12), st.integers(-12, 14), st.sampled_from([None, 1, 2]))
def test_video_slices_meet_contract_or_say_why(p, start, stop, step):
    """attention_with_enhance_score over a slice of the tokens (text elsewhere)."""
    q, k = query_key(p)
    v = make_tensor(p["batch"], p["kv_heads"], p["tokens"], 4, p["dtype"], "contiguous", p["seed"] + 2)
    video = slice(start, stop, step)
    try:
        out, score = eav.attention_with_enhance_score(
            q, k, v, scale=p["scale"], enable_gqa=True, num_frames=p["num_frames"],
            enhance_weight=2.0, video_tokens=video, per_sample=True, backend=p["backend"],
        )
    except (ValueError, TypeError) as error:
        message = str(error)
        assert "video_tokens" in message or "not divisible by num_frames" in message, message
        bounds = _slice_bounds(video, p["tokens"])
        if bounds is not None:  # a valid slice: only its length can be wrong
            assert (bounds[1] - bounds[0]) % p["num_frames"] != 0, f"unexpected rejection: {message}"
            assert "not divisible by num_frames" in message, message
        return
    bounds = _slice_bounds(video, p["tokens"])
    assert bounds is not None, f"slice {video} of {p['tokens']} tokens was accepted"
    qv, kv = q[:, :, bounds[0]:bounds[1]], k[:, :, bounds[0]:bounds[1]]
    direct = eav.cross_frame_intensity(qv, kv, p["num_frames"], scale=p["scale"], per_sample=True,
                                       backend=p["backend"])
    assert torch.equal(score, eav.enhance_score(direct, p["num_frames"], 2.0))
    assert_meets_contract(direct, qv, kv, p["num_frames"], scale=p["scale"])
    assert out.shape == (p["batch"], p["heads"], p["tokens"], 4) and score.shape == (p["batch"],)


def _slice_bounds(video: slice, tokens: int) -> tuple[int, int] | None:
    """[start, stop) of a valid video slice (step 1, Python-style negative bounds, non-empty,
    within the tokens: out-of-range bounds are an error, never clamped), else None."""
    if video.step not in (None, 1):
        return None
    start = 0 if video.start is None else video.start
    stop = tokens if video.stop is None else video.stop
    start, stop = start + tokens if start < 0 else start, stop + tokens if stop < 0 else stop
    return (start, stop) if 0 <= start < stop <= tokens else None


@given(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), "0.5", True]),
    st.sampled_from(BACKENDS),
)
def test_bad_scale_is_rejected(scale, backend):
    q = torch.randn(1, 1, 6, 8)
    error = TypeError if isinstance(scale, (str, bool)) else ValueError
    with pytest.raises(error, match="scale must be"):
        eav.cross_frame_intensity(q, q, 3, scale=scale, backend=backend)
