"""What every tiny random-weight video model case shares: the ``ModelCase`` record (this test
suite's own, independent description of where a model keeps its video tokens), random weights
and inputs, and running a forward."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch


def enhance_config(weight: float, **fields):
    """``EnhanceAVideoConfig`` with enhance weight ``weight`` and the other ``fields``."""
    from eav_kernels import EnhanceAVideoConfig

    return EnhanceAVideoConfig(enhance_weight=weight, **fields)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models are all per-op overhead: intra-op threads only add synchronisation (and, on a
    loaded machine, spinning). Import into a test module and mark it autouse there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class ModelCase:
    name: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[..., dict[str, Any]]  # (batch_size, generator, timestep) -> forward kwargs
    self_attention: str  # regex (fullmatch) of the self-attention modules
    text: str | None  # "first" / "last" / None: text position in each SDPA call
    num_frames: int  # latent frames after temporal patching, for the inputs above
    residual_branch: str | None = None  # sibling module whose output gets the score (Mochi)
    timestep_rises: bool = False
    conditioning_tokens: int = 0  # tokens of each targeted layer's input that are not generated video
    conditioning: str = "after"  # where they sit: "before" or "after" the generated tokens
    unbatched: tuple[str, ...] = ()  # forward inputs without a batch axis
    window: bool = True  # whether the model takes a denoising window (EDM timesteps do not)
    latent: str = "hidden_states"  # the forward input holding the latent video (batch on dim 0, or a list)
    twin: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # batch-1 inputs -> two identical samples


def randomise_(model: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """Every parameter random (several models zero-initialise gates and output projections,
    which would make an equality test blind)."""
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() >= 2:
                parameter.copy_(noise / math.sqrt(parameter[0].numel()))
            else:
                parameter.copy_(0.5 * noise)
    return model.eval()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def text_mask(batch_size: int, tokens: int, padded: int = 1, dtype=torch.bool) -> torch.Tensor:
    """``[batch_size, tokens]`` text mask whose last ``padded`` tokens of sample 0 are padding."""
    mask = torch.ones(batch_size, tokens, dtype=dtype)
    mask[0, tokens - padded:] = 0
    return mask


def to_bfloat16(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in bfloat16 as ``from_pretrained(torch_dtype=torch.bfloat16)`` loads it: the
    modules the class keeps in float32 (``_keep_in_fp32_modules``) stay float32."""
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    model = model.to(torch.bfloat16)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(module in name.split(".")[:-1] for module in keep):  # modules, not parameters
                parameter.data = parameter.data.float()
    return model


def run(model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    """The model's (first) output tensor for ``inputs``, without autograd (a list of per-sample
    outputs stacked on a batch axis)."""
    with torch.no_grad():
        out = model(**inputs)
    out = out[0] if isinstance(out, (tuple, list)) else out
    return torch.stack(out) if isinstance(out, list) else out


def twin_batch(case: ModelCase, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` of batch 1 repeated into a batch of two identical samples (per-sample lists
    repeated; the case's own ``twin`` for anything else it needs)."""
    twins = {
        name: value if name in case.unbatched
        else torch.cat([value, value]) if isinstance(value, torch.Tensor)
        else value * 2 if isinstance(value, list) and all(isinstance(item, torch.Tensor) for item in value)
        else value
        for name, value in inputs.items()
    }
    return twins if case.twin is None else case.twin(twins)


def batch_size_of(latents: torch.Tensor | list[torch.Tensor]) -> int:
    """The batch of ``latents`` ``[B, ...]``, or of a list of per-sample latents."""
    return len(latents) if isinstance(latents, list) else latents.shape[0]


def cast_inputs(inputs: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """``inputs`` with every floating tensor (also inside lists) in ``dtype``."""
    def cast(value):
        if isinstance(value, torch.Tensor):
            return value.to(dtype) if value.is_floating_point() else value
        return [cast(item) for item in value] if isinstance(value, list) else value

    return {name: cast(value) for name, value in inputs.items()}


def _times(tensor: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """tensor [B', ...] * factor (0-d or [B], B' = B * k batch-major), in float32, rounded once."""
    if factor.dim() == 1:
        factor = factor.repeat_interleave(tensor.shape[0] // factor.shape[0])
        factor = factor.reshape((-1,) + (1,) * (tensor.dim() - 1))
    return (tensor.float() * factor.float()).to(tensor.dtype)
