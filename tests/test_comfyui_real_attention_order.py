"""The node with an attention node before or after it, on a real ComfyUI (tiny native models).

An attention node (ComfyUI's attention-backend patch node does exactly this) clones the model and
calls ``set_model_optimized_attention``, which writes its backend into the clone's
``transformer_options["optimized_attention_override"]``. The node sets its own override per model
call, chained to the one the call carries, on the families whose video self-attention it reads
through that override (LTXV, LTX-2, Cosmos 1 and Predict2, CogVideoX, Kandinsky 5) and not at all
on Wan and HunyuanVideo (attention patches). Either order must give the reference's sample, with
the attention node's backend doing every attention call the plain model makes, and leave no
override of the node in any model's options. Skipped like ``test_comfyui_real.py`` without a ComfyUI.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from comfyui_native_models import skip_without_comfyui

skip_without_comfyui()

import comfy.ldm.modules.attention  # noqa: E402  (ComfyUI's, from the checkout)
from comfyui_native_models import (COGVIDEOX, COSMOS, COSMOS_PREDICT2, HUNYUAN_VIDEO, KANDINSKY5, LTX2, LTXV,  # noqa: E402
                                   WAN21, TinyVideoModel, sample)
from comfyui_native_reference import check_against_reference  # noqa: E402
from comfyui_native_runs import enhanced, reference_samples  # noqa: E402

OVERRIDE = "optimized_attention_override"
MODELS = [LTXV, LTX2, COSMOS, COSMOS_PREDICT2, COGVIDEOX, KANDINSKY5, WAN21, HUNYUAN_VIDEO]


class CountingAttention:
    """ComfyUI's PyTorch attention backend, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.backend = comfy.ldm.modules.attention.get_attention_function("pytorch")

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        return self.backend(*args, **kwargs)


def attention_node(patcher: Any, backend: CountingAttention) -> Any:
    """What ComfyUI's attention-backend node does to the model it is given."""
    patched = patcher.clone()
    patched.set_model_optimized_attention(backend)
    return patched


def overrides(patcher: Any) -> Any:
    return patcher.model_options.get("transformer_options", {}).get(OVERRIDE)


@pytest.fixture(scope="module", params=MODELS, ids=[model.name for model in MODELS])
def model_and_references(request: pytest.FixtureRequest) -> tuple[TinyVideoModel, tuple, torch.Tensor, int]:
    """A model, its three reference samples, its plain sample and the backend calls the plain model
    makes under the attention node (shared by both orders)."""
    model = request.param
    backend = CountingAttention()
    plain = sample(model.build(), model)
    sample(attention_node(model.build(), backend), model)
    assert backend.calls > 0, "the attention node's backend was never called: the test could not fail"
    return model, reference_samples(model), plain, backend.calls


@pytest.mark.parametrize("order", ["attention node after it", "attention node before it"])
def test_the_node_with_an_attention_node_in_either_order(model_and_references: tuple, order: str):
    model, references, plain, plain_calls = model_and_references
    given, backend = model.build(), CountingAttention()
    if order == "attention node after it":
        node_output = enhanced(given)
        final = attention_node(node_output, backend)
        assert overrides(node_output) is None, "the node left an override in its output's model_options"
    else:
        before = attention_node(given, backend)
        set_by_attention_node = overrides(before)
        final = enhanced(before)
        assert overrides(final) is set_by_attention_node, "the node replaced the attention node's override"
        assert overrides(before) is set_by_attention_node, "the node changed the model it was given"
    check_against_reference(sample(final, model), *references, plain)
    assert backend.calls == plain_calls, (
        f"the attention node's backend ran {backend.calls} attention calls, the plain model makes {plain_calls}")
    assert overrides(given) is None, "an override was left in the input model's model_options"
