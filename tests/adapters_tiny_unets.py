"""Tiny random-weight diffusers video UNets (AnimateDiff, ModelScope, I2VGen-XL, Stable Video Diffusion),
each a ``ModelCase``: their temporal attentions see ``B * H * W`` sequences of the F frames.

One resolution level (8 x 8 latents) plus the mid block, one layer per block, 3 frames."""

from __future__ import annotations

import torch

from adapters_tiny_base import ModelCase, gen, randn, randomise_

FRAMES = 3
_LEVELS = dict(block_out_channels=(8,), layers_per_block=1, norm_num_groups=4, cross_attention_dim=16)


def _diffusers(name: str):
    import diffusers

    return getattr(diffusers, name)


def _unet_motion_build():
    model = _diffusers("UNetMotionModel")(
        sample_size=8, in_channels=4, out_channels=4, **_LEVELS,
        down_block_types=("CrossAttnDownBlockMotion",), up_block_types=("CrossAttnUpBlockMotion",),
        num_attention_heads=2, motion_num_attention_heads=2, motion_max_seq_length=8,
    )
    return randomise_(model, gen(30))


def _unet_3d_build():
    model = _diffusers("UNet3DConditionModel")(
        sample_size=8, in_channels=4, out_channels=4, **_LEVELS,
        down_block_types=("CrossAttnDownBlock3D",), up_block_types=("CrossAttnUpBlock3D",), attention_head_dim=4,
    )
    return randomise_(model, gen(31))


def _unet_3d_inputs(batch_size, generator, timestep=500.0):
    return dict(
        sample=randn(generator, batch_size, 4, FRAMES, 8, 8),  # [B, C, F, H, W]
        timestep=torch.full((batch_size,), timestep),
        encoder_hidden_states=randn(generator, batch_size, 5, 16),
        return_dict=False,
    )


def _unet_motion_inputs(batch_size, generator, timestep=500.0):
    """AnimateDiff's pipeline hands the UNet the prompt once per frame: ``[B * F, L, C]``."""
    inputs = _unet_3d_inputs(batch_size, generator, timestep)
    inputs["encoder_hidden_states"] = inputs["encoder_hidden_states"].repeat_interleave(FRAMES, dim=0)
    return inputs


def _i2vgen_xl_build():
    model = _diffusers("I2VGenXLUNet")(
        sample_size=8, in_channels=4, out_channels=4, **_LEVELS,
        down_block_types=("CrossAttnDownBlock3D",), up_block_types=("CrossAttnUpBlock3D",), attention_head_dim=4,
    )
    return randomise_(model, gen(33))


def _i2vgen_xl_inputs(batch_size, generator, timestep=500.0):
    """The image's VAE latents repeated over the frames (as the pipeline does) and its CLIP embedding."""
    inputs = _unet_3d_inputs(batch_size, generator, timestep)
    image = randn(generator, batch_size, 4, 1, 8, 8)
    return dict(inputs, fps=torch.full((batch_size,), 16.0), image_latents=image.repeat(1, 1, FRAMES, 1, 1),
                image_embeddings=randn(generator, batch_size, 16))


def _svd_build():
    model = _diffusers("UNetSpatioTemporalConditionModel")(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(32,), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal",), up_block_types=("CrossAttnUpBlockSpatioTemporal",),
        addition_time_embed_dim=4, projection_class_embeddings_input_dim=12, cross_attention_dim=16,
        num_attention_heads=(2,), num_frames=FRAMES,
    )
    return randomise_(model, gen(32))


def _svd_inputs(batch_size, generator, timestep=0.5):
    """SVD's timestep is EDM's c_noise (about -1 .. 1), not a 0 .. 1000 step."""
    return dict(
        sample=randn(generator, batch_size, FRAMES, 8, 8, 8),  # [B, F, C, H, W]: noise + image latents
        timestep=torch.full((batch_size,), timestep),
        encoder_hidden_states=randn(generator, batch_size, 1, 16),
        added_time_ids=randn(generator, batch_size, 3),
        return_dict=False,
    )


_LEVEL_BLOCKS = r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)"

UNET_CASES = [
    ModelCase("unet_motion", _unet_motion_build, _unet_motion_inputs,
              _LEVEL_BLOCKS + r"\.motion_modules\.\d+\.transformer_blocks\.\d+\.attn[12]", None, FRAMES,
              latent="sample"),
    ModelCase("unet_3d", _unet_3d_build, _unet_3d_inputs,
              r"(transformer_in|" + _LEVEL_BLOCKS + r"\.temp_attentions\.\d+)\.transformer_blocks\.\d+\.attn[12]",
              None, FRAMES, latent="sample"),
    ModelCase("i2vgen_xl", _i2vgen_xl_build, _i2vgen_xl_inputs,
              r"(transformer_in|" + _LEVEL_BLOCKS + r"\.temp_attentions\.\d+)\.transformer_blocks\.\d+\.attn[12]",
              None, FRAMES, latent="sample"),
    ModelCase("unet_spatio_temporal", _svd_build, _svd_inputs,
              _LEVEL_BLOCKS + r"\.attentions\.\d+\.temporal_transformer_blocks\.\d+\.attn1", None, FRAMES,
              window=False, latent="sample"),
]
