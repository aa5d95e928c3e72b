"""Stand-ins for the parts of ComfyUI the node touches, implementing its hook contracts literally.

CI has no ComfyUI. These classes call the node's hooks with exactly the argument shapes, dict
keys and call order of ComfyUI's native models (comfy/ldm/wan/model.py, comfy/ldm/flux/layers.py,
comfy/ldm/hunyuan_video/model.py, comfy/ldm/modules/attention.py's ``wrap_attn``,
comfy/model_patcher.py, comfy/samplers.py), with tiny random weights:

- ``ModelPatcher``: ``clone``, ``model_options``, ``set_model_attn1_patch``,
  ``set_model_attn1_output_patch``, ``set_model_optimized_attention`` (and a third-party node's
  ``set_model_attention_override``), ``add_object_patch`` / ``get_model_object`` (object patches
  applied only while a call runs, then restored), ``add_wrapper_with_key`` / ``get_wrappers``;
  ``sample_call`` builds the per-call ``transformer_options`` as sampling does
  (``cond_or_uncond``, ``uuids``, ``sigmas``, the wrappers) and calls the diffusion model.
- ``optimized_attention``: SDPA behind ``transformer_options["optimized_attention_override"]``,
  called as ``override(attention_function, *args, **kwargs)``.
- ``WanModel`` (self-attention ``attn1_patch({"x", "q", "k", "transformer_options"})`` before
  ``self.o``; ``grid_sizes``, ``block_index``) and ``HunyuanVideo`` (double / single stream blocks:
  ``attn1_patch(q, k, v, pe=, attn_mask=, extra_options=)`` before RoPE, text first,
  ``img_slice``; ``attn1_output_patch(attn, extra_options)``; ``img_attn.proj``).

Each attention module can also run a test's ``reference`` in place of the hooks (``reference``
attribute, set on a separate copy of the model): the expected output, computed independently.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

# ---- attention, RoPE --------------------------------------------------------------------------


def attention_pytorch(q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
    """SDPA on ``[B, L, heads*D]`` inputs (``[B, heads, L, D]`` with ``skip_reshape``), output
    ``[B, L, heads*D]``."""
    if not skip_reshape:
        q, k, v = (t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, heads, L, D]
    return out if skip_output_reshape else out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


def optimized_attention(*args, **kwargs):
    """ComfyUI's attention entry: an override in ``transformer_options`` gets the attention
    function first, then the caller's arguments plus ``_inside_attn_wrapper=True``."""
    transformer_options = kwargs.get("transformer_options")
    if "_inside_attn_wrapper" not in kwargs and transformer_options and \
            "optimized_attention_override" in transformer_options:
        kwargs["_inside_attn_wrapper"] = True
        return transformer_options["optimized_attention_override"](attention_pytorch, *args, **kwargs)
    return attention_pytorch(*args, **kwargs)


def rotation_matrices(positions: torch.Tensor,  # [L] token positions
                      head_dim: int) -> torch.Tensor:
    """``[L, head_dim/2, 2, 2]`` float32 RoPE rotations."""
    omega = 1.0 / 10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angle = positions.double()[:, None] * omega[None, :]
    cos, sin = angle.cos(), angle.sin()
    return torch.stack([cos, -sin, sin, cos], dim=-1).view(*angle.shape, 2, 2).float()


def rotate(x: torch.Tensor,  # [..., D], pairs of channels rotated
           rotations: torch.Tensor  # [..., D/2, 2, 2], broadcast against x's leading dims
           ) -> torch.Tensor:
    pairs = x.float().reshape(*x.shape[:-1], -1, 2, 1)
    return (rotations @ pairs).reshape(x.shape).type_as(x)


def flux_apply_rope(q: torch.Tensor, k: torch.Tensor, pe: torch.Tensor):
    """``q, k`` ``[B, H, L, D]`` rotated by ``pe`` ``[B, 1, L, D/2, 2, 2]`` (the flux blocks' RoPE)."""
    return rotate(q, pe), rotate(k, pe)


def flux_attention(q, k, v, pe, mask=None, transformer_options={}):
    if pe is not None:
        q, k = flux_apply_rope(q, k, pe)
    return optimized_attention(q, k, v, q.shape[1], skip_reshape=True, mask=mask,
                               transformer_options=transformer_options)


# ---- wrappers, model sampling, the model patcher ----------------------------------------------


def run_wrapped(original: Callable, wrappers: list, *args, **kwargs):
    """``WrapperExecutor``: ``wrappers[0](executor, *args)``, each executor calling the next."""

    class Executor:
        def __init__(self, index: int):
            self.index = index

        def __call__(self, *a, **kw):
            if self.index == len(wrappers):
                return original(*a, **kw)
            return wrappers[self.index](Executor(self.index + 1), *a, **kw)

    return Executor(0)(*args, **kwargs)


def diffusion_model_wrappers(transformer_options: dict) -> list:
    by_key = transformer_options.get("wrappers", {}).get("diffusion_model", {})
    return [w for wrappers in by_key.values() for w in wrappers]


class FlowSampling:
    """``ModelSamplingDiscreteFlow`` with shift 1: sigma 1 (noise) to 0, ``percent_to_sigma(p) = 1 - p``."""

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return 1.0 - percent


class BaseModel(nn.Module):
    def __init__(self, diffusion_model: nn.Module):
        super().__init__()
        self.diffusion_model = diffusion_model
        self.model_sampling = FlowSampling()


def copy_nested(value):
    if isinstance(value, dict):
        return {key: copy_nested(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_nested(item) for item in value]
    return value


def get_attr(obj, name: str):
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def set_attr(obj, name: str, value):
    *parents, last = name.split(".")
    for part in parents:
        obj = getattr(obj, part)
    previous = getattr(obj, last)
    setattr(obj, last, value)
    return previous


class ModelPatcher:
    def __init__(self, model: BaseModel):
        self.model = model
        self.model_options: dict = {"transformer_options": {}}
        self.object_patches: dict = {}
        self.object_patches_backup: dict = {}
        self.wrappers: dict = {}

    def clone(self) -> "ModelPatcher":
        n = ModelPatcher(self.model)
        n.model_options = copy_nested(self.model_options)
        n.object_patches = self.object_patches.copy()
        n.wrappers = copy_nested(self.wrappers)
        return n

    def set_model_patch(self, patch, name: str) -> None:
        to = self.model_options["transformer_options"]
        to.setdefault("patches", {})
        to["patches"][name] = to["patches"].get(name, []) + [patch]

    def set_model_attn1_patch(self, patch) -> None:
        self.set_model_patch(patch, "attn1_patch")

    def set_model_attn1_output_patch(self, patch) -> None:
        self.set_model_patch(patch, "attn1_output_patch")

    def set_model_attention_override(self, override) -> None:
        """What a Sage / Flash attention node does: ``override(attention_function, *args, **kwargs)``."""
        self.model_options["transformer_options"]["optimized_attention_override"] = override

    def set_model_optimized_attention(self, optimized_attention) -> None:
        """ComfyUI's own attention-backend selection: an override that ignores the attention
        function it is handed and calls ``optimized_attention``, keeping its ``container_function``
        (what ComfyUI calls instead of the override when a model hands q, k, v in containers)."""
        def optimized_attention_override(_, *args, **kwargs):
            return optimized_attention(*args, **kwargs)

        if getattr(optimized_attention, "container_function", None) is not None:
            optimized_attention_override.container_function = optimized_attention.container_function
        self.model_options["transformer_options"]["optimized_attention_override"] = optimized_attention_override

    def add_object_patch(self, name: str, obj) -> None:
        self.object_patches[name] = obj

    def get_model_object(self, name: str):
        if name in self.object_patches:
            return self.object_patches[name]
        if name in self.object_patches_backup:
            return self.object_patches_backup[name]
        return get_attr(self.model, name)

    def add_wrapper_with_key(self, wrapper_type: str, key: str, wrapper) -> None:
        self.wrappers.setdefault(wrapper_type, {}).setdefault(key, []).append(wrapper)

    def get_wrappers(self, wrapper_type: str, key: str) -> list:
        return self.wrappers.get(wrapper_type, {}).get(key, [])

    @contextmanager
    def patched(self):
        for name, obj in self.object_patches.items():
            self.object_patches_backup.setdefault(name, set_attr(self.model, name, obj))
        try:
            yield
        finally:
            for name, obj in self.object_patches_backup.items():
                set_attr(self.model, name, obj)
            self.object_patches_backup.clear()

    def sample_call(self, latent: torch.Tensor,  # [B, C, T, H, W], or a list of streams (LTX-2)
                    sigma: float, context: torch.Tensor, cond_or_uncond=(0,), **kwargs) -> torch.Tensor:
        """One model call of a sampling step, as ``calc_cond_batch`` makes it."""
        batch = (latent[0] if isinstance(latent, list) else latent).shape[0]
        to = copy_nested(self.model_options["transformer_options"])
        to["wrappers"] = copy_nested(self.wrappers)
        to["cond_or_uncond"] = list(cond_or_uncond)
        to["uuids"] = [f"uuid-{entry}" for entry in cond_or_uncond]
        to["sigmas"] = torch.full((batch,), sigma)
        to["sample_sigmas"] = torch.tensor([1.0, sigma, 0.0])
        with self.patched(), torch.no_grad():
            return self.model.diffusion_model(latent, to["sigmas"] * 1000, context, transformer_options=to, **kwargs)


class ReuseCache:
    """EasyCache's contract: a ``DIFFUSION_MODEL`` wrapper that, on a step it reuses
    (``reuse = True``), returns what it cached without calling the model (inner wrappers
    included); otherwise it runs the model and caches its output."""

    def __init__(self):
        self.cached, self.reuse = None, False

    def __call__(self, executor, *args, **kwargs):
        if self.reuse and self.cached is not None:
            return self.cached
        self.cached = executor(*args, **kwargs)
        return self.cached


def skip_layer(args: dict, extra: dict) -> dict:
    """Skip-layer guidance's block replacement: the block's input is its output."""
    return args


class FirstBlockCache:
    """The contract of first-block / TeaCache-style custom caches (block replacements through
    ``patches_replace["dit"]``): the first block always runs; on a step it reuses (``reuse =
    True``) every later block is replaced, the last one adding the residual that the later blocks
    added on the last step they ran, so their attention is not called."""

    def __init__(self, depth: int):
        self.depth, self.reuse = depth, False
        self.residual: torch.Tensor | None = None  # [B, N, dim]: what blocks 1.. added last time
        self._rest_input: torch.Tensor | None = None

    def install(self, model: "ModelPatcher") -> None:
        replace = model.model_options["transformer_options"].setdefault("patches_replace", {})
        for index in range(1, self.depth):
            replace.setdefault("dit", {})[("double_block", index)] = self._replacement(index)

    def _replacement(self, index: int):
        last = index == self.depth - 1

        def replace(args: dict, extra: dict) -> dict:
            if self.reuse and self.residual is not None:
                return {**args, "img": args["img"] + self.residual} if last else args
            if index == 1:
                self._rest_input = args["img"]
            out = extra["original_block"](args)
            if last:
                self.residual = out["img"] - self._rest_input
            return out

        return replace
