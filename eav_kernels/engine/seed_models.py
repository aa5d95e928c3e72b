"""Specs of the paper's spatial-temporal seed systems, which are not diffusers models (use them
with ``eav_kernels.enhance_module``). Read from their public repositories; their layouts:

- Open-Sora v1.2 (``STDiT3``): ``spatial_blocks`` and ``temporal_blocks``, two interleaved
  ModuleLists of 28. A temporal block rearranges ``B (T S) C -> (B S) T C`` and calls its own
  ``attn`` (qkv Linear, per-head RMSNorm ``q_norm``/``k_norm``, 1-D RoPE over the frames, then a
  hand-written ``softmax(q kᵀ)``; flash-attn only when ``N > B``), then ``proj``.
- Open-Sora-Plan v1.0 / v1.1 (``LatteT2V``): Latte's layout, ``temporal_transformer_blocks``
  over ``(b t) f d`` sequences, ``attn1`` through ``F.scaled_dot_product_attention`` (v1.1 may
  rotate q and k over the frames first).
- Open-Sora-Plan v1.2 (``OpenSoraT2V``): full 3D attention; ``transformer_blocks.*.attn1`` is
  video-only self-attention over frame-major ``b (t n) c``, called with ``frame=``,
  ``height=``, ``width=``.

Not the same method, so no spec: Open-Sora v1.3's "temporal" layers (8x8xT windows flattened
position-major), Open-Sora-Plan v1.3's Skiparse regrouping, Open-Sora 2.0 (an MMDiT).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .spec import AdapterSpec


def _sequence_is_the_frames(layer: torch.nn.Module, arguments: Mapping[str, Any]) -> int:
    """Temporal attention: the layer's input is ``[(B S), F, C]``, one sequence per position."""
    return next(iter(arguments.values())).shape[1]


def _frame_argument(layer: torch.nn.Module, arguments: Mapping[str, Any]) -> int:
    if arguments.get("frame") is None:
        raise ValueError("Open-Sora-Plan v1.2's attn1 needs its `frame=` argument for Enhance-A-Video")
    return int(arguments["frame"])


OPEN_SORA_V1_2 = AdapterSpec(
    model="STDiT3",
    self_attention=r"temporal_blocks\.\d+\.attn",
    text=None,
    num_frames=_sequence_is_the_frames,
    num_frames_from="layer",
    video_input="x",
    notes="The 28 temporal self-attention layers; spatial_blocks and cross_attn are untouched. "
    "The attention is hand-written (softmax(q kᵀ) in float32): the CFI is read off that map's "
    "diagonal, and placement='attention_output' scales its video rows. Its temporal batch is "
    "B * S sequences, b * S + s, which per_sample folds back to B. The paper's Figure 3 "
    "(blocks 2, 14, 26) is this model.",
)

OPEN_SORA_PLAN_V1_1 = AdapterSpec(
    model="LatteT2V",
    self_attention=r"temporal_transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=_sequence_is_the_frames,
    num_frames_from="layer",
    notes="Open-Sora-Plan v1.0 and v1.1 (Latte's layout): temporal blocks only, their batch is "
    "B * S sequences of the F frames. Spatial blocks (transformer_blocks) are untouched.",
)

OPEN_SORA_PLAN_V1_2 = AdapterSpec(
    model="OpenSoraT2V",
    self_attention=r"transformer_blocks\.\d+\.attn1",
    text=None,
    num_frames=_frame_argument,
    num_frames_from="layer",
    notes="Full 3D attention: attn1 is video-only self-attention over frame-major b (t n) c, "
    "called with frame=, height=, width= (its 3D RoPE reads them); the frame count is frame=. "
    "Text is in attn2 (cross-attention, left alone).",
)

SEED_MODELS: dict[str, AdapterSpec] = {
    spec.model: spec for spec in (OPEN_SORA_V1_2, OPEN_SORA_PLAN_V1_1, OPEN_SORA_PLAN_V1_2)
}
