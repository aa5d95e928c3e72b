"""The seed-model twins as test cases, and an Enhance-A-Video reference independent of the engine.

The reference shares no code with ``eav_kernels.engine``: plain ``torch.nn.Module`` hooks, q and
k recomputed from each layer's own submodules (``query_key`` of each twin), the float64
``cross_frame_intensity_reference``, its own score arithmetic. Where the score goes is this
file's own reading of the twins: ``to_out`` on the layer's output, ``attention_output`` on the
input of the layer's output projection (every token of these layers is video).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

import eav_kernels as eav
import twin_open_sora
import twin_open_sora_plan
from adapters_tiny_base import _times  # score x tensor, batch-major, rounded once (no diffusers needed)
from eav_kernels.engine import OPEN_SORA_PLAN_V1_1, OPEN_SORA_PLAN_V1_2, OPEN_SORA_V1_2, AdapterSpec

# (layer, layer args, layer kwargs) -> (q [B', H, N, D], k [B', H, N, D], scale, num_frames)
QueryKey = Callable[[torch.nn.Module, tuple, dict], "tuple[torch.Tensor, torch.Tensor, float, int]"]


@dataclass
class TwinCase:
    name: str
    spec: AdapterSpec
    build: Callable[..., torch.nn.Module]
    inputs: Callable[..., dict]  # (batch_size, frames, generator, dtype=) -> forward kwargs
    query_key: QueryKey
    projection: Callable[[torch.nn.Module], torch.nn.Module]  # layer -> its output projection
    spatial_attention: str  # regex of the attention layers that must stay untouched


def _open_sora_query_key(layer, args, kwargs):
    q, k, scale = twin_open_sora.query_key(layer, args[0])
    return q, k, scale, q.shape[2]  # temporal attention: the sequence is the frames


def _plan_query_key(layer, args, kwargs):
    q, k, _ = twin_open_sora_plan.query_key_value(layer, args[0], None, kwargs.get("frame"),
                                                  kwargs.get("height"), kwargs.get("width"))
    frames = kwargs["frame"] if "frame" in kwargs else q.shape[2]  # v1.2: frame=; Latte: temporal
    return q, k, q.shape[-1] ** -0.5, frames


def _model_output(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


CASES = {
    case.name: case
    for case in [
        TwinCase("open_sora_v1_2", OPEN_SORA_V1_2, twin_open_sora.build, twin_open_sora.inputs,
                 _open_sora_query_key, lambda layer: layer.proj, r"spatial_blocks\.\d+\.attn"),
        TwinCase("open_sora_plan_v1_1", OPEN_SORA_PLAN_V1_1,
                 lambda **kw: twin_open_sora_plan.build_latte(temporal_rope=True, **kw),
                 twin_open_sora_plan.inputs, _plan_query_key, lambda layer: layer.to_out[0],
                 r"transformer_blocks\.\d+\.attn[12]"),
        TwinCase("open_sora_plan_v1_2", OPEN_SORA_PLAN_V1_2, twin_open_sora_plan.build_v1_2,
                 twin_open_sora_plan.inputs, _plan_query_key, lambda layer: layer.to_out[0],
                 r"transformer_blocks\.\d+\.attn2"),
    ]
}


def run(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return _model_output(model(**inputs))


def targeted_layers(model: torch.nn.Module, case: TwinCase) -> list[str]:
    pattern = re.compile(case.spec.self_attention)
    return [name for name, _ in model.named_modules() if pattern.fullmatch(name)]


def reference_output(model, case: TwinCase, inputs: dict, weights: dict[str, float], *,
                     placement: str = "to_out", per_sample: bool = False
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(output, {layer: score})`` of the model with Enhance-A-Video on the layers in
    ``weights`` (``{name: enhance weight}``), computed without the engine."""
    batch_size = next(iter(inputs.values())).shape[0]
    scores: dict[str, torch.Tensor] = {}

    def score_layer(name):
        def hook(layer, args, kwargs):
            q, k, scale, frames = case.query_key(layer, args, kwargs)
            cfi = eav.cross_frame_intensity_reference(q, k, frames, scale=scale, per_sample=True)  # [B'] f64
            cfi = cfi.view(batch_size, -1).mean(1) if per_sample else cfi.mean()
            scores[name] = (cfi * (frames + weights[name])).clamp(min=1.0).float()
        return hook

    def scale_output(name):
        def hook(layer, args, output):
            return _times(output, scores[name])
        return hook

    def scale_projection_input(name):
        def hook(projection, args):
            return (_times(args[0], scores[name]),) + args[1:]
        return hook

    handles = []
    for name in weights:
        layer = model.get_submodule(name)
        handles.append(layer.register_forward_pre_hook(score_layer(name), with_kwargs=True))
        if placement == "to_out":
            handles.append(layer.register_forward_hook(scale_output(name)))
        else:
            handles.append(case.projection(layer).register_forward_pre_hook(scale_projection_input(name)))
    try:
        with torch.no_grad():
            return run(model, inputs), scores
    finally:
        for handle in handles:
            handle.remove()
