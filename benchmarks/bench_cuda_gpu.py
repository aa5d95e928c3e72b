"""GPU benchmark of the CUDA CFI kernel (issue #4): one run, ratios, median times, CSV.

Rows (bf16 by default, batch 1, video tokens only):

1. CFI from q, k at a preset (default hunyuan-video: H=24, F=33, S=3600, D=128): the CUDA kernel
   against the paper's materialising path (``official_style_cross_frame_intensity``), with the
   achieved HBM bandwidth (one read of q and k) against the device's peak (the roofline of a
   memory-bound kernel; target >= 70%).
2. ``enhanced_sdpa`` (SDPA + CFI + scaling the video tokens) against
   ``F.scaled_dot_product_attention`` alone at the same shape (target: <= 0.5% slower).
3. Latte temporal shapes (B*S = 1024 sequences of F frames, H=16, D=72): SDPA on the temporal
   batch, and SDPA + the CUDA CFI kernel on the same q, k (the fused kernel is Triton's, #3).

Needs a CUDA device and eav_kernels._C built with CUDA kernels; ``--help`` and ``--dry-run``
(prints the plan) work anywhere. No figure is printed that was not measured in this run.

    python benchmarks/bench_cuda_gpu.py --csv benchmarks/out/cuda_gpu.csv
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

# DESIGN.md section 2: name -> (frames F, spatial tokens S, heads H, head dim D).
PRESETS = {
    "cogvideox-2b": (13, 1350, 30, 64),
    "cogvideox-5b": (13, 1350, 48, 64),
    "hunyuan-video": (33, 3600, 24, 128),
    "wan2.1-1.3b": (21, 1560, 12, 128),
    "wan2.1-14b": (21, 1560, 40, 128),
    "ltx-video": (16, 384, 32, 64),
    "mochi": (28, 1590, 24, 128),
}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

# Peak HBM bandwidth (GB/s, vendor data sheets) by device-name substring, most specific first.
PEAK_BANDWIDTH_GBPS = [
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),  # SXM5 80 GB
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),  # 40 GB
    ("L40S", 864.0),
    ("L4", 300.0),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS),
                        help="CFI presets (repeatable; default: hunyuan-video)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of the CFI rows")
    parser.add_argument("--sdpa-repeats", type=int, default=5,
                        help="timed repeats of the full-attention rows (each ~0.3 s at hunyuan)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--latte-frames", type=int, nargs="*", default=[16, 32],
                        help="Latte temporal F values (empty: skip)")
    parser.add_argument("--skip-sdpa", action="store_true", help="skip the enhanced_sdpa rows")
    parser.add_argument("--skip-official", action="store_true",
                        help="skip the official-style baseline (it materialises the F x F maps)")
    parser.add_argument("--peak-bandwidth", type=float, default=None,
                        help="HBM peak in GB/s (default: from the device name)")
    parser.add_argument("--csv", default=None, help="write the rows here")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    return parser.parse_args(argv)


def cuda_time_ms(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """(median ms over `repeats` CUDA-event-timed calls, peak memory MiB above the start)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return statistics.median(times), peak


def peak_bandwidth_gbps(name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    for key, value in PEAK_BANDWIDTH_GBPS:
        if key in name:
            return value
    return None


def plan(args: argparse.Namespace) -> list[str]:
    presets = args.preset or ["hunyuan-video"]
    rows = []
    for name in presets:
        frames, spatial, heads, head_dim = PRESETS[name]
        shape = f"B=1 H={heads} F={frames} S={spatial} D={head_dim} {args.dtype}"
        rows.append(f"cfi cuda kernel            {name}: {shape}")
        if not args.skip_official:
            rows.append(f"cfi official-style         {name}: {shape}")
        if not args.skip_sdpa:
            rows.append(f"F.scaled_dot_product_attn  {name}: {shape}")
            rows.append(f"eav.enhanced_sdpa (cuda)   {name}: {shape}")
    for frames in args.latte_frames:
        rows.append(f"latte temporal SDPA        B*S=1024 H=16 F={frames} D=72 {args.dtype}")
        rows.append(f"latte temporal SDPA + CFI  B*S=1024 H=16 F={frames} D=72 {args.dtype}")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        print("plan (nothing timed):")
        for row in plan(args):
            print("  " + row)
        return 0
    if not torch.cuda.is_available():
        print("bench_cuda_gpu: no CUDA device visible; nothing measured", file=sys.stderr)
        return 2
    import eav_kernels as eav
    from eav_kernels._extension import compiled_extension

    extension = compiled_extension()
    if extension is None or not extension.cuda_archs():
        print("bench_cuda_gpu: eav_kernels._C has no CUDA kernels; nothing measured", file=sys.stderr)
        return 2

    dtype = DTYPES[args.dtype]
    device_name = torch.cuda.get_device_name()
    peak = peak_bandwidth_gbps(device_name, args.peak_bandwidth)
    print(f"device: {device_name}; torch {torch.__version__}; eav archs {extension.cuda_archs()};"
          f" HBM peak {peak or 'unknown'} GB/s")
    rows: list[dict[str, object]] = []

    def add(name: str, shape: str, ms: float, peak_mib: float, baseline_ms: float | None = None,
            bytes_read: int | None = None) -> None:
        row: dict[str, object] = {"name": name, "shape": shape, "dtype": args.dtype,
                                  "median_ms": round(ms, 4), "peak_mib": round(peak_mib, 1)}
        if bytes_read is not None:
            gbps = bytes_read / (ms * 1e-3) / 1e9
            row["gb_per_s"] = round(gbps, 1)
            row["pct_of_hbm_peak"] = round(100 * gbps / peak, 1) if peak else ""
        if baseline_ms is not None:
            row["vs_baseline"] = round(ms / baseline_ms, 4)
        rows.append(row)
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    generator = torch.Generator(device="cuda").manual_seed(0)
    for preset in args.preset or ["hunyuan-video"]:
        frames, spatial, heads, head_dim = PRESETS[preset]
        tokens = frames * spatial
        shape = f"{preset} B=1 H={heads} F={frames} S={spatial} D={head_dim}"
        # [B, N, H, D] storage viewed as [B, H, N, D], as diffusers hands q, k to SDPA.
        q, k, v = (torch.randn(1, tokens, heads, head_dim, device="cuda", dtype=dtype,
                               generator=generator).transpose(1, 2) for _ in range(3))
        scale = head_dim ** -0.5
        bytes_read = (q.numel() + k.numel()) * q.element_size()
        ms_cfi, mem = cuda_time_ms(
            lambda: torch.ops.eav.cross_frame_intensity(q, k, frames, scale), args.repeats,
            args.warmup)
        add("cfi_cuda", shape, ms_cfi, mem, bytes_read=bytes_read)
        if not args.skip_official:
            ms_official, mem = cuda_time_ms(
                lambda: eav.official_style_cross_frame_intensity(q, k, frames), max(3, args.repeats // 4),
                1)
            add("cfi_official_style", shape, ms_official, mem, bytes_read=bytes_read)
            rows[-1]["vs_cfi_cuda"] = round(ms_official / ms_cfi, 2)
        if not args.skip_sdpa:
            ms_sdpa, mem = cuda_time_ms(lambda: F.scaled_dot_product_attention(q, k, v),
                                        args.sdpa_repeats, 1)
            add("sdpa", shape, ms_sdpa, mem)
            ms_enhanced, mem = cuda_time_ms(
                lambda: eav.enhanced_sdpa(q, k, v, num_frames=frames, enhance_weight=1.0,
                                          backend="cuda"), args.sdpa_repeats, 1)
            add("enhanced_sdpa_cuda", shape, ms_enhanced, mem, baseline_ms=ms_sdpa)
        del q, k, v
        torch.cuda.empty_cache()

    for frames in args.latte_frames:
        sequences, heads, head_dim = 1024, 16, 72
        shape = f"latte temporal B*S={sequences} H={heads} F={frames} D={head_dim}"
        # One storage [F*S, H, D] (frame-major video tokens, as the spatial blocks leave them),
        # two views without copies: the temporal batch [S, H, F, D] for SDPA and the video
        # [1, H, F*S, D] for the CFI kernel (token t*S + s).
        storages = [torch.randn(frames * sequences, heads, head_dim, device="cuda", dtype=dtype,
                                generator=generator) for _ in range(3)]
        q, k, v = (x.view(frames, sequences, heads, head_dim).permute(1, 2, 0, 3) for x in storages)
        q_video, k_video = (x.unsqueeze(0).transpose(1, 2) for x in storages[:2])
        scale = head_dim ** -0.5
        ms_sdpa, mem = cuda_time_ms(lambda: F.scaled_dot_product_attention(q, k, v),
                                    args.repeats, args.warmup)
        add("latte_sdpa", shape, ms_sdpa, mem)

        def sdpa_and_cfi() -> None:
            F.scaled_dot_product_attention(q, k, v)
            torch.ops.eav.cross_frame_intensity(q_video, k_video, frames, scale)

        ms_both, mem = cuda_time_ms(sdpa_and_cfi, args.repeats, args.warmup)
        add("latte_sdpa_plus_cfi_cuda", shape, ms_both, mem, baseline_ms=ms_sdpa)
        del q, k, v, q_video, k_video, storages

    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        fields = sorted({key for row in rows for key in row}, key=lambda f: (
            ["name", "shape", "dtype", "median_ms"].index(f) if f in ("name", "shape", "dtype",
                                                                         "median_ms") else 9, f))
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
