#!/usr/bin/env python
"""CFI kernel vs the paper's materialising path on the real shapes of DESIGN.md section 2.

For each preset, in one run: median time and peak extra memory of ``eav.cross_frame_intensity``
(the fused kernel of the chosen backend) and of ``official_style_cross_frame_intensity`` (bf16
q @ k^T, float32 softmax, the F x F map materialised, as in the paper's published code), their
ratios, and both CFIs against the float64 reference. Prints a table; ``--csv`` writes it.

    .venv/bin/python benchmarks/bench_cfi.py --preset hunyuan-video --repeats 5 --csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time

import torch

import eav_kernels as eav
from eav_kernels.benchmarking import measure
from eav_kernels.presets import PRESETS, AttentionPreset
from eav_kernels.reference import cross_frame_intensity_reference, official_style_cross_frame_intensity

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MIB = 2**20


def video_query_key(preset: AttentionPreset, dtype: torch.dtype, device: str, seed: int):
    """q, k [1, H, F*S, D] as diffusers hands them to SDPA: transposed views of [1, N, H, D]."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    shape = (1, preset.video_tokens, preset.heads, preset.head_dim)
    q = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
    k = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
    return q.transpose(1, 2), k.transpose(1, 2)


def reference_cfi(q: torch.Tensor, k: torch.Tensor, num_frames: int, heads_per_step: int = 4) -> float:
    """Float64 reference, a few heads at a time (the mean over heads of equal-size groups)."""
    parts = [
        cross_frame_intensity_reference(q[:, h : h + heads_per_step], k[:, h : h + heads_per_step], num_frames)
        * min(heads_per_step, q.shape[1] - h)
        for h in range(0, q.shape[1], heads_per_step)
    ]
    return float(sum(parts) / q.shape[1])


def run_preset(preset: AttentionPreset, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    q, k = video_query_key(preset, DTYPES[args.dtype], args.device, args.seed)
    kernel = measure(
        lambda: eav.cross_frame_intensity(q, k, preset.num_frames, backend=args.backend), device, args.repeats
    )
    official = measure(lambda: official_style_cross_frame_intensity(q, k, preset.num_frames), device, args.repeats)
    truth = reference_cfi(q, k, preset.num_frames)
    cfi_kernel, cfi_official = float(kernel.result), float(official.result)
    gflop = preset.cfi_flops() / 1e9

    def mib(value):
        return None if value is None else round(value / MIB, 2)

    return {
        "preset": preset.name,
        "shape (H,F,S,D)": f"{preset.heads},{preset.num_frames},{preset.spatial},{preset.head_dim}",
        "dtype": args.dtype,
        "backend": args.backend,
        "kernel_s": round(kernel.median_seconds, 4),
        "official_s": round(official.median_seconds, 4),
        "speedup": round(official.median_seconds / kernel.median_seconds, 1),
        "kernel_gflops": round(gflop / kernel.median_seconds, 1),
        "kernel_peak_MiB": mib(kernel.peak_extra_bytes),
        "official_peak_MiB": mib(official.peak_extra_bytes),
        "cfi_reference_f64": f"{truth:.8f}",
        "err_kernel": f"{abs(cfi_kernel - truth):.2e}",
        "err_official": f"{abs(cfi_official - truth):.2e}",
    }


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[c]).rjust(w) for c, w in zip(columns, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS), help="repeatable; default: all")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", help="write the table as CSV to this file")
    args = parser.parse_args(argv)

    presets = [PRESETS[name] for name in (args.preset or PRESETS)]
    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, {args.dtype}, median of {args.repeats}, device {args.device}",
        flush=True,
    )
    rows = []
    for i, preset in enumerate(presets, 1):
        started = time.perf_counter()
        print(f"[{i}/{len(presets)}] {preset.name} ...", end=" ", file=sys.stderr, flush=True)
        rows.append(run_preset(preset, args))
        print(f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print_table(rows)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
