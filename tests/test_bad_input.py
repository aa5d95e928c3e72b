"""Bad input reaches a clear Python error, never a crash, at every entry point: the public API
(ValueError/TypeError from eav_kernels.validation) and the compiled op called directly
(EAV_CHECK in csrc/tensor_problem.h, checked before any memory is read: always a ValueError, the
one typed exception besides RuntimeError that crosses torch's stable ABI).
Complements test_cross_frame_intensity.py (rank, dtype, device, shapes, num_frames, zero-size).
"""

from __future__ import annotations

import pytest
import torch

import eav_kernels as eav
from eav_kernels._extension import compiled_extension
from contract import assert_meets_contract

requires_extension = pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")
op = lambda *args: torch.ops.eav.cross_frame_intensity(*args)  # noqa: E731


def _q(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@requires_extension
@pytest.mark.parametrize(
    "make_args, error, message",
    [
        (lambda: (_q(6, 8), _q(6, 8), 3, 0.5), ValueError, "got 2 dims"),
        (lambda: (_q(1, 1, 1, 6, 8), _q(1, 1, 1, 6, 8), 3, 0.5), ValueError, "got 5 dims"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8, dtype=torch.half), 3, 0.5), ValueError, "same dtype"),
        (lambda: (torch.ones(1, 1, 6, 8, dtype=torch.int32),) * 2 + (3, 0.5), ValueError, "float32, float16 or bfloat16"),
        (lambda: (_q(1, 1, 6, 8, dtype=torch.float64),) * 2 + (3, 0.5), ValueError, "float32, float16 or bfloat16"),
        (lambda: (_q(1, 1, 6, 8), _q(2, 1, 6, 8), 3, 0.5), ValueError, "agree in batch"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 9, 8), 3, 0.5), ValueError, "agree in batch"),
        (lambda: (_q(1, 4, 6, 8), _q(1, 3, 6, 8), 3, 0.5), ValueError, r"heads \(4\) must be a multiple of key heads \(3\)"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), -1, 0.5), ValueError, "num_frames must be >= 1, got -1"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 12, 0.5), ValueError, r"video tokens \(6\) not divisible by num_frames \(12\)"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 2**62, 0.5), ValueError, "not divisible by num_frames"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 3, float("nan")), ValueError, "scale must be a finite number"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 3, float("inf")), ValueError, "scale must be a finite number"),
        (lambda: (_q(1, 1, 6, 0), _q(1, 1, 6, 0), 3, 0.5), ValueError, "zero-size"),
        (lambda: (_q(1, 1, 0, 8), _q(1, 1, 0, 8), 3, 0.5), ValueError, "zero-size"),
        (lambda: (_q(1, 1, 6, 8).to_sparse(), _q(1, 1, 6, 8).to_sparse(), 3, 0.5), NotImplementedError, "SparseCPU"),
        (lambda: (_q(1, 1, 16385, 1), _q(1, 1, 16385, 1), 16385, 0.5), ValueError, r"num_frames \(16385\) exceeds the CPU kernel's maximum"),
    ],
    ids=["rank2", "rank5", "dtype-mismatch", "int32", "float64", "batch", "tokens", "heads",
         "negative-frames", "frames-above-tokens", "frames-huge", "nan-scale", "inf-scale",
         "zero-head-dim", "zero-tokens", "sparse", "frames-above-cpu-limit"],
)
def test_compiled_op_rejects(make_args, error, message):
    with pytest.raises(error, match=message):
        op(*make_args())


@requires_extension
def test_compiled_op_device_mismatch_is_an_error_not_a_meta_result():
    """cpu + meta dispatches to the fake (meta) kernel: it validates like the C++ entry."""
    with pytest.raises(ValueError, match="same device"):
        op(_q(1, 1, 6, 8), torch.empty(1, 1, 6, 8, device="meta"), 3, 0.5)


@requires_extension
def test_compiled_op_takes_odd_but_valid_strides():
    """Stride 0 (expanded) and overlapping views are read in place, not rejected."""
    q = torch.randn(1, 1, 6, 8).expand(2, 4, 6, 8)
    k = torch.randn(1, 6, 1, 8).expand(2, 6, 2, 8).transpose(1, 2)
    out = op(q, k, 3, 0.5)
    assert_meets_contract(out, q.contiguous(), k.contiguous(), 3, scale=0.5)


@pytest.mark.parametrize("backend", ["reference"] + (["cpu"] if compiled_extension() else []))
@pytest.mark.parametrize(
    "make_args, kwargs, error, message",
    [
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 3), dict(scale=float("nan")), ValueError, "scale must be a finite number"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 3), dict(scale="1"), TypeError, "scale must be a float"),
        (lambda: (_q(1, 1, 6, 8).to_sparse(), _q(1, 1, 6, 8).to_sparse(), 3), {}, TypeError, "dense"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 3.0), {}, TypeError, "num_frames must be an int"),
        (lambda: (_q(1, 1, 6, 8), _q(1, 1, 6, 8), 7), {}, ValueError, r"video tokens \(6\) not divisible by num_frames \(7\)"),
        (lambda: ("q", _q(1, 1, 6, 8), 3), {}, TypeError, "query must be a torch.Tensor"),
        (lambda: (_q(1, 1, 6, 8, dtype=torch.float64),) * 2 + (3,), {}, TypeError, "float32, float16 or bfloat16"),
    ],
    ids=["nan-scale", "str-scale", "sparse", "float-frames", "frames-above-tokens", "not-tensor", "float64"],
)
def test_public_api_rejects(make_args, kwargs, error, message, backend):
    with pytest.raises(error, match=message):
        eav.cross_frame_intensity(*make_args(), backend=backend, **kwargs)


@pytest.mark.parametrize(
    "video_tokens, message",
    [
        (slice(0, 13), "within the 12 tokens"),
        (slice(-13, None), "within the 12 tokens"),
        (slice(6, 6), "non-empty"),
        (slice(0, 12, 2), "step 1"),
        ((0, 6), "must be a slice or None"),
    ],
)
def test_enhanced_sdpa_rejects_bad_video_slices(video_tokens, message):
    q = torch.randn(1, 2, 12, 8)
    with pytest.raises((ValueError, TypeError), match=message):
        eav.enhanced_sdpa(q, q, q, num_frames=3, enhance_weight=1.0, video_tokens=video_tokens)
