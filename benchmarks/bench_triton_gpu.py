"""GPU benchmark of the fused Triton temporal attention: one run, ratios, median times, CSV.

Latte's temporal blocks (the ``latte-temporal`` preset of eav_kernels.presets: B*S = 1024
sequences, H = 16, D = 72), swept over F = 16, 32, 64 by default. Four contenders, timed
interleaved (a b c d a b c d ...) on the same q, k, v (transposed views of [B*S, F, H, D]):

- ``triton fused attention + CFI``: ``temporal_attention_with_cfi`` (output and each sequence's
  cross-frame intensity in one pass);
- ``sdpa (no CFI)``: ``F.scaled_dot_product_attention`` alone, the vendor kernel;
- ``sdpa + official-style CFI``: SDPA and the paper's materialising CFI;
- ``sdpa + triton CFI``: SDPA and the Triton per-sequence CFI kernel.

The Triton CFI kernel at the other presets of eav_kernels/presets.py (against the paper's path and
the other backends) is ``eav bench --device cuda`` (eav_kernels/cli/bench.py); gpu_check.sh runs
both. Times and peak memory come from eav_kernels.benchmarking (median wall time of synchronised
calls after a warm-up, launch included; peak memory above what was allocated before).

After the table it prints each Triton kernel it compiled: warps, registers, spills and shared
memory as the device loaded them (tests/test_triton_aot.py reads the same ahead of time).

Needs a CUDA device and Triton; ``--help`` and ``--dry-run`` (prints the plan) work anywhere.

    python benchmarks/bench_triton_gpu.py --csv benchmarks/out/triton_gpu.csv
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

from eav_kernels.benchmarking import DTYPES, measure_interleaved, script_main, transposed_randn
from eav_kernels.presets import PRESETS

LATTE = PRESETS["latte-temporal"]
FUSED = "triton fused attention + CFI"
METHODS = [FUSED, "sdpa (no CFI)", "sdpa + official-style CFI", "sdpa + triton CFI"]
COLUMNS = ["shape", "dtype", "method", "repeats", "median_ms", "peak_extra_mib", "ratio_to_triton"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64],
                        help="temporal-attention sequence lengths F (default: 16 32 64)")
    parser.add_argument("--sequences", type=int, default=LATTE.spatial,
                        help=f"B*S sequences (default {LATTE.spatial})")
    parser.add_argument("--heads", type=int, default=LATTE.heads)
    parser.add_argument("--head-dim", type=int, default=LATTE.head_dim)
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=os.path.join("benchmarks", "out", "bench_triton_gpu.csv"))
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats ({args.repeats}) must be >= 1")
    if any(f < 1 for f in args.frames):
        parser.error(f"--frames must be >= 1, got {args.frames}")
    return args


def shape_text(args: argparse.Namespace, frames: int) -> str:
    return f"BS{args.sequences}-H{args.heads}-F{frames}-D{args.head_dim}"


def plan(args: argparse.Namespace) -> list[str]:
    return [f"temporal attention B*S={args.sequences} H={args.heads} F={f} D={args.head_dim}, median of "
            f"{args.repeats} interleaved: " + "; ".join(METHODS) for f in args.frames]


def unavailable_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible"
    try:
        import triton  # noqa: F401
    except ImportError as error:
        return f"Triton is not importable ({error})"
    return None


def compiled_kernels() -> list[str]:
    """One line per Triton kernel compiled in this process: what the device loaded."""
    import triton

    import eav_kernels.triton_kernels.cross_frame_intensity as cfi
    import eav_kernels.triton_kernels.temporal_attention as temporal

    lines = []
    for kernel in (cfi.cross_frame_intensity_kernel, temporal.temporal_attention_kernel):
        try:  # Triton's runtime cache: {device: (compiled kernels by key, ...)}
            compiled = [c for caches in kernel.device_caches.values() for c in caches[0].values()]
        except (AttributeError, IndexError, TypeError) as error:
            return [f"Triton {triton.__version__} does not expose its kernel cache ({error})"]
        for c in compiled:
            lines.append(f"{c.metadata.name}: {c.metadata.num_warps} warps, {c.n_regs} registers, "
                         f"{c.n_spills} spilled, {c.metadata.shared} B shared")
    return lines


def run(args: argparse.Namespace, device: torch.device = torch.device("cuda")) -> list[dict]:
    """The rows, measured on ``device`` (the tests run this on CPU in Triton's interpreter)."""
    from eav_kernels.reference import official_style_cross_frame_intensity
    from eav_kernels.triton_kernels._common import vector_loads
    from eav_kernels.triton_kernels.cross_frame_intensity import launch_config as cfi_config
    from eav_kernels.triton_kernels.cross_frame_intensity import per_batch_cross_frame_intensity
    from eav_kernels.triton_kernels.temporal_attention import launch_config as temporal_config
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    dtype = DTYPES[args.dtype]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"device: {device_name}; torch {torch.__version__}; {args.dtype}", flush=True)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    scale = args.head_dim ** -0.5
    rows = []
    for frames in args.frames:
        q, k, v = (transposed_randn((args.sequences, frames, args.heads, args.head_dim), dtype, device,
                                    generator) for _ in range(3))
        vectors = vector_loads(q, k, v)
        print(f"F={frames}: temporal tiles "
              f"{temporal_config(frames, args.sequences, args.head_dim, args.head_dim, dtype, vectors)}; "
              f"CFI tiles {cfi_config(frames, 1, args.head_dim, dtype, vectors)}", flush=True)
        contenders = {
            FUSED: lambda: temporal_attention_with_cfi(q, k, v, scale),
            "sdpa (no CFI)": lambda: F.scaled_dot_product_attention(q, k, v),
            "sdpa + official-style CFI": lambda: (F.scaled_dot_product_attention(q, k, v),
                                                  official_style_cross_frame_intensity(q, k, frames)),
            "sdpa + triton CFI": lambda: (F.scaled_dot_product_attention(q, k, v),
                                          per_batch_cross_frame_intensity(q, k, frames, scale)),
        }
        results = measure_interleaved([contenders[m] for m in METHODS], device, args.repeats)
        fused_seconds = results[0].median_seconds
        for method, result in zip(METHODS, results):
            peak = result.peak_extra_bytes
            rows.append(dict(shape=shape_text(args, frames), dtype=args.dtype, method=method,
                             repeats=args.repeats, median_ms=f"{result.median_seconds * 1e3:.4f}",
                             peak_extra_mib="" if peak is None else f"{peak / 2**20:.1f}",
                             ratio_to_triton=f"{result.median_seconds / fused_seconds:.3f}"))
        del q, k, v, contenders, results
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status = script_main("bench_triton_gpu", args, plan(args), unavailable_reason, lambda: run(args), COLUMNS)
    if status == 0 and not args.dry_run:
        print("compiled Triton kernels:\n" + "\n".join("  " + line for line in compiled_kernels()))
    return status


if __name__ == "__main__":
    sys.exit(main())
