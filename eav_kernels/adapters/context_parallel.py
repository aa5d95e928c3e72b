"""Exact Enhance-A-Video under diffusers context parallelism (``ContextParallelConfig``).

CFI is a mean over rows ``(b, h, t, s)`` of ``(1 - A[t, t]) / (F - 1)``. Each rank computes the
per-sample *sum* over the rows it owns and their count, in float64; one ``all_reduce(SUM)`` of
``[sums..., rows]`` over the CP group gives every rank the same global mean, hence the same score.

- **Ulysses** (``ulysses_degree > 1``): the attention call (inside diffusers'
  ``TemplatedUlyssesAttention``, after the all-to-all) holds the whole sequence for ``H / W``
  heads. That sequence is the concatenation of the ``W`` ranks' local sequences, each laid out as
  the layer builds it (``[video_shard; text_shard]`` for joint models): video and text are
  interleaved per shard. The video rows are therefore, for each shard ``r``, the video slice of
  ``[r * L, (r + 1) * L)`` with ``L = N / W``; in shard order they are the global frame-major
  video sequence (diffusers splits the video tokens contiguously). The owned rows are all
  ``H / W * N_video`` rows of the local heads.
- **Ring** (``ring_degree > 1``): each call sees the local query shard (all heads) against one
  key/value shard; the ring makes ``W`` calls per attention and the first one holds the local
  key shard. On that call the video keys are all-gathered over the ring group (memory: the
  layer's full video K, once) and the local query rows' off-diagonal mass is computed against
  them (``eav_kernels.partial.off_diagonal_mass_sums``); the owned rows are the local video
  rows, i.e. global rows ``[r * N_local, (r + 1) * N_local)``. The other calls add nothing.

Unsupported (raise ``NotImplementedError``): unified attention (both degrees > 1) and the
``*_anything`` uneven-shard modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..api import cross_frame_intensity
from ..partial import off_diagonal_mass_sums


@dataclass(frozen=True)
class ContextParallelLayout:
    mode: str  # "ulysses" or "ring"
    group: Any  # the process group of that mode's mesh
    world_size: int
    rank: int  # this process's index in ``group``


def context_parallel_layout(parallel_config: Any, layer_name: str) -> ContextParallelLayout | None:
    """The layout of a processor's ``_parallel_config`` (a diffusers ``ParallelConfig``, which
    ``enable_parallelism`` sets only for context parallelism), or ``None`` without one."""
    if parallel_config is None:
        return None
    cp = getattr(parallel_config, "context_parallel_config", None)
    if cp is None or not hasattr(cp, "ring_degree"):
        raise NotImplementedError(
            f"Enhance-A-Video does not recognise the context parallelism config of {layer_name} "
            f"({type(parallel_config).__name__}); see docs/multi_gpu.md"
        )
    ring, ulysses = cp.ring_degree or 1, cp.ulysses_degree or 1
    unsupported = None
    if ring > 1 and ulysses > 1:
        unsupported = f"unified attention (ring_degree={ring} and ulysses_degree={ulysses})"
    elif getattr(cp, "ulysses_anything", False) or getattr(cp, "ring_anything", False):
        unsupported = "ulysses_anything / ring_anything (uneven shards)"
    if unsupported is not None:
        raise NotImplementedError(
            f"Enhance-A-Video does not support diffusers context parallelism with {unsupported} "
            f"({layer_name}); supported: ulysses_degree > 1 or ring_degree > 1 alone. "
            "See docs/multi_gpu.md"
        )
    if ring == 1 and ulysses == 1:
        return None
    mesh = cp._ring_mesh if ring > 1 else cp._ulysses_mesh
    group = mesh.get_group()
    return ContextParallelLayout(
        mode="ring" if ring > 1 else "ulysses", group=group,
        world_size=dist.get_world_size(group), rank=dist.get_rank(group),
    )


def shard_video_rows(spec, sequence_length: int, local_video: int, shards: int) -> list[slice]:
    """The video slices of a sequence made of ``shards`` equal per-rank sequences, each holding
    ``local_video`` video tokens placed as ``spec.text`` says."""
    if sequence_length % shards:
        raise ValueError(
            f"{spec.model}: attention sequence of {sequence_length} tokens is not {shards} equal shards"
        )
    length = sequence_length // shards
    video = spec.video_token_range(length, local_video)
    return [slice(r * length + video.start, r * length + video.stop) for r in range(shards)]


def _take_rows(tensor: torch.Tensor, rows: list[slice]) -> torch.Tensor:
    """``tensor[:, :, rows]`` for a list of slices (no copy when it is one slice)."""
    if len(rows) == 1:
        return tensor[:, :, rows[0]]
    return torch.cat([tensor[:, :, r] for r in rows], dim=2)


def global_cross_frame_intensity(
    layout: ContextParallelLayout, spec, call_index: int, query: torch.Tensor, key: torch.Tensor,
    local_video: int, num_frames: int, scale: float | None, backend: str,
) -> tuple[torch.Tensor | None, list[slice]]:
    """``(cfi [B] float32 or None, video rows of this call's output)`` for one attention call of
    a context-parallel layer. ``cfi`` is the global per-sample CFI (identical on every rank);
    ``None`` for the Ring calls after the first of an attention (they add no rows)."""
    if layout.mode == "ulysses":
        rows = shard_video_rows(spec, query.shape[2], local_video, layout.world_size)
        q, k = _take_rows(query, rows), _take_rows(key, rows)
        cfi = cross_frame_intensity(q, k, num_frames, scale=scale, per_sample=True, backend=backend)
        count = q.shape[1] * q.shape[2]  # local heads x all video tokens
        sums = cfi.to(torch.float64) * count
    else:
        rows = shard_video_rows(spec, query.shape[2], local_video, 1)
        if call_index % layout.world_size:
            return None, rows  # a later ring step: same queries, another key shard
        local_keys = key[:, :, rows[0]].contiguous()
        gathered = [torch.empty_like(local_keys) for _ in range(layout.world_size)]
        dist.all_gather(gathered, local_keys, group=layout.group)
        keys = torch.cat(gathered, dim=2)  # [B, Hk, N_video, D] frame-major, rank order
        sums = off_diagonal_mass_sums(
            query[:, :, rows[0]], keys, num_frames, layout.rank * local_video, scale=scale
        )
        count = query.shape[1] * local_video
    totals = torch.cat([sums, sums.new_full((1,), float(count))])
    dist.all_reduce(totals, op=dist.ReduceOp.SUM, group=layout.group)
    return (totals[:-1] / totals[-1]).to(torch.float32), rows
