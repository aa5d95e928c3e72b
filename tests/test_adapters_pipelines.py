"""End to end: tiny CogVideoX and Wan pipelines (random weights, prompt embeddings passed, no
downloads) run a few denoising steps with and without Enhance-A-Video."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_models import CASES, randomise_
from cli_helpers import load_tool
from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video


def _cogvideox_pipeline():
    return diffusers.CogVideoXPipeline(
        tokenizer=None, text_encoder=None, vae=load_tool("make_tiny_pipeline").tiny_cogvideox_vae(),
        transformer=CASES["cogvideox"].build(),
        scheduler=diffusers.CogVideoXDDIMScheduler(),
    )


def _wan_pipeline():
    vae = diffusers.AutoencoderKLWan(
        base_dim=3, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )
    randomise_(vae, torch.Generator().manual_seed(9))
    return diffusers.WanPipeline(
        tokenizer=None, text_encoder=None, vae=vae, transformer=CASES["wan"].build(),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


PIPELINES = {
    "cogvideox": (_cogvideox_pipeline, dict(height=64, width=64, num_frames=9), 3.4),
    "wan": (_wan_pipeline, dict(height=32, width=32, num_frames=9), 4.0),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_runs_enhanced(name):
    build, size, weight = PIPELINES[name]
    pipe = build()
    generator = torch.Generator().manual_seed(0)
    prompt_embeds = torch.randn(1, 5, 16, generator=generator)
    negative_prompt_embeds = torch.randn(1, 5, 16, generator=generator)

    def generate():
        return pipe(
            prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds, guidance_scale=5.0,
            num_inference_steps=2, generator=torch.Generator().manual_seed(1), output_type="pt", **size,
        ).frames

    plain = generate()
    apply_enhance_a_video(pipe.transformer, EnhanceAVideoConfig(weight=weight))
    enhanced = generate()
    remove_enhance_a_video(pipe.transformer)
    assert plain.shape == enhanced.shape == (1, size["num_frames"], 3, size["height"], size["width"])
    assert enhanced.isfinite().all()
    assert (enhanced - plain).abs().max().item() > 1e-4
    assert torch.equal(generate(), plain)
