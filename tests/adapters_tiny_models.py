"""Tiny random-weight diffusers video transformers, and an independent Enhance-A-Video reference.

The reference shares no code with ``eav_kernels.adapters``: it patches
``torch.nn.functional.scaled_dot_product_attention`` and ``flex_attention`` for the duration of
one forward (test-only), uses plain ``torch.nn.Module`` forward hooks, computes CFI with the float64
``cross_frame_intensity_reference`` and scales with its own arithmetic. Where to scale comes from
this file's own per-model table (``ModelCase``), written from reading each diffusers block.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.attention.flex_attention as flex_attention
import torch.nn.functional as F

import eav_kernels as eav
from adapters_tiny_base import ModelCase, randomise_, run  # noqa: F401 (re-exported for the tests)
from adapters_tiny_base import _times, batch_size_of, gen as _gen, randn as _randn
from adapters_tiny_transformers import TRANSFORMER_CASES
from adapters_tiny_unets import UNET_CASES


# ---- CogVideoX 1.0 and 1.5 ------------------------------------------------------------------

def _cogvideox(patch_size_t=None, rotary=False):
    from diffusers import CogVideoXTransformer3DModel

    head_dim = 16 if rotary else 8  # 3D RoPE splits head_dim in 1/4 + 3/8 + 3/8, each even

    def build():
        model = CogVideoXTransformer3DModel(
            num_attention_heads=2, attention_head_dim=head_dim, in_channels=4, out_channels=4,
            time_embed_dim=8, text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8,
            sample_frames=9, patch_size=2, patch_size_t=patch_size_t, temporal_compression_ratio=4,
            max_text_seq_length=5, use_rotary_positional_embeddings=rotary,
        )
        return randomise_(model, _gen(0))

    frames = 3 * (patch_size_t or 1)

    def inputs(batch_size, generator, timestep=500.0):
        kwargs = dict(
            hidden_states=_randn(generator, batch_size, frames, 4, 8, 8),  # [B, F, C, H, W]
            encoder_hidden_states=_randn(generator, batch_size, 5, 16),
            timestep=torch.full((batch_size,), timestep),
            return_dict=False,
        )
        if rotary:
            from diffusers.models.embeddings import get_3d_rotary_pos_embed

            kwargs["image_rotary_emb"] = get_3d_rotary_pos_embed(
                embed_dim=head_dim, crops_coords=((0, 0), (4, 4)), grid_size=(4, 4), temporal_size=3,
            )
        return kwargs

    return build, inputs


# ---- HunyuanVideo ---------------------------------------------------------------------------

def _hunyuan_build():
    from diffusers import HunyuanVideoTransformer3DModel

    model = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 2, 4), guidance_embeds=True,
    )
    return randomise_(model, _gen(1))


def _hunyuan_inputs(batch_size, generator, timestep=500.0):
    mask = torch.ones(batch_size, 5, dtype=torch.bool)
    mask[:, -1] = False  # one padded text token
    return dict(
        hidden_states=_randn(generator, batch_size, 4, 3, 8, 8),  # [B, C, F, H, W]
        timestep=torch.full((batch_size,), timestep),
        encoder_hidden_states=_randn(generator, batch_size, 5, 16),
        encoder_attention_mask=mask,
        pooled_projections=_randn(generator, batch_size, 8),
        guidance=torch.full((batch_size,), 3.0),
        return_dict=False,
    )


# ---- Wan 2.1 --------------------------------------------------------------------------------

def _wan_build():
    from diffusers import WanTransformer3DModel

    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
        out_channels=4, text_dim=16, freq_dim=16, ffn_dim=16, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    return randomise_(model, _gen(2))


def _video_and_text_inputs(batch_size, generator, timestep=500.0):
    """Wan and Latte forwards: 3 latent frames of 8 x 8, 5 text tokens of width 16."""
    return dict(
        hidden_states=_randn(generator, batch_size, 4, 3, 8, 8),  # [B, C, F, H, W]
        timestep=torch.full((batch_size,), timestep),
        encoder_hidden_states=_randn(generator, batch_size, 5, 16),
        return_dict=False,
    )


# ---- LTX-Video ------------------------------------------------------------------------------

def _ltx_build():
    from diffusers import LTXVideoTransformer3DModel

    model = LTXVideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, num_layers=2, caption_channels=16,
    )
    return randomise_(model, _gen(3))


def _ltx_inputs(batch_size, generator, timestep=500.0):
    return dict(
        hidden_states=_randn(generator, batch_size, 3 * 4 * 4, 4),  # [B, F*H*W, C] packed
        encoder_hidden_states=_randn(generator, batch_size, 5, 16),
        timestep=torch.full((batch_size,), timestep),
        encoder_attention_mask=torch.ones(batch_size, 5),
        num_frames=3, height=4, width=4,
        return_dict=False,
    )


def _ltx_condition_inputs(batch_size, generator, timestep=500.0):
    """As LTXConditionPipeline calls it: no num_frames, ``video_coords [B, 3, N]`` ((t, h, w) per
    token, t in seconds at 25 fps), one keyframe latent (4 x 4 tokens, placed at pixel frame 8)
    prepended to the generated 3 x 4 x 4 grid, clean (timestep 0) where the grid is noisy."""
    frames = torch.tensor([0.0, 1.0, 9.0])  # latent frames' first pixel frames: (8 i + 1 - 8) clamped at 0
    grid = torch.stack(torch.meshgrid(frames / 25, 32.0 * torch.arange(4.0), 32.0 * torch.arange(4.0),
                                      indexing="ij")).flatten(1)  # [3, 48]
    keyframe = torch.stack(torch.meshgrid(torch.tensor([8.0 / 25]), 32.0 * torch.arange(4.0),
                                          32.0 * torch.arange(4.0), indexing="ij")).flatten(1)  # [3, 16]
    timesteps = torch.full((batch_size, 16 + 48), timestep)
    timesteps[:, :16] = 0.0
    inputs = _ltx_inputs(batch_size, generator, timestep)
    del inputs["num_frames"], inputs["height"], inputs["width"]
    return dict(inputs, hidden_states=_randn(generator, batch_size, 16 + 48, 4), timestep=timesteps,
                video_coords=torch.cat([keyframe, grid], dim=1).expand(batch_size, 3, 16 + 48))


# ---- Mochi ----------------------------------------------------------------------------------

def _mochi_build():
    from diffusers import MochiTransformer3DModel

    model = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        pooled_projection_dim=16, in_channels=4, out_channels=4, text_embed_dim=16,
        time_embed_dim=4, max_sequence_length=16,
    )
    return randomise_(model, _gen(4))


def _mochi_inputs(batch_size, generator, timestep=500.0):
    mask = torch.ones(batch_size, 5, dtype=torch.bool)
    mask[0, -2:] = False  # padded text tokens: the processor drops them per sample
    return dict(
        hidden_states=_randn(generator, batch_size, 4, 3, 8, 8),  # [B, C, F, H, W]
        encoder_hidden_states=_randn(generator, batch_size, 5, 16),
        timestep=torch.full((batch_size,), timestep),
        encoder_attention_mask=mask,
        return_dict=False,
    )


# ---- Latte ----------------------------------------------------------------------------------

def _latte_build():
    from diffusers import LatteTransformer3DModel

    model = LatteTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
        cross_attention_dim=16, attention_bias=True, sample_size=8, patch_size=2,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=16, video_length=3,
    )
    return randomise_(model, _gen(5))


CASES = {
    case.name: case
    for case in [
        ModelCase("cogvideox", *_cogvideox(), r"transformer_blocks\.\d+\.attn1", "first", 3),
        ModelCase("cogvideox1.5", *_cogvideox(patch_size_t=2, rotary=True),
                  r"transformer_blocks\.\d+\.attn1", "first", 3),
        ModelCase("hunyuan_video", _hunyuan_build, _hunyuan_inputs,
                  r"(single_)?transformer_blocks\.\d+\.attn", "last", 3),
        ModelCase("wan", _wan_build, _video_and_text_inputs, r"blocks\.\d+\.attn1", None, 3),
        ModelCase("ltx_video", _ltx_build, _ltx_inputs, r"transformer_blocks\.\d+\.attn1", None, 3),
        ModelCase("ltx_video_condition", _ltx_build, _ltx_condition_inputs, r"transformer_blocks\.\d+\.attn1",
                  None, 3, conditioning_tokens=16, conditioning="before"),
        ModelCase("mochi", _mochi_build, _mochi_inputs, r"transformer_blocks\.\d+\.attn1", "last", 3,
                  residual_branch="norm2", timestep_rises=True),
        ModelCase("latte", _latte_build, _video_and_text_inputs, r"temporal_transformer_blocks\.\d+\.attn1",
                  None, 3),
        *TRANSFORMER_CASES,
        *UNET_CASES,
    ]
}


# ---- the independent reference --------------------------------------------------------------

def _generated_rows(case: ModelCase, layer_count: int) -> slice:
    """The generated video tokens among a targeted layer's ``layer_count`` input tokens."""
    if case.conditioning == "before":
        return slice(case.conditioning_tokens, layer_count)
    return slice(0, layer_count - case.conditioning_tokens)


def _video_rows(case: ModelCase, sequence_length: int, layer_count: int) -> slice:
    """The generated video tokens of an attention call by a layer of ``layer_count`` tokens."""
    start = sequence_length - layer_count if case.text == "first" else 0
    rows = _generated_rows(case, layer_count)
    return slice(start + rows.start, start + rows.stop)


def _torch_forward_hooks(module, pre_hook, post_hook) -> list:
    return [module.register_forward_pre_hook(pre_hook, with_kwargs=True),
            module.register_forward_hook(post_hook, with_kwargs=True)]


def reference_output(model, case: ModelCase, inputs, weights: dict[str, float], *,
                     placement="to_out", per_sample=False, hook_layer=_torch_forward_hooks) -> torch.Tensor:
    """The model's output with Enhance-A-Video applied to the layers in ``weights``
    (``{module name: enhance weight}``), computed independently of ``eav_kernels.adapters``.
    ``hook_layer(module, pre_hook, post_hook) -> handles`` puts the reference on a layer (torch
    forward hooks, outside any diffusers hook on it, unless a test says otherwise)."""
    batch_size = batch_size_of(inputs[case.latent])
    current = {}  # layer name -> {"video": int, "cfis": [per-call [B_call] float64]}
    active_layer: list[str | None] = [None]

    def score(name, cfi):  # cfi [L] float64, L = batch_size * k
        cfi = cfi.view(batch_size, -1).mean(1) if per_sample else cfi.mean()
        return (cfi * (case.num_frames + weights[name])).clamp(min=1.0).float()

    def measured(attention):
        """``attention`` on ``[B, H, N, D]`` (torch SDPA, flex_attention), measured and scaled."""
        return lambda query, key, value, *args, **kwargs: measure(
            query, key, attention(query, key, value, *args, **kwargs), kwargs.get("scale"))

    def measure(query, key, out, scale):
        name = active_layer[0]
        if name is None:
            return out
        rows = _video_rows(case, query.shape[2], current[name]["video"])
        cfi = eav.cross_frame_intensity_reference(
            query[:, :, rows], key[:, :, rows], case.num_frames,
            scale=scale or query.shape[-1] ** -0.5, per_sample=True,
        )
        current[name]["cfis"].append(cfi)
        if placement == "attention_output" and case.residual_branch is None:
            out = out.clone()
            out[:, :, rows] = _times(out[:, :, rows], score(name, cfi))
        return out

    def pre_hook(name):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            current[name] = {"video": hidden.shape[1], "cfis": []}
            active_layer[0] = name
        return hook

    def post_hook(name):
        def hook(module, args, kwargs, output):
            active_layer[0] = None
            layer_score = score(name, torch.cat(current[name]["cfis"]))
            current[name]["score"] = layer_score
            if case.residual_branch is not None or placement == "attention_output":
                return output
            video = output[0] if isinstance(output, tuple) else output
            video = video.clone()
            rows = _generated_rows(case, video.shape[1])
            video[:, rows] = _times(video[:, rows], layer_score)
            return (video,) + output[1:] if isinstance(output, tuple) else video
        return hook

    def residual_hook(name):
        def hook(module, args, output):
            return _times(output, current[name]["score"])
        return hook

    handles = []
    pattern = re.compile(case.self_attention)
    for name, module in model.named_modules():
        if pattern.fullmatch(name) and name in weights:
            handles.extend(hook_layer(module, pre_hook(name), post_hook(name)))
            if case.residual_branch:
                parent = model.get_submodule(name.rpartition(".")[0])
                handles.append(parent.get_submodule(case.residual_branch).register_forward_hook(residual_hook(name)))
    assert len(handles) > 0 or not weights, f"reference matched no layer of {case.name}"
    originals = [(F, "scaled_dot_product_attention"), (flex_attention, "flex_attention")]
    originals = [(module, name, getattr(module, name)) for module, name in originals]
    try:
        for module, name, attention in originals:
            setattr(module, name, measured(attention))
        return run(model, inputs)
    finally:
        for module, name, attention in originals:
            setattr(module, name, attention)
        for handle in handles:
            handle.remove()


def attention_layer_names(model, case: ModelCase) -> list[str]:
    pattern = re.compile(case.self_attention)
    return [name for name, _ in model.named_modules() if pattern.fullmatch(name)]
