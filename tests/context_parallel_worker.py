"""One rank of tests/test_context_parallel.py: tiny Wan / HunyuanVideo / LTX-Video under diffusers
context parallelism (gloo, CPU): without Enhance-A-Video, with it applied after or before
``enable_parallelism``, and with it applied and removed again.

Usage: python context_parallel_worker.py RANK WORLD_SIZE PORT OUT_FILE

The CPU-only workarounds for diffusers live here, never in the library:
- ``enable_parallelism`` computes ``rank % torch.accelerator.device_count()``, which is 0 on a
  machine without an accelerator: the count is patched to the world size around that call only.
- diffusers' native backend cannot return the log-sum-exp Ring attention needs: the Ring runs
  use a forward op that calls ``aten._scaled_dot_product_flash_attention_for_cpu`` (output and
  LSE), what diffusers' ``_native_flash`` backend does on GPU.
- HunyuanVideo has no ``_cp_plan`` in diffusers 0.42.1: ``HUNYUAN_CP_PLAN`` below splits the video
  and text tokens (and the mask, and the RoPE tables) at the blocks and gathers at ``proj_out``.
  Its text is unpadded: diffusers builds the mask as ``[all video; all text]``, which does not
  follow the sharded layout; an all-true mask is the same in any layout.
- LTX-Video's plan splits the text at the transformer's input: its text has 6 tokens (even), and
  no mask: its processor expands the mask to all heads (``[B, H, 1, N_text]``), which diffusers'
  Ulysses attention, holding ``H / 2`` heads, fails to broadcast (``RuntimeError: output with
  shape [1, 1, 48, 6] doesn't match the broadcast shape [1, 2, 48, 6]``, diffusers 0.42.1).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODES = ("ulysses", "ring")
# LTX-Video's diffusers plan splits the transformer's own inputs (hidden_states, the text and its
# mask) at the model's forward; "ltx_video_coords" is LTXConditionPipeline's call without a
# condition: the grid given as video_coords (unsplit) instead of num_frames.
MODELS = ("wan", "hunyuan_video", "ltx_video", "ltx_video_coords")
PLACEMENTS = ("to_out", "attention_output")
ORDERS = ("after", "before")  # Enhance-A-Video applied after / before enable_parallelism
WEIGHT = 4.0
DTYPE = torch.float32
# Wan 2.2 TI2V: a per-token timestep [B, seq_len], 0 on the conditioning image's latent frame 0;
# with 2 latent frames of 4 x 4 tokens, diffusers' split of it leaves rank 0 only zeros. The
# window [0, 0.5) holds the first step (progress 0.1), not the second (0.8).
WINDOW = dict(start=0.0, end=0.5)
WINDOW_TIMESTEPS = (900.0, 200.0)
# FasterCache on a CFG batch of 2; it hands the model only the conditional half on step 2
FASTER_CACHE_STEPS = 3


def hunyuan_cp_plan():
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    split = lambda dims, dim=1, output=False: ContextParallelInput(  # noqa: E731
        split_dim=dim, expected_dims=dims, split_output=output
    )
    return {
        "rope": {0: split(2, dim=0, output=True), 1: split(2, dim=0, output=True)},
        "transformer_blocks.0": {"hidden_states": split(3), "encoder_hidden_states": split(3)},
        "transformer_blocks.*": {"attention_mask": split(4, dim=3)},
        "single_transformer_blocks.*": {"attention_mask": split(4, dim=3)},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }


def model_inputs(name: str, dtype: torch.dtype = DTYPE):
    """(build, forward kwargs) of the tiny model in ``dtype``, identical on every rank and in the
    parent."""
    from adapters_tiny_models import CASES

    case = CASES["ltx_video" if name == "ltx_video_coords" else name]
    inputs = case.inputs(1, torch.Generator().manual_seed(7))
    if name != "wan":  # 6 text tokens (even: split over 2 ranks), none padded
        generator = torch.Generator().manual_seed(8)
        inputs["encoder_hidden_states"] = torch.randn(1, 6, 16, generator=generator)
        inputs["encoder_attention_mask"] = torch.ones(1, 6, dtype=torch.bool) if name == "hunyuan_video" else None
    if name == "ltx_video_coords":
        inputs["video_coords"] = ltx_video_coords(inputs.pop("num_frames"), inputs.pop("height"), inputs.pop("width"))
    inputs = {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
              for k, v in inputs.items()}
    return (lambda: case.build().to(dtype)), inputs


def per_token_timestep_inputs(timestep: float) -> dict:
    """Tiny Wan's forward as Wan 2.2 TI2V calls it: 2 latent frames (hidden_states
    ``[1, 4, 2, 8, 8]``: 16 tokens a frame) and ``timestep [1, 32]``, 0 on frame 0's tokens."""
    _, inputs = model_inputs("wan")
    inputs["hidden_states"] = torch.randn(1, 4, 2, 8, 8, generator=torch.Generator().manual_seed(9))
    inputs["timestep"] = torch.cat([torch.zeros(1, 16), torch.full((1, 16), timestep)], dim=1)
    return inputs


def ltx_video_coords(frames: int, height: int, width: int) -> torch.Tensor:
    """``video_coords [1, 3, F*H*W]`` as LTXConditionPipeline builds them for a grid without
    conditions: each token's (t in seconds at 25 fps, h, w in pixels), frame-major."""
    times = torch.clamp(8.0 * torch.arange(frames) + 1 - 8, min=0) / 25
    grid = torch.meshgrid(times, 32.0 * torch.arange(height), 32.0 * torch.arange(width), indexing="ij")
    return torch.stack(grid).flatten(1)[None]


def _ring_forward_op(ctx, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                     scale=None, enable_gqa=False, return_lse=False, _save_ctx=True,
                     _parallel_config=None):
    """diffusers' native forward op, plus the LSE (``[B, N, H]``) Ring attention merges with."""
    query, key, value = (x.permute(0, 2, 1, 3) for x in (query, key, value))  # [B, H, N, D]
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros(attn_mask.shape, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale
    )
    out = out.permute(0, 2, 1, 3)
    return (out, lse.permute(0, 2, 1)) if return_lse else out


def parallel_model(name: str, mode: str, config, order: str = "after", dtype: torch.dtype = DTYPE,
                   other_hook=None, other_hook_first: bool = False):
    """The tiny ``name`` model with ``{mode}_degree`` = world size and Enhance-A-Video ``config``
    (``None``: without it) applied ``"after"`` or ``"before"`` ``enable_parallelism``;
    ``other_hook(model)`` (another diffusers hook) applied first or right after
    ``enable_parallelism``."""
    from diffusers import ContextParallelConfig

    import eav_kernels as eav

    build, _ = model_inputs(name, dtype)
    model = build()
    if other_hook is not None and other_hook_first:
        other_hook(model)
    if config is not None and order == "before":
        eav.apply_enhance_a_video(model, config)
    world = dist.get_world_size()
    device_count = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: world
    try:
        model.enable_parallelism(
            config=ContextParallelConfig(**{f"{mode}_degree": world}),
            cp_plan=hunyuan_cp_plan() if name == "hunyuan_video" else None,
        )
    finally:
        torch.accelerator.device_count = device_count
    if other_hook is not None and not other_hook_first:
        other_hook(model)
    if config is not None and order == "after":
        eav.apply_enhance_a_video(model, config)
    return model


def forward(model: torch.nn.Module, mode: str, inputs: dict) -> torch.Tensor:
    """``model(**inputs)[0]`` without grad; Ring runs with the LSE-returning forward op."""
    from diffusers.models import attention_dispatch

    original_op = attention_dispatch._native_attention_forward_op
    if mode == "ring":
        attention_dispatch._native_attention_forward_op = _ring_forward_op
    try:
        with torch.no_grad():
            return model(**inputs)[0]
    finally:
        attention_dispatch._native_attention_forward_op = original_op


def layer_scores(model: torch.nn.Module) -> dict:
    """``{layer: score}`` (copies) of the latest forward's enhanced layers (``None``: the layer
    was not enhanced, e.g. outside the denoising window)."""
    from eav_kernels.adapters.hooks import ATTENTION_HOOK

    scores = {}
    for module_name, module in model.named_modules():
        registry = getattr(module, "_diffusers_hook", None)
        hook = registry.get_hook(ATTENTION_HOOK) if registry is not None else None
        if hook is not None:
            score = hook.last_score
            scores[module_name] = None if score is None else score.clone()
    return scores


def run_case(name: str, mode: str, placement: str | None, order: str = "after", remove: bool = False,
             dtype: torch.dtype = DTYPE):
    """One forward on this rank and its scores ``{layer: score}``; ``placement=None``: without
    the adapter. ``order``: Enhance-A-Video applied ``"after"`` or ``"before"``
    ``enable_parallelism``; ``remove``: removed again (after both) before the forward."""
    import eav_kernels as eav

    config = None if placement is None else eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, placement=placement)
    model = parallel_model(name, mode, config, order, dtype)
    if remove:
        eav.remove_enhance_a_video(model)
    output = forward(model, mode, model_inputs(name, dtype)[1])
    return output, layer_scores(model)


def run_window_case(mode: str, order: str) -> dict:
    """Tiny Wan under ``mode`` with a per-token timestep and the window ``WINDOW``, enhanced
    ``order`` ``enable_parallelism``: ``{"plain": [out per step], "enhanced": [(out, scores,
    active) per step]}`` over ``WINDOW_TIMESTEPS``."""
    import eav_kernels as eav
    from eav_kernels.adapters.hooks import TRANSFORMER_HOOK

    steps = [per_token_timestep_inputs(t) for t in WINDOW_TIMESTEPS]
    plain = parallel_model("wan", mode, None)
    model = parallel_model("wan", mode, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, **WINDOW), order)
    context = model._diffusers_hook.get_hook(TRANSFORMER_HOOK).context
    enhanced = []
    for inputs in steps:
        output = forward(model, mode, inputs)
        enhanced.append((output, layer_scores(model), context.active))
    return {"plain": [forward(plain, mode, inputs) for inputs in steps], "enhanced": enhanced}


def apply_faster_cache(model: torch.nn.Module, clock: list[float]) -> None:
    """FasterCache on tiny Wan: its attention hooks reuse every second step, its denoiser hook
    skips the unconditional half of the batch every third (timesteps read off ``clock[0]``)."""
    from diffusers import FasterCacheConfig

    model.enable_cache(FasterCacheConfig(
        spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 1000),
        unconditional_batch_skip_range=3, unconditional_batch_timestep_skip_range=(-1, 1000),
        current_timestep_callback=lambda: clock[0], attention_weight_callback=lambda _: 0.5,
    ))


def faster_cache_steps(model: torch.nn.Module, clock: list[float], mode: str | None) -> list[torch.Tensor]:
    """The outputs of ``FASTER_CACHE_STEPS`` denoising steps of a CFG batch of 2 (``mode``:
    the CP mode, ``None`` in one process)."""
    from adapters_tiny_models import CASES
    from hook_stacks import denoise, run, step_inputs

    steps = step_inputs(CASES["wan"], batch_size=2, steps=FASTER_CACHE_STEPS)
    return denoise(model, steps, clock, run if mode is None else lambda model, inputs: forward(model, mode, inputs))


def run_faster_cache_case(mode: str, faster_cache_first: bool, order: str) -> list[torch.Tensor] | str:
    """Tiny Wan with FasterCache applied before (``faster_cache_first``) or after
    ``enable_parallelism`` and Enhance-A-Video (``per_sample=True``) ``order`` it: the outputs of
    ``faster_cache_steps``, or the error raised."""
    import eav_kernels as eav

    clock = [0.0]
    config = eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, per_sample=True)
    model = parallel_model("wan", mode, config, order, other_hook=lambda model: apply_faster_cache(model, clock),
                           other_hook_first=faster_cache_first)
    try:
        return faster_cache_steps(model, clock, mode)
    except ValueError as error:
        return str(error)


def run_all() -> dict:
    """``{(model, mode): {"plain": out, "removed": {order: out}, "enhanced": {(placement, order):
    (out, scores)}}, ("window", mode, order): run_window_case(mode, order), ("faster_cache", mode,
    faster_cache_first, order): run_faster_cache_case(...)}``; a case that raises is recorded as its message (the parent shows it)."""
    results = {}
    for name in MODELS:
        for mode in MODES:
            plain, _ = run_case(name, mode, None)
            result = results[(name, mode)] = {"plain": plain, "removed": {}, "enhanced": {}}
            for order in ORDERS:
                result["removed"][order] = run_case(name, mode, "to_out", order, remove=True)[0]
                for placement in PLACEMENTS:
                    try:
                        result["enhanced"][(placement, order)] = run_case(name, mode, placement, order)
                    except Exception as error:  # noqa: BLE001  the parent fails the case with it
                        result["enhanced"][(placement, order)] = f"{type(error).__name__}: {error}"
    for mode in MODES:
        for order in ORDERS:
            try:
                results[("window", mode, order)] = run_window_case(mode, order)
            except Exception as error:  # noqa: BLE001  the parent fails the case with it
                results[("window", mode, order)] = f"{type(error).__name__}: {error}"
            for faster_cache_first in (False, True):
                results[("faster_cache", mode, faster_cache_first, order)] = run_faster_cache_case(
                    mode, faster_cache_first, order)
    return results


def main() -> None:
    rank, world, port, out_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        torch.save(run_all(), out_file)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
