#!/usr/bin/env python
"""Writes a tiny random-weight CogVideoX pipeline (tokenizer, T5 text encoder, VAE, transformer,
scheduler) to a directory with ``save_pretrained``: a stand-in for a real checkpoint, for trying
``eav generate`` and for its tests on a machine without network or GPU. Its videos are noise.

    .venv/bin/python tools/make_tiny_pipeline.py /tmp/tiny-cogvideox
    .venv/bin/eav generate --model /tmp/tiny-cogvideox --prompt "a cat" --frames 9 --steps 2 \\
        --height 64 --width 64 --out /tmp/cat.mp4 --compare

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

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{word: i + 3 for i, word in enumerate(WORDS)}}
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


def tiny_cogvideox_pipeline():
    import diffusers
    from transformers import T5Config, T5EncoderModel

    tokenizer = tiny_tokenizer()
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))
    _randomise_(text_encoder, 10)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    tiny_cogvideox_pipeline().save_pretrained(args.directory)
    print(f"wrote a tiny random CogVideoX pipeline to {args.directory} "
          f"(use --frames 9 --height 64 --width 64; prompts pad to {TEXT_TOKENS} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
