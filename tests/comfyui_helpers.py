"""Inputs and checks shared by the ComfyUI node tests."""

from __future__ import annotations

import torch

from comfyui_standins import BaseModel, ModelPatcher, flux_apply_rope
from eav_kernels.comfyui import EnhanceSettings, enhance_model

# latent [B, C, T, H, W] = [2, 4, 3, 6, 10]: F = 3 frames of S = 3 x 5 = 15 tokens with patch 1x2x2
FRAMES, SPATIAL = 3, 15
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}  # dtype noise of the outputs


def latent(generator, batch=2, dtype=torch.float32, frames=FRAMES):
    return torch.randn(batch, 4, frames, 6, 10, generator=generator).to(dtype)


def text(generator, batch=2, dtype=torch.float32, tokens=5):
    return torch.randn(batch, tokens, 24, generator=generator).to(dtype)


def patcher(model: torch.nn.Module, dtype=torch.float32) -> ModelPatcher:
    return ModelPatcher(BaseModel(model.to(dtype)))


def enhance(model: ModelPatcher, **settings) -> ModelPatcher:
    return enhance_model(model, EnhanceSettings(**settings), apply_rope=flux_apply_rope)


def assert_close(actual, expected):
    tolerance = TOLERANCE[actual.dtype]
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)
