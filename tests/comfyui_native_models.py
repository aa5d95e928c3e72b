"""Tiny native ComfyUI video models, built from a real ComfyUI checkout's own classes, on CPU.

Only imported by ``tests/test_comfyui_real.py`` once ComfyUI is importable (``comfyui_checkout``).
Each ``TinyVideoModel`` is a ``comfy.supported_models`` config with a unet config small enough for
CPU (a few layers of width 64, 4 heads of 16), the latent it samples and the conditioning its
``extra_conds`` needs. Weights are random and seeded: ComfyUI's ops leave them uninitialised.
Norm weights are drawn around 1 (the others around 0), so that RMS-normalised q and k give
attention maps far from uniform, where a wrong cross-frame intensity shows.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import torch

COMFYUI_PATH_VARIABLE = "EAV_COMFYUI_PATH"
CPU = torch.device("cpu")


def comfyui_checkout() -> str:
    """Put the ComfyUI checkout ``EAV_COMFYUI_PATH`` names on ``sys.path``, make ComfyUI run on
    CPU, and return the path; raises ``ImportError`` saying what is missing."""
    path = os.environ.get(COMFYUI_PATH_VARIABLE)
    if not path:
        raise ImportError(f"{COMFYUI_PATH_VARIABLE} is not set (a ComfyUI checkout, not on PyPI)")
    if not os.path.isfile(os.path.join(path, "comfy", "model_patcher.py")):
        raise ImportError(f"{COMFYUI_PATH_VARIABLE}={path} is not a ComfyUI checkout (no comfy/model_patcher.py)")
    if path not in sys.path:
        sys.path.insert(0, path)
    cli_args = importlib.import_module("comfy.cli_args")
    cli_args.args.cpu = True  # read when comfy.model_management is first imported
    for module in ("comfy.model_management", "comfy.supported_models", "comfy.model_patcher",
                   "comfy.sample", "comfy.patcher_extension"):
        importlib.import_module(module)
    return path


def skip_without_comfyui() -> None:
    """Skip the calling test module, with the reason, unless ComfyUI and the node import here."""
    import pytest

    try:
        comfyui_checkout()
        importlib.import_module("eav_kernels.comfyui.node")
    except ImportError as error:  # no checkout named, or not importable with this torch
        pytest.skip(f"needs a ComfyUI checkout importable here ({COMFYUI_PATH_VARIABLE}): {error}",
                    allow_module_level=True)


@dataclass(frozen=True)
class TinyVideoModel:
    """One native family, tiny. ``config``: the ``comfy.supported_models`` class name and its unet
    config; ``latent``: ``[B, C, T, H, W]``; ``patch``: the model's ``(t, h, w)`` patch; ``text_tokens``/``text_dim``:
    the conditioning ``[1, text_tokens, text_dim]``; ``extra``: its other conditioning entries;
    ``audio_latent``: LTX-2's audio latent ``[B, C, T, F]``, packed with the video as ComfyUI does."""

    name: str
    config_class: str
    unet_config: dict[str, Any]
    latent: tuple[int, int, int, int, int]
    patch: tuple[int, int, int]
    text_tokens: int = 8
    text_dim: int = 16
    extra: Callable[[], dict[str, Any]] = field(default=dict)
    audio_latent: tuple[int, int, int, int] | None = None

    @property
    def tokens_per_frame(self) -> int:
        """The models pad the latent to whole patches: ``ceil(H / h) * ceil(W / w)``."""
        return -(-self.latent[3] // self.patch[1]) * -(-self.latent[4] // self.patch[2])

    def build(self, seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
        """A ``ModelPatcher`` over a fresh model of this family on CPU: seeded random weights,
        ``dtype`` as ComfyUI's loader sets it (its inference dtype; some parameters stay float32)."""
        import comfy.model_patcher
        import comfy.supported_models

        config = getattr(comfy.supported_models, self.config_class)(dict(self.unet_config))
        config.set_inference_dtype(dtype, None)
        model = config.get_model({})
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in model.diffusion_model.named_parameters():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
                centre = 1.0 if "norm" in name and parameter.dim() == 1 else 0.0
                parameter.copy_(centre + 0.1 * noise)
        return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)

    def conditioning(self, seed: int = 0) -> tuple[list, list]:
        """(positive, negative) as ``comfy.sample.sample`` takes them: fresh random text embeddings."""
        generator = torch.Generator().manual_seed(seed)
        positive, negative = (torch.randn(1, self.text_tokens, self.text_dim, generator=generator) for _ in range(2))
        return [[positive, self.extra()]], [[negative, self.extra()]]


def _long_mask(tokens: int) -> Callable[[], dict[str, Any]]:
    return lambda: {"attention_mask": torch.ones(1, tokens, dtype=torch.long)}


def _pooled(width: int) -> Callable[[], dict[str, Any]]:
    return lambda: {"pooled_output": torch.randn(1, width, generator=torch.Generator().manual_seed(7))}


def _hunyuan_video_config(**overrides: Any) -> dict[str, Any]:
    config = dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=None, context_in_dim=16,
                  hidden_size=64, mlp_ratio=2.0, num_heads=4, depth=2, depth_single_blocks=2, axes_dim=[4, 6, 6],
                  theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=False, byt5=False, meanflow=False,
                  use_cond_type_embedding=False, vision_in_dim=None, meanflow_sum=False)
    config.update(overrides)
    return config


WAN21 = TinyVideoModel(
    "wan2.1", "WAN21_T2V",
    dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=8, in_dim=16, dim=64, ffn_dim=128,
         freq_dim=32, text_dim=16, out_dim=16, num_heads=4, num_layers=2),
    latent=(1, 16, 5, 6, 10), patch=(1, 2, 2))
WAN21_VACE = TinyVideoModel(  # one VACE block, after main block 0; control video + mask: 32 + 64 channels
    "wan2.1-vace", "WAN21_Vace",
    dict(WAN21.unet_config, model_type="vace", vace_in_dim=96, vace_layers=1),
    latent=WAN21.latent, patch=WAN21.patch,
    extra=lambda: {"vace_frames": [torch.randn(1, 32, 5, 6, 10, generator=torch.Generator().manual_seed(3))],
                   "vace_mask": [torch.ones(1, 64, 5, 6, 10)], "vace_strength": [1.0]})
WAN21_I2V = TinyVideoModel(  # CLIP vision tokens join the text in cross-attention; image + mask: 20 more channels
    "wan2.1-i2v", "WAN21_I2V", dict(WAN21.unet_config, model_type="i2v", in_dim=36),
    latent=WAN21.latent, patch=WAN21.patch,
    extra=lambda: {"clip_vision_output": SimpleNamespace(
        penultimate_hidden_states=torch.randn(1, 257, 1280, generator=torch.Generator().manual_seed(9))),
        "concat_latent_image": torch.randn(1, 16, 5, 6, 10, generator=torch.Generator().manual_seed(4))})
WAN22 = TinyVideoModel(  # Wan 2.2 TI2V-5B's class: 48 latent channels, per-token timesteps
    "wan2.2", "WAN22_T2V",
    dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=8, in_dim=48, dim=64, ffn_dim=128,
         freq_dim=32, text_dim=16, out_dim=48, num_heads=4, num_layers=2),
    latent=(1, 48, 3, 8, 8), patch=(1, 2, 2))
HUNYUAN_VIDEO = TinyVideoModel(
    "hunyuan_video", "HunyuanVideo", _hunyuan_video_config(),
    latent=(1, 16, 5, 6, 10), patch=(1, 2, 2), extra=_pooled(768))
HUNYUAN_VIDEO_15 = TinyVideoModel(  # concat_cond adds 32 image + 1 mask channels
    "hunyuan_video_1.5", "HunyuanVideo15",
    _hunyuan_video_config(use_cond_type_embedding=True, in_channels=65, out_channels=32),
    latent=(1, 32, 3, 8, 8), patch=(1, 2, 2), extra=_pooled(768))
LTXV = TinyVideoModel(  # patch 1: one token per latent pixel
    "ltxv", "LTXV",
    dict(image_model="ltxv", in_channels=128, cross_attention_dim=64, attention_head_dim=16, num_attention_heads=4,
         caption_channels=16, num_layers=2),
    latent=(1, 128, 3, 4, 4), patch=(1, 1, 1), extra=_long_mask(8))
MOCHI = TinyVideoModel(  # the block asserts hidden_size_x * mlp_ratio_x == 12288
    "mochi", "GenmoMochi",
    dict(image_model="mochi_preview", patch_size=2, in_channels=12, hidden_size_x=64, hidden_size_y=32, depth=2,
         num_heads=4, mlp_ratio_x=192.0, mlp_ratio_y=4.0, use_t5=True, t5_feat_dim=16, t5_token_length=8,
         learn_sigma=False, timestep_scale=1000.0, qk_norm=True, qkv_bias=False, out_bias=True),
    latent=(1, 12, 3, 8, 8), patch=(1, 2, 2), extra=_long_mask(8))
COSMOS = TinyVideoModel(
    "cosmos1", "CosmosT2V",
    dict(image_model="cosmos", max_img_h=240, max_img_w=240, max_frames=128, in_channels=16, out_channels=16,
         patch_spatial=2, patch_temporal=1, model_channels=64, num_blocks=2, num_heads=4, crossattn_emb_channels=16,
         block_config="FA-CA-MLP", concat_padding_mask=True, pos_emb_cls="rope3d", pos_emb_learnable=False,
         pos_emb_interpolation="crop", block_x_format="THWBD", affline_emb_norm=True, use_adaln_lora=True,
         adaln_lora_dim=16, extra_per_block_abs_pos_emb=True, extra_per_block_abs_pos_emb_type="learnable"),
    latent=(1, 16, 3, 8, 8), patch=(1, 2, 2))
COSMOS_PREDICT2 = TinyVideoModel(
    "cosmos_predict2", "CosmosT2IPredict2",
    dict(image_model="cosmos_predict2", max_img_h=240, max_img_w=240, max_frames=128, in_channels=16,
         out_channels=16, patch_spatial=2, patch_temporal=1, model_channels=64, num_blocks=2, num_heads=4,
         crossattn_emb_channels=16, concat_padding_mask=True, pos_emb_cls="rope3d", pos_emb_learnable=True,
         pos_emb_interpolation="crop", use_adaln_lora=True, adaln_lora_dim=16, extra_per_block_abs_pos_emb=False),
    latent=(1, 16, 3, 8, 8), patch=(1, 2, 2))
COGVIDEOX = TinyVideoModel(
    "cogvideox", "CogVideoX_T2V",
    dict(image_model="cogvideox", num_attention_heads=4, attention_head_dim=16, in_channels=16, out_channels=16,
         time_embed_dim=32, text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8, sample_frames=9,
         patch_size=2, max_text_seq_length=8, use_rotary_positional_embeddings=True),
    latent=(1, 16, 3, 8, 8), patch=(1, 2, 2))
KANDINSKY5 = TinyVideoModel(  # concat_cond adds 16 + 1 channels: visual_embed_dim = 33 * 4
    "kandinsky5", "Kandinsky5",
    dict(image_model="kandinsky5", in_visual_dim=16, out_visual_dim=16, in_text_dim=16, in_text_dim2=16, time_dim=32,
         model_dim=64, ff_dim=128, visual_embed_dim=132, patch_size=(1, 2, 2), num_text_blocks=1,
         num_visual_blocks=2, axes_dims=(4, 6, 6)),
    latent=(1, 16, 3, 8, 8), patch=(1, 2, 2), extra=_pooled(16))

LTX2 = TinyVideoModel(  # audio + video; text embeddings already at the connectors' output width (2 x 16)
    "ltx2", "LTXAV",
    dict(image_model="ltxav", in_channels=128, audio_in_channels=128, cross_attention_dim=64, audio_cross_attention_dim=32,
         attention_head_dim=16, audio_attention_head_dim=8, num_attention_heads=4, audio_num_attention_heads=4,
         caption_channels=16, num_layers=2, connector_attention_head_dim=8, connector_num_attention_heads=2,
         connector_num_layers=1),
    latent=(1, 128, 3, 4, 4), patch=(1, 1, 1), text_dim=32, extra=_long_mask(8), audio_latent=(1, 8, 5, 16))


def sample(patcher: Any, model: TinyVideoModel, steps: int = 2, cfg: float = 2.0, seed: int = 0) -> torch.Tensor:
    """``comfy.sample.sample`` with Euler over ``steps`` steps from seeded noise: ``[B, C, T, H, W]``
    (LTX-2: its video and audio latents flattened into one vector)."""
    import comfy.nested_tensor
    import comfy.sample

    shapes = [model.latent] + ([model.audio_latent] if model.audio_latent else [])
    latents = [torch.zeros(shape) for shape in shapes]
    noises = [torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1 + i)) for i, shape in enumerate(shapes)]
    if model.audio_latent:
        latent, noise = comfy.nested_tensor.NestedTensor(latents), comfy.nested_tensor.NestedTensor(noises)
    else:
        latent, noise = latents[0], noises[0]
    positive, negative = model.conditioning(seed)
    out = comfy.sample.sample(patcher, noise, steps, cfg, "euler", "simple", positive, negative, latent,
                              denoise=1.0, disable_pbar=True, seed=seed)
    return torch.cat([part.flatten() for part in out.unbind()]) if model.audio_latent else out
