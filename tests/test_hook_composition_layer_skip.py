"""Enhance-A-Video with diffusers' layer skip (the STG perturbation), in both orders, on tiny Wan,
HunyuanVideo and CogVideoX: a layer whose attention is skipped is not enhanced and does not raise
(docs/diffusers.md, "With diffusers' other hooks"). Block-level skipping is tested with the
caches (test_hook_composition_caches.py).

diffusers 0.42's ``apply_layer_skip`` cannot skip the attention of these models by itself
(``skip_attention`` or ``skip_attention_scores`` without ``skip_ff``): it looks their attention
processor up in a registry that lists none of them, and raises. That failure is asserted here, so
that a diffusers that fixes it fails the test and the pairing gets revisited. Meanwhile the hook
``apply_layer_skip`` would register, diffusers' own ``AttentionProcessorSkipHook``, is registered
by hand on the first self-attention layer.
"""

from __future__ import annotations

import re

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from diffusers import LayerSkipConfig, apply_layer_skip  # noqa: E402
from diffusers.hooks import HookRegistry  # noqa: E402
from diffusers.hooks.layer_skip import AttentionProcessorSkipHook  # noqa: E402

from adapters_tiny_base import enhance_config, one_thread  # noqa: E402,F401
from adapters_tiny_models import CASES, attention_layer_names, run  # noqa: E402
from eav_kernels import apply_enhance_a_video  # noqa: E402
from hook_stacks import ORDERS, WEIGHT, step_inputs  # noqa: E402
from output_checks import assert_changed  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = ("wan", "hunyuan_video", "cogvideox")
PROCESSORS = {"wan": "WanAttnProcessor", "hunyuan_video": "HunyuanVideoAttnProcessor2_0",
              "cogvideox": "CogVideoXAttnProcessor2_0"}
SKIPS = ("attention_scores", "attention")


@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("model_name", MODELS)
def test_diffusers_cannot_skip_these_attentions_by_itself(model_name, skip):
    model = CASES[model_name].build()
    fqn = "blocks" if model_name == "wan" else "transformer_blocks"
    config = LayerSkipConfig(indices=[0], fqn=fqn, skip_attention=skip == "attention",
                             skip_attention_scores=skip == "attention_scores", skip_ff=False)
    with pytest.raises(ValueError, match=rf"{PROCESSORS[model_name]}'> not registered"):
        apply_layer_skip(model, config)


def _skip_first_layer(skip: str, case):
    """``apply_layer_skip``'s own hook on the first self-attention layer: its attention scores
    skipped (SDPA returns the values), or the attention replaced by its input."""
    def input_as_output(attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        # the layer's output layout: video alone (Wan's text is in cross-attention), or (video, text)
        return hidden_states if case.text is None else (hidden_states, encoder_hidden_states)

    def apply(model):
        layer = model.get_submodule(attention_layer_names(model, case)[0])
        hook = AttentionProcessorSkipHook(input_as_output, skip_attention_scores=skip == "attention_scores")
        HookRegistry.check_if_exists_or_initialize(layer).register_hook(hook, "layer_skip_hook")
    return apply


def _outputs(case, steps, apply_skip, order: str | None, layers=None) -> list[torch.Tensor]:
    """The model's outputs with the skip and (unless ``order`` is None) Enhance-A-Video on
    ``layers`` (``None``: all), applied in ``order``."""
    model = case.build()
    if order is None:
        apply_skip(model)
    elif order == "eav_first":
        apply_enhance_a_video(model, enhance_config(WEIGHT, layers=layers))
        apply_skip(model)
    else:
        apply_skip(model)
        apply_enhance_a_video(model, enhance_config(WEIGHT, layers=layers))
    return [run(model, inputs) for inputs in steps]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("skip", SKIPS)
@pytest.mark.parametrize("model_name", MODELS)
def test_a_skipped_attention_is_not_enhanced(model_name, skip, order):
    case = CASES[model_name]
    steps = step_inputs(case, steps=2)
    apply_skip = _skip_first_layer(skip, case)
    first = re.escape(attention_layer_names(case.build(), case)[0])
    others = {rf"(?!{first}$).*": WEIGHT}

    skip_only = _outputs(case, steps, apply_skip, None)
    skipped_layer_only = _outputs(case, steps, apply_skip, order, layers={first: WEIGHT})
    everywhere = _outputs(case, steps, apply_skip, order)
    other_layers = _outputs(case, steps, apply_skip, order, layers=others)
    for alone, enhanced_skipped, all_layers, rest in zip(skip_only, skipped_layer_only, everywhere, other_layers):
        torch.testing.assert_close(enhanced_skipped, alone, rtol=0, atol=0)  # not enhanced, skip intact
        torch.testing.assert_close(all_layers, rest, rtol=0, atol=0)
        assert_changed(all_layers, alone)  # the other layers are enhanced
    assert_changed(skip_only[0], run(case.build(), steps[0]))  # the skip took effect
