"""Tiny random-weight diffusers video transformers beyond the first six, each a ``ModelCase``
(where its video tokens sit, written from reading the diffusers block, not from the adapters).

Every model: 2 heads, 1-2 layers, 3 generated latent frames (after temporal patching) of a
small grid, 5 text tokens, random weights. Builders import diffusers lazily."""

from __future__ import annotations

import functools

import torch

from adapters_tiny_base import ModelCase, gen, randn, randomise_, text_mask

FRAMES = 3  # generated latent frames of every case


def _diffusers(name: str):
    import diffusers

    return getattr(diffusers, name)


def _timestep(batch_size: int, timestep: float) -> torch.Tensor:
    return torch.full((batch_size,), timestep)


def _video_inputs(batch_size, generator, timestep=500.0, latent=(4, FRAMES, 8, 8), **extra):
    """``[B, *latent]`` latents (``[B, C, F, H, W]`` by default), 5 text tokens of width 16, a
    timestep per sample, and ``extra``."""
    return dict(
        hidden_states=randn(generator, batch_size, *latent),
        timestep=_timestep(batch_size, timestep),
        encoder_hidden_states=randn(generator, batch_size, 5, 16),
        return_dict=False,
        **extra,
    )


# ---- joint [text; video] attention ----------------------------------------------------------

def _hunyuan15_build():
    model = _diffusers("HunyuanVideo15Transformer3DModel")(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
        text_embed_2_dim=8, image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=16, task_type="i2v",
    )
    return randomise_(model, gen(11))


def _hunyuan15_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(
        batch_size, generator, timestep, latent=(4, FRAMES, 4, 4),
        encoder_attention_mask=text_mask(batch_size, 5, dtype=torch.float32),
        encoder_hidden_states_2=randn(generator, batch_size, 4, 8),
        encoder_attention_mask_2=torch.ones(batch_size, 4),
        image_embeds=randn(generator, batch_size, 3, 12),  # nonzero: the I2V path, image tokens valid
    )


def _framepack_build():
    model = _diffusers("HunyuanVideoFramepackTransformer3DModel")(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 2, 4), has_image_proj=True, image_proj_dim=12,
        has_clean_x_embedder=True,
    )
    return randomise_(model, gen(12))


# history tokens in each layer's input, before the section: 4x (8 frames / 4, 8x8 / 8), 2x (2 / 2,
# 8x8 / 4), clean (2 frames, 8x8 / 2)
_FRAMEPACK_HISTORY = 2 * 1 * 1 + 1 * 2 * 2 + 2 * 4 * 4


def _framepack_inputs(batch_size, generator, timestep=500.0):
    """The section being generated is ``hidden_states``; the history latents come separately."""
    return _video_inputs(
        batch_size, generator, timestep,
        encoder_attention_mask=text_mask(batch_size, 5),
        pooled_projections=randn(generator, batch_size, 8),
        image_embeds=randn(generator, batch_size, 2, 12),
        indices_latents=torch.arange(3.0, 3.0 + FRAMES),
        guidance=_timestep(batch_size, 3.0),
        latents_clean=randn(generator, batch_size, 4, 2, 8, 8),
        indices_latents_clean=torch.tensor([0.0, 6.0]),
        latents_history_2x=randn(generator, batch_size, 4, 2, 8, 8),
        indices_latents_history_2x=torch.tensor([1.0, 2.0]),
        latents_history_4x=randn(generator, batch_size, 4, 8, 8, 8),
        indices_latents_history_4x=torch.arange(7.0, 15.0),
    )


def _motif_build():
    model = _diffusers("MotifVideoTransformer3DModel")(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=2, num_decoder_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
        text_embed_dim=16, rope_axes_dim=(2, 2, 4), enable_text_cross_attention_dual=True,
        enable_text_cross_attention_single=True,
    )
    return randomise_(model, gen(13))


def _motif_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(batch_size, generator, timestep, encoder_attention_mask=text_mask(batch_size, 5))


def _easyanimate_build():
    model = _diffusers("EasyAnimateTransformer3DModel")(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, patch_size=2,
        sample_width=8, sample_height=8, num_layers=2, mmdit_layers=1, time_embed_dim=8, text_embed_dim=16,
        text_embed_dim_t5=12,
    )
    return randomise_(model, gen(14))


def _easyanimate_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(batch_size, generator, timestep,
                         encoder_hidden_states_t5=randn(generator, batch_size, 3, 12))


def _consisid_build():
    model = _diffusers("ConsisIDTransformer3DModel")(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=8,
        text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=5,
    )
    return randomise_(model, gen(15))


def _consisid_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(batch_size, generator, timestep, latent=(FRAMES, 4, 8, 8))  # [B, F, C, H, W]


# ---- video-only self-attention (text in cross-attention) -----------------------------------

_WAN_LIKE = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
                 out_channels=4, text_dim=16, freq_dim=16, ffn_dim=16, num_layers=2)


def _skyreels_build():
    model = _diffusers("SkyReelsV2Transformer3DModel")(**_WAN_LIKE, rope_max_seq_len=32)
    return randomise_(model, gen(16))


def _skyreels_inputs(batch_size, generator, timestep=500.0):
    """Diffusion forcing: one timestep per latent frame, the noisiest = ``timestep``."""
    inputs = _video_inputs(batch_size, generator, timestep, enable_diffusion_forcing=True)
    frame_steps = torch.tensor([timestep * 0.5, timestep * 0.75, timestep])
    inputs["timestep"] = frame_steps.repeat(batch_size, 1)  # [B, F]
    return inputs


def _wan_vace_build():
    model = _diffusers("WanVACETransformer3DModel")(
        **_WAN_LIKE, rope_max_seq_len=32, vace_layers=[0], vace_in_channels=6,
    )
    return randomise_(model, gen(17))


def _wan_vace_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(batch_size, generator, timestep,
                         control_hidden_states=randn(generator, batch_size, 6, FRAMES, 8, 8))


def _wan_animate_build():
    model = _diffusers("WanAnimateTransformer3DModel")(
        **{**_WAN_LIKE, "in_channels": 12}, latent_channels=4, image_dim=12, rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 8, "8": 8, "16": 8}, motion_encoder_size=16, motion_style_dim=8,
        motion_dim=4, motion_encoder_dim=8, face_encoder_hidden_dim=8, face_encoder_num_heads=2,
        inject_face_latents_blocks=2,
    )
    return randomise_(model, gen(18))


def _wan_animate_inputs(batch_size, generator, timestep=500.0):
    """Latent frame 0 is the reference image: FRAMES + 1 latent frames, pose for the last FRAMES."""
    return _video_inputs(
        batch_size, generator, timestep, latent=(12, 1 + FRAMES, 8, 8),  # [B, 2C + 4, 1 + F, H, W]
        encoder_hidden_states_image=randn(generator, batch_size, 2, 12),
        pose_hidden_states=randn(generator, batch_size, 4, FRAMES, 8, 8),
        face_pixel_values=randn(generator, batch_size, 3, 4 * FRAMES - 3, 16, 16),
    )


def _wan_animate2_build():
    """Its generation attention's BlockMask is built eagerly here (the model compiles it with
    torch.compile, ~20 s on CPU); the mask is the model's own (create_mask)."""
    from unittest import mock

    import diffusers.models.transformers.transformer_wan_animate_2 as module

    model = _diffusers("WanAnimate2Transformer3DModel")(
        patch_size=(1, 2, 2), text_len=8, in_dim=12, dim=32, ffn_dim=32, freq_dim=16, text_dim=16, out_dim=4,
        num_heads=2, num_layers=2, use_img_emb=False,
    )
    eager = functools.partial(module.create_block_mask, _compile=False)
    with mock.patch.object(module, "create_block_mask", lambda *args, _compile, **kwargs: eager(*args, **kwargs)):
        model.block_masks[(FRAMES, 4 * 4)] = model.create_mask(FRAMES, 4 * 4, torch.device("cpu"))
    return randomise_(model, gen(27))


def _wan_animate2_cache(generator, batch_size):
    """Every layer's cached reference K/V (pre-RoPE, ``[B, FRAMES * 4 * 4, heads, head_dim]``), as
    the reference pass leaves them."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    cache = WanAnimate2KVCache(2)
    for layer in range(2):
        cache.get(layer).store(*(randn(generator, batch_size, FRAMES * 16, 2, 16) for _ in range(2)))
    return cache


def _wan_animate2_inputs(batch_size, generator, timestep=500.0):
    """A denoising pass (kv_cache_mode="cached"): per-sample lists of ``[C, 1 + F, H, W]`` latents
    (frame 0: the reference image's slot) and their condition latents; the full video is this
    segment (origin_len 9 frames = F latent frames, origin_area 64 x 64 pixels = 4 x 4 positions)."""
    def samples(*shape):
        return [randn(generator, *shape) for _ in range(batch_size)]

    return dict(
        hidden_states=samples(4, 1 + FRAMES, 8, 8), timestep=_timestep(batch_size, timestep),
        encoder_hidden_states=samples(5, 16), condition_latents=samples(8, 1 + FRAMES, 8, 8),
        kv_cache=_wan_animate2_cache(generator, batch_size), kv_cache_mode="cached", seq_len=(1 + FRAMES) * 16,
        reference_grid_sizes=torch.tensor([[FRAMES, 4, 4]]).repeat(batch_size, 1), origin_len=9, origin_area=[64, 64],
        return_dict=False,
    )


def _wan_animate2_twin(inputs):
    """Two identical samples: the cached K/V of the one sample, twice."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    cache = WanAnimate2KVCache(2)
    for layer in range(2):
        cache.get(layer).store(*(torch.cat([part, part]) for part in inputs["kv_cache"].get(layer).get()))
    return {**inputs, "kv_cache": cache}


def _helios_build():
    model = _diffusers("HeliosTransformer3DModel")(
        **{k: v for k, v in _WAN_LIKE.items() if k != "patch_size"}, patch_size=(1, 2, 2),
        rope_dim=(2, 2, 4), is_amplify_history=True,
    )
    return randomise_(model, gen(19))


# history tokens before the chunk: long (4 frames, 8x8, /(4, 8, 8)), mid (2, 8x8, /(2, 4, 4)), short (1, 8x8, /(1, 2, 2))
_HELIOS_HISTORY = 1 * 1 * 1 + 1 * 2 * 2 + 1 * 4 * 4


def _helios_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(
        batch_size, generator, timestep,
        indices_hidden_states=torch.arange(7, 7 + FRAMES).repeat(batch_size, 1),
        latents_history_short=randn(generator, batch_size, 4, 1, 8, 8),
        indices_latents_history_short=torch.tensor([6]).repeat(batch_size, 1),
        latents_history_mid=randn(generator, batch_size, 4, 2, 8, 8),
        indices_latents_history_mid=torch.tensor([4, 5]).repeat(batch_size, 1),
        latents_history_long=randn(generator, batch_size, 4, 4, 8, 8),
        indices_latents_history_long=torch.arange(0, 4).repeat(batch_size, 1),
    )


def _anyflow_build():
    model = _diffusers("AnyFlowTransformer3DModel")(**_WAN_LIKE, rope_max_seq_len=32)
    return randomise_(model, gen(20))


def _anyflow_inputs(batch_size, generator, timestep=500.0):
    inputs = _video_inputs(batch_size, generator, timestep, latent=(FRAMES, 4, 8, 8),  # [B, F, C, H, W]
                           r_timestep=torch.full((batch_size, FRAMES), timestep * 0.5))  # the flow-map target
    inputs["timestep"] = torch.full((batch_size, FRAMES), timestep)  # one per frame, as the pipeline passes
    return inputs


def _cosmos_build():
    model = _diffusers("CosmosTransformer3DModel")(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        mlp_ratio=2.0, text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable",
    )
    return randomise_(model, gen(21))


def _cosmos_inputs(batch_size, generator, timestep=500.0):
    """Video2World style: a per-frame timestep ``[B, 1, F, 1, 1]``, lower on the first
    (conditioning) frame; the noisiest is ``timestep``."""
    frame_steps = torch.tensor([timestep * 0.1, timestep, timestep]).view(1, 1, FRAMES, 1, 1)
    inputs = _video_inputs(batch_size, generator, timestep, fps=24)
    inputs["timestep"] = frame_steps.repeat(batch_size, 1, 1, 1, 1)
    return inputs


def _allegro_build():
    model = _diffusers("AllegroTransformer3DModel")(
        patch_size=2, patch_size_t=1, num_attention_heads=2, attention_head_dim=8, in_channels=4,
        out_channels=4, num_layers=2, cross_attention_dim=16, sample_height=8, sample_width=8,
        sample_frames=FRAMES, caption_channels=16,
    )
    return randomise_(model, gen(22))


def _ltx2_build():
    model = _diffusers("LTX2VideoTransformer3DModel")(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2,
        caption_channels=16, rope_double_precision=False,
    )
    return randomise_(model, gen(23))


_LTX2_KEYFRAME_TOKENS = 4 * 4  # one appended keyframe latent (4 x 4 tokens) after the generated grid


def _ltx2_inputs(batch_size, generator, timestep=500.0):
    """The generated 3 x 4 x 4 grid followed by an appended keyframe's tokens (condition pipelines)."""
    from diffusers.models.transformers.transformer_ltx2 import LTX2AudioVideoRotaryPosEmbed

    tokens = FRAMES * 4 * 4 + _LTX2_KEYFRAME_TOKENS
    timesteps = torch.full((batch_size, tokens), timestep)
    timesteps[:, -_LTX2_KEYFRAME_TOKENS:] = 0.0  # the keyframe is clean
    rope = LTX2AudioVideoRotaryPosEmbed(dim=16, num_attention_heads=2)
    grid = rope.prepare_video_coords(batch_size, FRAMES, 4, 4, torch.device("cpu"))  # [B, 3, N, 2]
    keyframe = rope.prepare_video_coords(batch_size, 1, 4, 4, torch.device("cpu"))  # placed at frame 0
    return dict(
        hidden_states=randn(generator, batch_size, tokens, 4),  # [B, N, C] packed
        audio_hidden_states=randn(generator, batch_size, 5, 4),
        encoder_hidden_states=randn(generator, batch_size, 5, 16),
        audio_encoder_hidden_states=randn(generator, batch_size, 5, 16),
        timestep=timesteps,
        audio_timestep=_timestep(batch_size, timestep),
        encoder_attention_mask=text_mask(batch_size, 5, dtype=torch.float32),
        audio_encoder_attention_mask=torch.ones(batch_size, 5),
        num_frames=FRAMES, height=4, width=4, audio_num_frames=5, fps=24.0,
        video_coords=torch.cat([grid, keyframe], dim=2),
        return_dict=False,
    )


def _kandinsky5_build():
    model = _diffusers("Kandinsky5Transformer3DModel")(
        in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, out_visual_dim=4, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(2, 2, 4),
    )
    return randomise_(model, gen(24))


def _kandinsky5_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(
        batch_size, generator, timestep, latent=(FRAMES, 8, 8, 4),  # [B, F, H, W, C]
        pooled_projections=randn(generator, batch_size, 8),
        visual_rope_pos=[torch.arange(FRAMES), torch.arange(4), torch.arange(4)],
        text_rope_pos=torch.arange(5),
    )


def _kandinsky6_build():
    model = _diffusers("Kandinsky6Transformer3DModel")(
        in_visual_dim=4, out_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(2, 2, 4),
        visual_cond=False, in_audio_dim=4, out_audio_dim=4, model_dim_a=8, ff_dim_a=16, axes_dims_a=(2, 2, 4),
        ca_rope=True, cross_gates=True, fix_modulation=True,
    )
    return randomise_(model, gen(25))


def _kandinsky6_inputs(batch_size, generator, timestep=500.0):
    return _video_inputs(batch_size, generator, timestep, latent=(FRAMES, 8, 8, 4),  # [B, F, H, W, C]
                         pooled_projections=randn(generator, batch_size, 8),
                         audio_hidden_states=randn(generator, batch_size, 6, 4))


def _minimax_h3_build():
    model = _diffusers("MiniMaxH3Transformer3DModel")(
        num_attention_heads=2, attention_head_dim=16, hidden_size=16, num_layers=2, num_refiner_layers=1,
        ffn_dim=32, in_channels=4, audio_in_channels=4, patch_size=(1, 2, 2), text_dim=16, freq_dim=16,
        time_embed_hidden_dim=16, time_embed_dim=8, rope_freq_dim=2,
    )
    return randomise_(model, gen(26))


# MiniMax-H3's packed rows, in order: 5 text, one keyframe condition frame (4 x 4 positions after
# 2 x 2 patches of an 8 x 8 latent), 2 audio latents x 2 channels, then the target video
_MINIMAX_POSITIONS = 4 * 4
_MINIMAX_PACKED = (("text", 5), ("condition", _MINIMAX_POSITIONS), ("audio", 2 * 2),
                   ("video", FRAMES * _MINIMAX_POSITIONS))
_MINIMAX_CONDITIONING = sum(rows for kind, rows in _MINIMAX_PACKED if kind != "video")


def _minimax_h3_layout() -> dict[str, torch.Tensor]:
    """The structural forward arguments of the packed sequence above, as the t2va pipeline builds
    them: a keyframe anchored at the first frame's rotary time, target frames at increasing
    times on one (h, w) grid, audio pinned to the grid's width extremes."""
    spans = {kind: torch.arange(rows) for kind, rows in _MINIMAX_PACKED}
    starts, start = {}, 0
    for kind, rows in _MINIMAX_PACKED:
        starts[kind], start = start, start + rows
    positions = torch.zeros(start, 3)  # [L, 3]: (t, h, w)
    grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1).view(-1, 2)
    positions[:5, 0] = spans["text"].float()
    positions[starts["condition"]:starts["audio"], 0] = 5.0
    positions[starts["condition"]:starts["audio"], 1:] = grid
    positions[starts["audio"]:starts["video"], 0] = 5.0 + torch.arange(2.0).repeat(2)
    positions[starts["audio"]:starts["video"], 2] = torch.tensor([0.0, 0.0, 3.0, 3.0])
    frame_times = 5.0 + torch.tensor([0.0, 5 / 3, 5 / 3 * 5])
    positions[starts["video"]:, 0] = frame_times.repeat_interleave(_MINIMAX_POSITIONS)
    positions[starts["video"]:, 1:] = grid.repeat(FRAMES, 1)
    tags = torch.zeros(start, dtype=torch.long)  # 0 video, 1 text, 2 audio
    tags[:5], tags[starts["audio"]:starts["video"]] = 1, 2
    timestep_indices = torch.zeros(start, dtype=torch.long)  # 0: the target's level, 1: the held keyframe's
    timestep_indices[starts["condition"]:starts["audio"]] = 1
    return dict(
        position_ids=positions, token_tags=tags, timestep_indices=timestep_indices,
        video_indices=torch.cat([starts["condition"] + spans["condition"], starts["video"] + spans["video"]]),
        audio_indices=starts["audio"] + spans["audio"], text_indices=spans["text"],
    )


def _minimax_h3_inputs(batch_size, generator, timestep=900.0):
    """Rising timesteps (the model's t = 1 is clean, here scaled by 1000 like the other cases): the
    target's level and the keyframe's, held near clean."""
    return dict(
        hidden_states=randn(generator, batch_size, _MINIMAX_POSITIONS * (1 + FRAMES), 16),  # [B, N_video, C*2*2]
        audio_hidden_states=randn(generator, batch_size, 2 * 2, 4),
        encoder_hidden_states=randn(generator, batch_size, 5, 16),
        timestep=torch.tensor([timestep, 999.0]),
        return_dict=False,
        **_minimax_h3_layout(),
    )


# ---- the cases ------------------------------------------------------------------------------

_TRANSFORMER_BLOCKS_ATTN1 = r"transformer_blocks\.\d+\.attn1"
_WAN_BLOCKS_ATTN1 = r"blocks\.\d+\.attn1"
_DUAL_AND_SINGLE = r"(single_)?transformer_blocks\.\d+\.attn"

TRANSFORMER_CASES = [
    ModelCase("hunyuan_video_1.5", _hunyuan15_build, _hunyuan15_inputs, r"transformer_blocks\.\d+\.attn",
              "last", FRAMES),
    ModelCase("hunyuan_video_framepack", _framepack_build, _framepack_inputs, _DUAL_AND_SINGLE, "last", FRAMES,
              conditioning_tokens=_FRAMEPACK_HISTORY, conditioning="before",
              unbatched=("indices_latents", "indices_latents_clean", "indices_latents_history_2x",
                         "indices_latents_history_4x")),
    ModelCase("motif_video", _motif_build, _motif_inputs, _DUAL_AND_SINGLE, "last", FRAMES),
    ModelCase("easyanimate", _easyanimate_build, _easyanimate_inputs, _TRANSFORMER_BLOCKS_ATTN1, "first", FRAMES),
    ModelCase("consisid", _consisid_build, _consisid_inputs, _TRANSFORMER_BLOCKS_ATTN1, "first", FRAMES),
    ModelCase("skyreels_v2", _skyreels_build, _skyreels_inputs, _WAN_BLOCKS_ATTN1, None, FRAMES),
    ModelCase("wan_vace", _wan_vace_build, _wan_vace_inputs, _WAN_BLOCKS_ATTN1, None, FRAMES),
    ModelCase("wan_animate", _wan_animate_build, _wan_animate_inputs, _WAN_BLOCKS_ATTN1, None, FRAMES,
              conditioning_tokens=4 * 4, conditioning="before"),
    ModelCase("wan_animate_2", _wan_animate2_build, _wan_animate2_inputs, r"blocks\.\d+\.self_attn", "last", FRAMES,
              conditioning_tokens=4 * 4, conditioning="before", twin=_wan_animate2_twin),
    ModelCase("helios", _helios_build, _helios_inputs, _WAN_BLOCKS_ATTN1, None, FRAMES,
              conditioning_tokens=_HELIOS_HISTORY, conditioning="before"),
    ModelCase("anyflow", _anyflow_build, _anyflow_inputs, _WAN_BLOCKS_ATTN1, None, FRAMES),
    ModelCase("cosmos", _cosmos_build, _cosmos_inputs, _TRANSFORMER_BLOCKS_ATTN1, None, FRAMES),
    ModelCase("allegro", _allegro_build, _video_inputs, _TRANSFORMER_BLOCKS_ATTN1, None, FRAMES),
    ModelCase("ltx2_video", _ltx2_build, _ltx2_inputs, _TRANSFORMER_BLOCKS_ATTN1, None, FRAMES,
              conditioning_tokens=_LTX2_KEYFRAME_TOKENS, conditioning="after"),
    ModelCase("minimax_h3", _minimax_h3_build, _minimax_h3_inputs, r"transformer_blocks\.\d+\.attn", None, FRAMES,
              conditioning_tokens=_MINIMAX_CONDITIONING, conditioning="before", timestep_rises=True,
              unbatched=("timestep", "timestep_indices", "token_tags", "position_ids", "video_indices",
                         "audio_indices", "text_indices")),
    ModelCase("kandinsky5", _kandinsky5_build, _kandinsky5_inputs, r"visual_transformer_blocks\.\d+\.self_attention",
              None, FRAMES, unbatched=("visual_rope_pos", "text_rope_pos")),
    ModelCase("kandinsky6", _kandinsky6_build, _kandinsky6_inputs,
              r"visual_transformer_blocks\.\d+\.video_dec_block\.self_attention", None, FRAMES),
]
