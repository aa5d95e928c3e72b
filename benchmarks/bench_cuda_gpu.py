"""GPU benchmark of the CUDA CFI kernel: its HBM roofline, and enhanced_sdpa's overhead.

Rows (bf16 by default, batch 1, the video tokens of each preset in eav_kernels.presets, q, k, v
as transposed views of [1, N, H, D] tensors, as diffusers hands them to SDPA):

1. ``cfi_cuda``: ``torch.ops.eav.cross_frame_intensity`` at each preset (default hunyuan-video:
   H=24, F=33, S=3600, D=128), with the bandwidth it achieves on one read of q and k against the
   device's peak HBM bandwidth (the roofline of a memory-bound kernel; target >= 70%). The peak
   is a data-sheet figure looked up by device name (``--peak-bandwidth`` to give it).
2. ``sdpa`` and ``enhanced_sdpa_cuda``: ``F.scaled_dot_product_attention`` alone against
   ``eav.enhanced_sdpa(..., backend="cuda")`` (SDPA + CFI + scaling) at the same shape, timed
   interleaved (target: <= 0.5% slower).

Not here, because ``eav bench --device cuda`` (eav_kernels/cli/bench.py) already measures it: the
CUDA kernel against the paper's materialising path and the other backends, with errors against
the float64 reference. ``benchmarks/gpu_check.sh`` runs both. Times and peak memory come from
eav_kernels.benchmarking (median wall time of synchronised calls after a warm-up, so each time
includes the launch; peak memory above what was allocated before).

Needs a CUDA device and eav_kernels._C built with CUDA kernels; ``--help`` and ``--dry-run``
(prints the plan) work anywhere. No figure is printed that was not measured in this run.

    python benchmarks/bench_cuda_gpu.py --csv benchmarks/out/cuda_gpu.csv
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from eav_kernels.benchmarking import DTYPES, measure, measure_interleaved, script_main, transposed_randn
from eav_kernels.presets import PRESETS

DEFAULT_PRESETS = ["hunyuan-video"]
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
COLUMNS = ["name", "preset", "shape", "dtype", "repeats", "median_ms", "peak_mib", "gb_per_s",
           "pct_of_hbm_peak", "vs_sdpa"]
# Presets whose attention is a batch of S sequences of F frames (the Triton script's sweep).
TEMPORAL = {name for name in PRESETS if name.endswith("temporal")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", choices=sorted(set(PRESETS) - TEMPORAL),
                        help=f"presets (repeatable; default: {', '.join(DEFAULT_PRESETS)})")
    parser.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of the CFI rows")
    parser.add_argument("--sdpa-repeats", type=int, default=5,
                        help="timed repeats of the attention rows (each ~0.3 s at hunyuan)")
    parser.add_argument("--skip-sdpa", action="store_true", help="skip the enhanced_sdpa rows")
    parser.add_argument("--peak-bandwidth", type=float, default=None,
                        help="HBM peak in GB/s (default: from the device name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="write the rows here")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = parser.parse_args(argv)
    args.preset = args.preset or list(DEFAULT_PRESETS)
    if args.repeats < 1 or args.sdpa_repeats < 1:
        parser.error(f"--repeats ({args.repeats}) and --sdpa-repeats ({args.sdpa_repeats}) must be >= 1")
    return args


def peak_bandwidth_gbps(name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    for key, value in PEAK_BANDWIDTH_GBPS:
        if key in name:
            return value
    return None


def shape_text(name: str) -> str:
    p = PRESETS[name]
    return f"B=1 H={p.heads} F={p.num_frames} S={p.spatial} D={p.head_dim}"


def plan(args: argparse.Namespace) -> list[str]:
    rows = []
    for name in args.preset:
        shape = f"{name}: {shape_text(name)} {args.dtype}"
        rows.append(f"cfi cuda kernel + HBM roofline  {shape}, median of {args.repeats}")
        if not args.skip_sdpa:
            rows.append(f"F.sdpa vs eav.enhanced_sdpa     {shape}, median of {args.sdpa_repeats} interleaved")
    return rows


def unavailable_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible"
    from eav_kernels._extension import compiled_extension

    extension = compiled_extension()
    if extension is None or not extension.cuda_archs():
        return "eav_kernels._C has no CUDA kernels"
    return None


def run(args: argparse.Namespace, device: torch.device = torch.device("cuda")) -> list[dict]:
    """The rows, measured on ``device`` with the extension's kernel for it (the tests run this
    on CPU, with the CPU kernel, on a tiny preset)."""
    import eav_kernels as eav
    from eav_kernels._extension import compiled_extension

    dtype = DTYPES[args.dtype]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    peak = peak_bandwidth_gbps(device_name, args.peak_bandwidth)
    print(f"device: {device_name}; torch {torch.__version__}; eav archs "
          f"{compiled_extension().cuda_archs()}; HBM peak {peak or 'unknown'} GB/s"
          + (" (data sheet)" if peak and args.peak_bandwidth is None else ""), flush=True)
    backend = device.type  # the extension's kernel for this device: "cuda" on a GPU
    generator = torch.Generator(device=device).manual_seed(args.seed)
    rows: list[dict] = []

    def add(name: str, preset: str, repeats: int, result, **extra) -> float:
        ms = result.median_seconds * 1e3
        peak_bytes = result.peak_extra_bytes
        rows.append(dict(name=name, preset=preset, shape=shape_text(preset), dtype=args.dtype,
                         repeats=repeats, median_ms=round(ms, 4),
                         peak_mib="" if peak_bytes is None else round(peak_bytes / 2**20, 1), **extra))
        print("  " + ", ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
        return ms

    for name in args.preset:
        p = PRESETS[name]
        q, k, v = (transposed_randn((1, p.video_tokens, p.heads, p.head_dim), dtype, device, generator)
                   for _ in range(3))
        scale = p.head_dim ** -0.5
        bytes_read = (q.numel() + k.numel()) * q.element_size()
        result = measure(lambda: torch.ops.eav.cross_frame_intensity(q, k, p.num_frames, scale),
                         device, args.repeats)
        gbps = bytes_read / result.median_seconds / 1e9
        add(f"cfi_{backend}", name, args.repeats, result, gb_per_s=round(gbps, 1),
            pct_of_hbm_peak=round(100 * gbps / peak, 1) if peak else "")
        if not args.skip_sdpa:
            sdpa, enhanced = measure_interleaved([
                lambda: F.scaled_dot_product_attention(q, k, v),
                lambda: eav.enhanced_sdpa(q, k, v, num_frames=p.num_frames, enhance_weight=1.0,
                                          backend=backend),
            ], device, args.sdpa_repeats)
            add("sdpa", name, args.sdpa_repeats, sdpa)
            add(f"enhanced_sdpa_{backend}", name, args.sdpa_repeats, enhanced,
                vs_sdpa=round(enhanced.median_seconds / sdpa.median_seconds, 4))
        del q, k, v
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return script_main("bench_cuda_gpu", args, plan(args), unavailable_reason, lambda: run(args), COLUMNS)


if __name__ == "__main__":
    sys.exit(main())
