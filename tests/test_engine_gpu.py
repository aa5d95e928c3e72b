"""The engine on CUDA with the real attention libraries called directly by a layer: flash-attn
(``flash_attn_func`` and its varlen op), xformers' ``memory_efficient_attention``,
SageAttention's ``sageattn``. Each skips with the reason where there is no GPU or the package is
not installed (benchmarks/gpu_check.sh runs them); their CPU twins are tests/test_engine_calls.py.
No diffusers needed."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import eav_kernels as eav
import engine_tiny_models
from engine_tiny_models import case, stand_in_packages
from seed_model_reference import reference_output, run

PACKAGE = {"flash_attn": "flash_attn", "flash_attn_varlen": "flash_attn", "xformers": "xformers",
           "sageattn_nhd": "sageattention", "sageattn_hnd": "sageattention"}


@pytest.mark.gpu
@pytest.mark.parametrize("placement", ["to_out", "attention_output"])
@pytest.mark.parametrize("attend", sorted(PACKAGE))
def test_real_attention_library_is_seen(attend, placement):
    """bf16 on CUDA; the attention itself is the same kernel in both runs, so the enhanced
    output equals the reference's up to bf16 rounding of the score's product."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (none available)")
    if importlib.util.find_spec(PACKAGE[attend]) is None:
        pytest.skip(f"{attend} needs {PACKAGE[attend]}, which is not installed")
    tiny = case(attend, dim=256, heads=4, kv_heads=4)  # head_dim 64: every library takes it
    model = tiny.build().to("cuda", torch.bfloat16)
    inputs = tiny.inputs(2, engine_tiny_models.FRAMES, torch.Generator().manual_seed(11), dtype=torch.bfloat16)
    inputs["hidden_states"] = inputs["hidden_states"].cuda()
    weights = {f"blocks.{i}": 4.0 for i in range(2)}
    with stand_in_packages():
        expected, _ = reference_output(model, tiny, inputs, weights, placement=placement)
        assert (expected - run(model, inputs)).abs().max() > 1e-2, "enhancement changed nothing: the test is blind"
        eav.enhance_module(model, tiny.spec, eav.EnhanceAVideoConfig(enhance_weight=4.0, placement=placement))
        try:
            out = run(model, inputs)
        finally:
            eav.remove_enhancement(model)
    torch.testing.assert_close(out, expected)
