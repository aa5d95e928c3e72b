"""The node with ComfyUI's own step caches, layer skipping and context windows, on a real ComfyUI
(tiny native Wan and LTX-2).

EasyCache (a ``DIFFUSION_MODEL`` wrapper that returns ``x`` plus a cached difference without
running the model), LazyCache (the same one level up, a ``PREDICT_NOISE`` wrapper),
SkipLayerGuidanceDiTSimple (an extra uncond pass with a block replaced by its input) and
WanContextWindowsManual (the model runs on overlapping windows of frames, fused) and LTX-2's
spatio-temporal guidance (an extra pass with a block's self-attention replaced by its values)
change which attention calls happen and how many frames each sees. The node must then enhance exactly the calls that do happen: the sample
equals the same node chain run on the plain-PyTorch reference, in both orders of the two nodes,
and the cache really reused steps. Skipped like ``test_comfyui_real.py`` without a ComfyUI.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

import pytest
import torch

from comfyui_native_models import skip_without_comfyui

skip_without_comfyui()

from comfy_extras.nodes_context_windows import WanContextWindowsManualNode  # noqa: E402
from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode  # noqa: E402
from comfy_extras.nodes_lt import LTXVSpatioTemporalGuidance  # noqa: E402
from comfy_extras.nodes_slg import SkipLayerGuidanceDiTSimple  # noqa: E402
from comfyui_native_models import LTX2, WAN21, TinyVideoModel, sample  # noqa: E402
from comfyui_native_reference import check_against_reference  # noqa: E402
from comfyui_native_runs import enhanced, reference_samples  # noqa: E402

STEPS = 8
REUSED = re.compile(r"(EasyCache|LazyCache) - skipped (\d+)/(\d+) steps")


def easycache(patcher: Any) -> Any:
    return EasyCacheNode.execute(patcher, reuse_threshold=3.0, start_percent=0.0, end_percent=1.0,
                                 verbose=False).result[0]


def lazycache(patcher: Any) -> Any:
    return LazyCacheNode.execute(patcher, reuse_threshold=3.0, start_percent=0.0, end_percent=1.0,
                                 verbose=False).result[0]


def skip_layer_guidance(patcher: Any) -> Any:
    return SkipLayerGuidanceDiTSimple.execute(patcher, start_percent=0.0, end_percent=1.0, double_layers="1",
                                              single_layers="").result[0]


def context_windows(patcher: Any) -> Any:
    """Windows of 13 real frames = 4 latent frames, overlapping by 1, over the 5 latent frames."""
    return WanContextWindowsManualNode.execute(patcher, context_length=13, context_overlap=4,
                                               context_schedule="standard_static", context_stride=1, closed_loop=False,
                                               fuse_method="pyramid", freenoise=False).result[0]


NODES: dict[str, Callable[[Any], Any]] = {"EasyCache": easycache, "LazyCache": lazycache,
                                          "SkipLayerGuidanceDiTSimple": skip_layer_guidance,
                                          "WanContextWindowsManual": context_windows}
def check_chain(model: TinyVideoModel, apply_other: Callable[[Any], Any], order: str) -> None:
    """The node and ``apply_other`` chained in ``order`` against ``apply_other`` on the reference."""
    chain = (lambda patcher: enhanced(apply_other(patcher))) if order == "node after it" else \
        (lambda patcher: apply_other(enhanced(patcher)))
    expected, low_precision, nudged = reference_samples(model, around=apply_other, steps=STEPS)
    plain = sample(apply_other(model.build()), model, steps=STEPS)
    got = sample(chain(model.build()), model, steps=STEPS)
    check_against_reference(got, expected, low_precision, nudged, plain)


@pytest.mark.parametrize("order", ["node after it", "node before it"])
@pytest.mark.parametrize("other", list(NODES))
def test_the_node_enhances_exactly_the_attention_calls_that_run(other: str, order: str, caplog):
    with caplog.at_level(logging.INFO):
        check_chain(WAN21, NODES[other], order)
    reused = [int(match.group(2)) for match in map(REUSED.search, caplog.messages) if match]
    if other in ("EasyCache", "LazyCache"):
        assert reused and reused[-1] > 0, f"{other} reused no step ({caplog.messages}): the test shows nothing"


def spatio_temporal_guidance(patcher: Any) -> Any:
    """LTX-2's STG: an extra cond pass per step with block 1's video self-attention replaced by its values."""
    return LTXVSpatioTemporalGuidance.execute(patcher, scale=1.0, blocks="1", start_percent=0.0,
                                              end_percent=1.0).result[0]


@pytest.mark.parametrize("order", ["node after it", "node before it"])
def test_ltx2_spatio_temporal_guidance_with_the_node(order: str):
    assert not torch.equal(sample(spatio_temporal_guidance(LTX2.build()), LTX2, steps=STEPS),
                           sample(LTX2.build(), LTX2, steps=STEPS)), "STG changed nothing: the test shows nothing"
    check_chain(LTX2, spatio_temporal_guidance, order)
