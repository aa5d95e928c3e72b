#!/usr/bin/env python
"""Writes a tiny random-weight text-to-video pipeline (tokenizer, T5 text encoder, VAE, video
transformer(s), scheduler) to a directory with ``save_pretrained``: a stand-in for a real
checkpoint, for trying ``eav generate`` and for its tests on a machine without network or GPU.
Its videos are noise.

    .venv/bin/python tools/make_tiny_pipeline.py /tmp/tiny-cogvideox
    .venv/bin/eav generate --model /tmp/tiny-cogvideox --prompt "a cat" --frames 9 --steps 2 \\
        --height 64 --width 64 --out /tmp/cat.mp4 --compare
    .venv/bin/python tools/make_tiny_pipeline.py /tmp/tiny-wan22 --model-type wan2.2
    .venv/bin/eav generate --model /tmp/tiny-wan22 --prompt "a cat" --frames 9 --steps 2 \\
        --height 32 --width 32 --out /tmp/cat22.mp4

``--model-type``: ``cogvideox`` (CogVideoXPipeline, the default), ``wan`` (WanPipeline, Wan 2.1:
one transformer) or ``wan2.2`` (WanPipeline as Wan 2.2 A14B: two experts, ``transformer`` for
high noise and ``transformer_2`` for low noise, switching at ``boundary_ratio``).

The tokenizer is a word-level ``PreTrainedTokenizerFast`` (every unknown word maps to ``<unk>``)
built from ``tokenizers``; no sentencepiece model, no download.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

TEXT_TOKENS = 226  # the prompt's padded length: CogVideoXPipeline's default max_sequence_length
WORDS = ("a cat dog corgi surfing wave sunset on the in of at with red blue green running "
         "flying over city forest ocean night day").split()
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def _randomise_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter random (CogVideoX zero-initialises some projections)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(noise / math.sqrt(parameter[0].numel()) if parameter.dim() >= 2 else 0.5 * noise)
    return model.eval()


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + tuple(WORDS))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=TEXT_TOKENS)


def tiny_cogvideox_vae():
    """A CogVideoX VAE with 8 channels per block: 4 latent channels, 4x temporal compression."""
    import diffusers

    return diffusers.AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    ).eval()


def tiny_t5_encoder(umt5: bool = False):
    """A one-layer T5 (``umt5``: UMT5, as Wan uses) encoder of width 16 over ``tiny_tokenizer``'s
    vocabulary."""
    import transformers

    config, model = ("UMT5Config", "UMT5EncoderModel") if umt5 else ("T5Config", "T5EncoderModel")
    text_encoder = getattr(transformers, model)(getattr(transformers, config)(
        vocab_size=len(SPECIAL_TOKENS) + len(WORDS), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))
    return _randomise_(text_encoder, 10)


def tiny_cogvideox_pipeline():
    import diffusers

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_t5_encoder()
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=8,
        text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=TEXT_TOKENS,
    )
    _randomise_(transformer, 11)
    return diffusers.CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=tiny_cogvideox_vae(), transformer=transformer,
        scheduler=diffusers.CogVideoXDDIMScheduler(),
    )


def tiny_wan_vae():
    """A Wan VAE with 3 base channels: 4 latent channels, 4x temporal and 8x spatial compression."""
    import diffusers

    vae = diffusers.AutoencoderKLWan(
        base_dim=3, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )
    return _randomise_(vae, 9)


def tiny_wan_transformer(seed: int, in_channels: int = 4):
    import diffusers

    transformer = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=in_channels,
        out_channels=4, text_dim=16, freq_dim=16, ffn_dim=16, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    return _randomise_(transformer, seed)


WAN_KINDS = ("wan", "wan2.2", "wan2.2-i2v")


def tiny_wan_pipeline(kind: str = "wan", text_encoder: bool = True):
    """``kind``: ``"wan"`` (Wan 2.1 WanPipeline), ``"wan2.2"`` (two experts) or ``"wan2.2-i2v"``
    (WanImageToVideoPipeline with two experts, the image encoded by the VAE as Wan 2.2 A14B I2V
    does). ``text_encoder=False`` leaves tokenizer and text encoder out (pass prompt_embeds)."""
    import diffusers

    if kind not in WAN_KINDS:
        raise ValueError(f"kind must be one of {WAN_KINDS}, got {kind!r}")
    image = kind.endswith("i2v")
    in_channels = 4 + 4 + 4 if image else 4  # latents (+ 4 mask channels + the image's latents)
    experts = {"transformer": tiny_wan_transformer(12, in_channels)}
    if kind != "wan":  # high noise above boundary_ratio * 1000, low noise below
        experts.update(transformer_2=tiny_wan_transformer(13, in_channels), boundary_ratio=0.875)
    tokenizer, encoder = (tiny_tokenizer(), tiny_t5_encoder(umt5=True)) if text_encoder else (None, None)
    pipeline = diffusers.WanImageToVideoPipeline if image else diffusers.WanPipeline
    return pipeline(tokenizer=tokenizer, text_encoder=encoder, vae=tiny_wan_vae(),
                    scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), **experts)


def tiny_ltx_vae():
    """An LTX-Video VAE with 8 channels per block: 8 latent channels, 4x spatial and 4x temporal
    compression (causal encoder, as LTX-Video's)."""
    import diffusers

    vae = diffusers.AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    return _randomise_(vae, 14)


def tiny_ltx_condition_pipeline():
    """``LTXConditionPipeline`` (keyframe / video conditions) without tokenizer and text encoder:
    pass ``prompt_embeds`` (width 16) and their attention masks."""
    import diffusers

    transformer = diffusers.LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=2, caption_channels=16,
    )
    return diffusers.LTXConditionPipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(), vae=tiny_ltx_vae(), text_encoder=None,
        tokenizer=None, transformer=_randomise_(transformer, 15),
    )


MODEL_TYPES = {  # --model-type: (builder, eav generate size flags)
    "cogvideox": (tiny_cogvideox_pipeline, f"--frames 9 --height 64 --width 64; prompts pad to {TEXT_TOKENS} tokens"),
    "wan": (lambda: tiny_wan_pipeline("wan"), "--frames 9 --height 32 --width 32"),
    "wan2.2": (lambda: tiny_wan_pipeline("wan2.2"), "--frames 9 --height 32 --width 32"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--model-type", choices=sorted(MODEL_TYPES), default="cogvideox")
    args = parser.parse_args(argv)
    build, size = MODEL_TYPES[args.model_type]
    pipeline = build()
    pipeline.save_pretrained(args.directory)
    print(f"wrote a tiny random {type(pipeline).__name__} ({args.model_type}) to {args.directory} "
          f"(use {size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
