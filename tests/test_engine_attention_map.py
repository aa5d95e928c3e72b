"""CFI read off a hand-written attention map (eav_kernels/engine/attention_map.py) against the
float64 reference from q and k (FlashAttention's contract, tests/contract.py)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from contract import assert_meets_contract, random_query_key
from eav_kernels.engine.attention_map import cross_frame_intensity_from_map

# (batch, heads, frames, spatial, head_dim, text tokens, text position)
SHAPES = [
    (2, 3, 5, 1, 40, 0, None),  # temporal attention: the sequence is the frames
    (1, 2, 13, 7, 72, 0, None),
    (2, 1, 3, 7, 16, 4, "first"),
    (1, 2, 2, 37, 40, 5, "last"),
]

def _hand_written_map(q, k, scale):  # [B, H, N, D] -> [B, H, N, N], as Open-Sora writes it
    return ((q * scale) @ k.transpose(-2, -1)).float().softmax(dim=-1)


def _with_text(q, text_tokens, position, generator):
    text = torch.randn(q.shape[0], q.shape[1], text_tokens, q.shape[3], generator=generator).to(q.dtype)
    return torch.cat([text, q] if position == "first" else [q, text], dim=2)


def _query_key_and_map(shape, dtype, generator):
    """q, k ``[B, H, F*S, D]`` of the video tokens, the full map (text included) and the video
    tokens' slice of it."""
    batch, heads, frames, spatial, head_dim, text_tokens, position = shape
    q, k = random_query_key(batch, heads, frames, spatial, head_dim, dtype, layout="bnhd", generator=generator)
    q_all, k_all, video = q, k, slice(0, frames * spatial)
    if text_tokens:
        q_all, k_all = _with_text(q, text_tokens, position, generator), _with_text(k, text_tokens, position, generator)
        video = slice(text_tokens, None) if position == "first" else video
    return q, k, _hand_written_map(q_all, k_all, head_dim ** -0.5), video


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}H{}F{}S{}D{}T{}{}".format(*s))
def test_float32_map_meets_contract(shape, generator):
    q, k, attention_map, video = _query_key_and_map(shape, torch.float32, generator)
    cfi = cross_frame_intensity_from_map(attention_map, shape[2], video)
    assert cfi.shape == (shape[0],) and cfi.dtype == torch.float32
    assert_meets_contract(cfi, q, k, shape[2], scale=shape[4] ** -0.5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}H{}F{}S{}D{}T{}{}".format(*s))
def test_low_precision_map_gives_the_cfi_of_its_own_logits(shape, dtype, generator):
    """A bf16/fp16 model's map carries its own rounded logits: the CFI read off it is the exact
    (float64) CFI of those logits' temporal softmaxes, up to float32 noise."""
    batch, heads, frames, spatial, head_dim, _, _ = shape
    _, _, attention_map, video = _query_key_and_map(shape, dtype, generator)
    logits = attention_map.double().log()[..., video, video]  # = rounded logits - row LSE
    temporal = logits.unflatten(-1, (frames, spatial)).unflatten(-3, (frames, spatial))
    temporal = torch.stack([temporal[:, :, :, s, :, s] for s in range(spatial)], dim=2)  # [B,H,S,F,F]
    diagonal = temporal.softmax(dim=-1).diagonal(dim1=-2, dim2=-1)  # [B, H, S, F]
    expected = ((1 - diagonal) / (frames - 1)).flatten(1).mean(1)
    torch.testing.assert_close(cross_frame_intensity_from_map(attention_map, frames, video).double(), expected,
                               rtol=1e-6, atol=1e-7)


def test_leading_axes_fold_into_the_first(generator):
    """A ``[B*H, N, N]`` map (heads folded into the batch) gives per-(b, h) CFIs whose batch-major
    means are the ``[B, H, N, N]`` map's per-batch CFIs."""
    q, k = random_query_key(2, 3, 4, 5, 16, torch.float32, generator=generator)
    attention_map = _hand_written_map(q, k, 0.25)
    per_sample = cross_frame_intensity_from_map(attention_map, 4, slice(0, 20))
    per_head = cross_frame_intensity_from_map(attention_map.flatten(0, 1), 4, slice(0, 20))
    torch.testing.assert_close(per_head.view(2, 3).mean(1), per_sample)


class _LargestAllocation(TorchDispatchMode):
    """The largest tensor made in new memory (views of ``source`` share its storage)."""

    def __init__(self, source: torch.Tensor):
        super().__init__()
        self.source = source.untyped_storage().data_ptr()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor) and tensor.untyped_storage().data_ptr() != self.source:
                self.largest = max(self.largest, tensor.numel())
        return out


def test_never_builds_a_second_temporal_map(generator):
    """Every tensor it makes holds one value per query row at most: the F x F temporal maps (as
    many values as rows x F) are only ever read through views of the model's map."""
    batch, heads, frames, spatial = 2, 2, 6, 5
    q, k = random_query_key(batch, heads, frames, spatial, 16, torch.float32, generator=generator)
    attention_map = _hand_written_map(q, k, 0.25)
    with _LargestAllocation(attention_map) as watch:
        cross_frame_intensity_from_map(attention_map, frames, slice(0, frames * spatial))
    rows = batch * heads * frames * spatial
    assert 0 < watch.largest <= rows < rows * frames


def test_one_frame_is_zero_and_bad_frames_are_loud(generator):
    q, k = random_query_key(1, 1, 1, 6, 16, torch.float32, generator=generator)
    attention_map = _hand_written_map(q, k, 0.25)
    assert torch.equal(cross_frame_intensity_from_map(attention_map, 1, slice(0, 6)), torch.zeros(1))
    with pytest.raises(ValueError, match=r"video tokens \(6\) not divisible by num_frames \(4\)"):
        cross_frame_intensity_from_map(attention_map, 4, slice(0, 6))
