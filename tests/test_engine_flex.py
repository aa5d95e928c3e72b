"""A model calling ``torch.nn.attention.flex_attention.flex_attention`` itself is enhanced exactly,
against a float64 reference independent of the engine; a flex call whose logits are not
``scale * q kᵀ`` over the whole video square (a ``score_mod``, a block mask hiding a video key
from a video query) is refused with the layer's name; ``video_square_hole`` follows flex's own
block semantics. Under ``torch.compile`` the tapped flex call is seen too (the capture's traced
path, taps.py): compiled equals eager."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

import eav_kernels as eav
from contract import assert_meets_contract
from eav_kernels.engine import AdapterSpec, enhance_module, remove_enhancement
from eav_kernels.engine.flex_mask import _listed_blocks, video_square_hole
from twin_layers import randomise_

FRAMES, POSITIONS, TEXT, HEADS, HEAD_DIM = 3, 7, 4, 3, 8  # odd sizes: 25 tokens, 3 heads
VIDEO = FRAMES * POSITIONS
WEIGHT = 4.0
# the usual way to run flex fused (dynamo alone here: nothing lowered, the test stays fast)
compiled_flex_attention = torch.compile(flex_attention, backend="eager")


class FlexAttention(nn.Module):
    """Joint self-attention over ``[video; text]`` tokens through flex_attention, with the
    layer's ``block_mask`` and ``score_mod`` (``None``: plain attention); returns the video rows."""

    def __init__(self, dim: int):
        super().__init__()
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.block_mask: BlockMask | None = None
        self.score_mod = None
        self.compiled = False

    def query_key_value(self, x, text):  # [B, V, C], [B, T, C] -> 3 x [B, H, V + T, D]
        tokens = torch.cat([x, text], dim=1)
        return self.to_qkv(tokens).unflatten(-1, (3, HEADS, HEAD_DIM)).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x, text):  # [B, V, C] frame-major video, [B, T, C] -> [B, V, C]
        attend = compiled_flex_attention if self.compiled else flex_attention  # bound in this module
        out = attend(*self.query_key_value(x, text), score_mod=self.score_mod, block_mask=self.block_mask)
        return self.proj(out.transpose(1, 2).flatten(2)[:, :x.shape[1]])


class FlexVideoModel(nn.Module):
    def __init__(self, depth: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList([FlexAttention(HEADS * HEAD_DIM) for _ in range(depth)])

    def forward(self, hidden_states, encoder_hidden_states, num_frames: int):  # [B, F*S, C], [B, T, C]
        for block in self.blocks:
            hidden_states = hidden_states + block(hidden_states, encoder_hidden_states)
        return hidden_states


SPEC = AdapterSpec(model="FlexVideoModel", self_attention=r"blocks\.\d+", text="last",
                   num_frames=lambda model, arguments: arguments["num_frames"])


def _model(dtype=torch.float32, seed=3):
    return randomise_(FlexVideoModel(), seed).to(dtype)


def _inputs(dtype=torch.float32, batch_size=2, seed=5):
    hidden = torch.randn(batch_size, VIDEO + TEXT, HEADS * HEAD_DIM, generator=torch.Generator().manual_seed(seed))
    return dict(hidden_states=hidden[:, :VIDEO].to(dtype), encoder_hidden_states=hidden[:, VIDEO:].to(dtype),
                num_frames=FRAMES)


def _mask(mask_mod, block_size=8):
    return create_block_mask(mask_mod, None, None, VIDEO + TEXT, VIDEO + TEXT, device="cpu", BLOCK_SIZE=block_size,
                             _compile=False)


class _Recorder:
    def __init__(self):
        self.cfis = {}  # layer name -> [B] CFI of its call

    def begin_forward(self, timestep, num_frames):
        pass

    def record_layer(self, name, cross_frame_intensity, score):
        self.cfis[name] = cross_frame_intensity


def _reference(model, inputs):
    """``(output, {layer: (q, k)})``: the layer outputs' video rows times
    ``max(1, CFI * (F + w))``, CFI the float64 reference of each layer's video q and k."""
    seen = {}

    def measure(name):
        def hook(layer, args):
            q, k, _ = layer.query_key_value(*args)
            seen[name] = (q[:, :, :VIDEO], k[:, :, :VIDEO])
        return hook

    def scale(name):
        def hook(layer, args, output):
            cfi = eav.cross_frame_intensity_reference(*seen[name], FRAMES)  # 0-d
            return (output.double() * (cfi * (FRAMES + WEIGHT)).clamp(min=1).view(-1, 1, 1)).to(output.dtype)
        return hook

    handles = [hook for name, layer in model.blocks.named_children()
               for hook in (layer.register_forward_pre_hook(measure(f"blocks.{name}")),
                            layer.register_forward_hook(scale(f"blocks.{name}")))]
    try:
        with torch.no_grad():
            return model(**inputs), seen
    finally:
        for handle in handles:
            handle.remove()


def _enhanced(model, inputs, recorder=None):
    enhance_module(model, SPEC, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, recorder=recorder))
    try:
        with torch.no_grad():
            return model(**inputs)
    finally:
        remove_enhancement(model)


# video queries see every video key; text rows and text keys masked in odd patterns
MASKS = {
    "none": None,
    "text_keys_hidden_from_video": lambda b, h, q, kv: (kv < VIDEO) | (q >= VIDEO),
    "text_queries_see_only_text": lambda b, h, q, kv: (q < VIDEO) | (kv >= VIDEO) | (kv % 2 == 0),
}


@pytest.mark.parametrize("compiled", [False, True], ids=["flex_attention", "torch.compile(flex_attention)"])
@pytest.mark.parametrize("mask", sorted(MASKS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_flex_call_is_measured_exactly(dtype, mask, compiled):
    model, inputs = _model(dtype), _inputs(dtype)
    for block in model.blocks:
        block.block_mask = None if MASKS[mask] is None else _mask(MASKS[mask])
        block.compiled = compiled
    expected, seen = _reference(model, inputs)
    with torch.no_grad():
        plain = model(**inputs)
    recorder = _Recorder()
    out = _enhanced(model, inputs, recorder)
    assert (expected - plain).abs().max() > 1e-2, "enhancement changed nothing: the test is blind"
    for name, (q, k) in seen.items():
        assert_meets_contract(recorder.cfis[name], q, k, FRAMES)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2  # bf16: the output rounds once more
    torch.testing.assert_close(out, expected, rtol=tolerance, atol=tolerance)


def test_flex_call_with_score_mod_is_refused():
    model = _model()
    model.blocks[1].score_mod = lambda score, b, h, q, kv: score + (q - kv).abs() * 0.1
    with pytest.raises(NotImplementedError, match=r"blocks\.1: flex_attention with score_mod .*<lambda>"):
        _enhanced(model, _inputs())


@pytest.mark.parametrize("mask_mod, hole", [
    (lambda b, h, q, kv: q >= kv, r"query block 0 \(batch 0, head 0\) lists no key block 1"),  # causal
    (lambda b, h, q, kv: ~((q == 9) & (kv == 12)), r"hides key 12 from query 9 \(batch 0, head 0\)"),
])
def test_flex_mask_hiding_a_video_key_is_refused(mask_mod, hole):
    model = _model()
    model.blocks[0].block_mask = _mask(mask_mod)
    with pytest.raises(NotImplementedError, match=r"blocks\.0: flex_attention's block_mask is not full over the "
                                                  rf"video tokens \(.*{hole}"):
        _enhanced(model, _inputs())


def test_video_square_hole_follows_flex_block_semantics():
    """A block listed as full is attended whole (compiled flex does not evaluate its mask_mod);
    a partial block only where mask_mod is true; an unlisted block not at all."""
    def blocks(*rows):  # [1, 1, QB] counts, [1, 1, QB, KB] indices
        return torch.tensor([[[len(row) for row in rows]]], dtype=torch.int32), torch.tensor(
            [[[row + [0] * (len(rows) - len(row)) for row in rows]]], dtype=torch.int32)

    nothing = lambda b, h, q, kv: torch.zeros_like(q, dtype=torch.bool)  # noqa: E731
    full = BlockMask.from_kv_blocks(*blocks([], []), *blocks([0, 1], [0, 1]), BLOCK_SIZE=4, mask_mod=nothing,
                                    seq_lengths=(8, 8))
    assert video_square_hole(full, slice(1, 7), 2, 3) is None
    partial = BlockMask.from_kv_blocks(*blocks([1], [0, 1]), *blocks([0], []), BLOCK_SIZE=4,
                                       mask_mod=lambda b, h, q, kv: kv != 6, seq_lengths=(8, 8))
    assert video_square_hole(partial, slice(0, 6), 2, 3) is None  # key 6 is outside the video
    assert "hides key 6 from query 0" in video_square_hole(partial, slice(0, 7), 2, 3)
    assert "query block 0 (batch 0, head 0) lists no key block 1" in video_square_hole(
        BlockMask.from_kv_blocks(*blocks([0], [0, 1]), BLOCK_SIZE=4, seq_lengths=(8, 8)), slice(0, 8), 1, 1)


def test_compiled_flex_model_matches_eager():
    """Under torch.compile the tap is traced: the capture sees the flex call, the mask check runs
    eagerly between graphs, the result equals eager."""
    model, inputs = _model(), _inputs()
    model.blocks[0].block_mask = _mask(MASKS["text_keys_hidden_from_video"])
    eager = _enhanced(model, inputs)
    with torch.no_grad():
        plain = model(**inputs)
    enhance_module(model, SPEC, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT))
    try:
        torch._dynamo.reset()
        with torch.no_grad():
            compiled = torch.compile(model, backend="eager")(**inputs)
    finally:
        remove_enhancement(model)
        torch._dynamo.reset()
    assert (eager - plain).abs().max() > 1e-2, "enhancement changed nothing: the test is blind"
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)


def test_listed_blocks_rebuild_the_block_lists_torch_densifies():
    """The full and partial block lists, rebuilt by the engine, are disjoint and together are
    what ``BlockMask.to_dense`` gives (odd lengths: padded lists, a partial last block)."""
    mask = create_block_mask(lambda b, h, q, k: (q // 3) >= (k // 5) + b, 2, 1, 700, 650, device="cpu",
                             BLOCK_SIZE=128)
    key_blocks = mask.to_dense().shape[-1]
    full = _listed_blocks(mask.full_kv_num_blocks, mask.full_kv_indices, key_blocks)
    partial = _listed_blocks(mask.kv_num_blocks, mask.kv_indices, key_blocks)
    assert full.any() and partial.any() and not (full & partial).any()
    assert torch.equal(full | partial, mask.to_dense().bool())
