"""GPU benchmark of the Triton kernels (issue #3): one run, ratios, median times, peak memory, CSV.

Two tables:

1. temporal attention (Latte's temporal blocks: B*S = 1024 sequences, H = 16, D = 72,
   F = 16, 32, 64 by default): the fused Triton ``temporal_attention_with_cfi`` against
   ``F.scaled_dot_product_attention`` alone (the vendor kernel, *without* CFI), SDPA + the
   paper's materialising CFI (``official_style_cross_frame_intensity``), and SDPA + the Triton CFI
   kernel.
2. CFI from q, k at the presets of DESIGN.md section 2: the Triton kernel against the
   official-style path.

Needs a CUDA device; ``--help`` and ``--dry-run`` (prints the plan) work anywhere.

    python benchmarks/bench_triton_gpu.py --csv benchmarks/out/triton_gpu.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from typing import Callable

import torch
import torch.nn.functional as F

# DESIGN.md section 2: name -> (frames F, spatial tokens S, heads H, head dim D). Batch 1, video
# tokens only (CFI reads the video range; text tokens do not enter it).
CFI_PRESETS = {
    "cogvideox-2b": (13, 1350, 30, 64),
    "cogvideox-5b": (13, 1350, 48, 64),
    "hunyuan-video": (33, 3600, 24, 128),
    "wan2.1-1.3b": (21, 1560, 12, 128),
    "wan2.1-14b": (21, 1560, 40, 128),
    "ltx-video": (16, 384, 32, 64),
    "mochi": (28, 1590, 24, 128),
    "latte-temporal": (16, 1024, 16, 72),
}

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64],
                        help="temporal-attention sequence lengths F (default: 16 32 64)")
    parser.add_argument("--sequences", type=int, default=1024, help="B*S sequences (default 1024)")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=72)
    parser.add_argument("--preset", action="append", choices=sorted(CFI_PRESETS),
                        help="CFI presets to time (repeatable; default: all)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-temporal", action="store_true")
    parser.add_argument("--skip-cfi", action="store_true")
    parser.add_argument("--csv", default=os.path.join("benchmarks", "out", "bench_triton_gpu.csv"))
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = parser.parse_args(argv)
    args.preset = args.preset or list(CFI_PRESETS)
    if args.repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats ({args.repeats}) must be >= 1 and --warmup ({args.warmup}) >= 0")
    if any(f < 1 for f in args.frames):
        parser.error(f"--frames must be >= 1, got {args.frames}")
    return args


def measure(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, int]:
    """(median milliseconds over ``repeats`` CUDA-event-timed calls, peak extra bytes of one call)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - baseline
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), peak


def temporal_rows(args: argparse.Namespace) -> list[dict]:
    from eav_kernels.reference import official_style_cross_frame_intensity
    from eav_kernels.triton_kernels.cross_frame_intensity import per_batch_cross_frame_intensity
    from eav_kernels.triton_kernels.temporal_attention import temporal_attention_with_cfi

    dtype = DTYPES[args.dtype]
    rows = []
    for frames in args.frames:
        # [B*S, F, H, D] storage as the model holds it, handed over as [B*S, H, F, D] views
        q, k, v = (torch.randn(args.sequences, frames, args.heads, args.head_dim, device="cuda",
                               dtype=dtype).transpose(1, 2) for _ in range(3))
        scale = args.head_dim ** -0.5
        candidates = {
            "sdpa (no CFI)": lambda: F.scaled_dot_product_attention(q, k, v),
            "sdpa + official-style CFI": lambda: (F.scaled_dot_product_attention(q, k, v),
                                                  official_style_cross_frame_intensity(q, k, frames)),
            "sdpa + triton CFI": lambda: (F.scaled_dot_product_attention(q, k, v),
                                          per_batch_cross_frame_intensity(q, k, frames, scale)),
            "triton fused attention + CFI": lambda: temporal_attention_with_cfi(q, k, v, scale),
        }
        results = {name: measure(fn, args.repeats, args.warmup) for name, fn in candidates.items()}
        fused_ms = results["triton fused attention + CFI"][0]
        for name, (ms, peak) in results.items():
            rows.append(dict(table="temporal", shape=f"BS{args.sequences}-H{args.heads}-F{frames}-D{args.head_dim}",
                             dtype=args.dtype, method=name, median_ms=f"{ms:.4f}",
                             peak_extra_mib=f"{peak / 2**20:.1f}",
                             ratio_to_triton=f"{ms / fused_ms:.3f}"))
        del q, k, v
    return rows


def cfi_rows(args: argparse.Namespace) -> list[dict]:
    from eav_kernels.reference import official_style_cross_frame_intensity
    from eav_kernels.triton_kernels.cross_frame_intensity import per_batch_cross_frame_intensity

    dtype = DTYPES[args.dtype]
    rows = []
    for preset in args.preset:
        frames, spatial, heads, head_dim = CFI_PRESETS[preset]
        # diffusers hands SDPA transposed views of [B, N, H, D]
        q, k = (torch.randn(1, frames * spatial, heads, head_dim, device="cuda", dtype=dtype)
                .transpose(1, 2) for _ in range(2))
        scale = head_dim ** -0.5
        candidates = {
            "official-style CFI": lambda: official_style_cross_frame_intensity(q, k, frames),
            "triton CFI": lambda: per_batch_cross_frame_intensity(q, k, frames, scale),
        }
        results = {name: measure(fn, args.repeats, args.warmup) for name, fn in candidates.items()}
        triton_ms = results["triton CFI"][0]
        for name, (ms, peak) in results.items():
            rows.append(dict(table="cfi", shape=preset, dtype=args.dtype, method=name,
                             median_ms=f"{ms:.4f}", peak_extra_mib=f"{peak / 2**20:.1f}",
                             ratio_to_triton=f"{ms / triton_ms:.3f}"))
        del q, k
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = []
    if not args.skip_temporal:
        plan += [f"temporal attention B*S={args.sequences} H={args.heads} F={f} D={args.head_dim}"
                 for f in args.frames]
    if not args.skip_cfi:
        plan += [f"CFI preset {p} (F, S, H, D = {CFI_PRESETS[p]})" for p in args.preset]
    if args.dry_run:
        print(f"{args.dtype}, median of {args.repeats} repeats after {args.warmup} warm-up calls:")
        print("\n".join("  " + line for line in plan))
        print(f"CSV -> {args.csv}")
        return 0
    if not torch.cuda.is_available():
        print("bench_triton_gpu.py needs a CUDA device (none available); --dry-run shows the plan",
              file=sys.stderr)
        return 2
    rows = []
    if not args.skip_temporal:
        rows += temporal_rows(args)
    if not args.skip_cfi:
        rows += cfi_rows(args)
    print(f"device: {torch.cuda.get_device_name()}, dtype {args.dtype}, median of {args.repeats}")
    header = ("table", "shape", "method", "median_ms", "peak_extra_mib", "ratio_to_triton")
    print("  ".join(f"{h:>30}" if h == "method" else f"{h:>16}" for h in header))
    for row in rows:
        print("  ".join(f"{row[h]:>30}" if h == "method" else f"{row[h]:>16}" for h in header))
    os.makedirs(os.path.dirname(args.csv) or ".", exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
