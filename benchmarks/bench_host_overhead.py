#!/usr/bin/env python
"""Host overhead of the Python API: what a call costs beyond the kernels it runs.

On a tiny problem (q = k = v of [1, 2, 32, 16], F = 4, CPU, 1 thread) the kernels take a few
microseconds, so the differences below are Python work: validation, backend choice, the score.
Contenders are interleaved (a block of calls of each in turn) and each figure is the median over
the blocks of the mean time per call, >= 1000 calls per contender.

    .venv/bin/python benchmarks/bench_host_overhead.py                  # fp32 and bf16
    .venv/bin/python benchmarks/bench_host_overhead.py --blocks 400 --csv build/host_overhead.csv
    .venv/bin/python benchmarks/bench_host_overhead.py --pieces     # where enhanced_sdpa's time goes

Targets: ``cross_frame_intensity`` (auto) within 5 µs of the raw op; ``enhanced_sdpa`` within
10 µs of ``F.scaled_dot_product_attention`` + the raw op.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels.benchmarking import DTYPES, format_rows, write_csv

SHAPE = (1, 2, 32, 16)  # [B, H, N, D]
NUM_FRAMES = 4
# (what is subtracted, target in µs) per contender that has a target
TARGETS = {
    "eav.cross_frame_intensity (auto)": ("raw op", 5.0),
    "eav.enhanced_sdpa (auto)": ("F.sdpa + raw op", 10.0),
}


def pieces(dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """``F.sdpa`` + the raw op with one piece of ``enhanced_sdpa``'s host work added each: what
    each piece costs is its time minus that baseline's (``--pieces``)."""
    from eav_kernels import dispatch
    from eav_kernels.backends import CROSS_FRAME_INTENSITY, backend_for
    from eav_kernels.problem import attention_problem

    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(SHAPE, generator=generator).to(dtype) for _ in range(3))
    scale = SHAPE[-1] ** -0.5
    raw = torch.ops.eav.cross_frame_intensity.default
    problem = attention_problem(q, k, v, None, 0.0, False, None, False, NUM_FRAMES, None)
    score = dispatch.whole_batch_score(raw(q, k, NUM_FRAMES, scale), NUM_FRAMES, 4.0)

    def sdpa_and_raw():
        return F.scaled_dot_product_attention(q, k, v), raw(q, k, NUM_FRAMES, scale)

    return {
        "F.sdpa + raw op": sdpa_and_raw,
        "+ problem (validation)": lambda: (
            attention_problem(q, k, v, None, 0.0, False, None, False, NUM_FRAMES, None), sdpa_and_raw()),
        "+ backend choice": lambda: (backend_for(CROSS_FRAME_INTENSITY, problem, "auto"), sdpa_and_raw()),
        "+ score on the host": lambda: (
            F.scaled_dot_product_attention(q, k, v),
            dispatch.whole_batch_score(raw(q, k, NUM_FRAMES, scale), NUM_FRAMES, 4.0)),
        "+ output scaled in place": lambda: (
            F.scaled_dot_product_attention(q, k, v).mul_(score), raw(q, k, NUM_FRAMES, scale)),
        "dispatch.enhanced_attention": lambda: dispatch.enhanced_attention(problem, 4.0, "auto"),
        "eav.enhanced_sdpa (auto)": lambda: eav.enhanced_sdpa(q, k, v, num_frames=NUM_FRAMES, enhance_weight=4.0),
    }


def contenders(dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(SHAPE, generator=generator).to(dtype) for _ in range(3))
    scale = SHAPE[-1] ** -0.5
    raw = torch.ops.eav.cross_frame_intensity
    return {
        "raw op": lambda: raw(q, k, NUM_FRAMES, scale),
        "eav.cross_frame_intensity (cpu)": lambda: eav.cross_frame_intensity(q, k, NUM_FRAMES, backend="cpu"),
        "eav.cross_frame_intensity (auto)": lambda: eav.cross_frame_intensity(q, k, NUM_FRAMES),
        "F.sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "F.sdpa + raw op": lambda: (F.scaled_dot_product_attention(q, k, v), raw(q, k, NUM_FRAMES, scale)),
        "eav.enhanced_sdpa (auto)": lambda: eav.enhanced_sdpa(q, k, v, num_frames=NUM_FRAMES, enhance_weight=4.0),
    }


def per_call_microseconds(fns: dict[str, Callable[[], object]], blocks: int, block: int) -> dict[str, float]:
    """Median over ``blocks`` rounds of the mean µs per call of a block of ``block`` calls; in each
    round every contender runs its block in turn, so a busy moment slows all of them alike."""
    for fn in fns.values():  # warm-up (first-call caches, lazy imports)
        for _ in range(block):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            start = time.perf_counter_ns()
            for _ in range(block):
                fn()
            samples[name].append((time.perf_counter_ns() - start) / block / 1e3)
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", action="append", choices=sorted(DTYPES), help="default: fp32 and bf16")
    parser.add_argument("--blocks", type=int, default=200, help="interleaved rounds (median over them)")
    parser.add_argument("--block", type=int, default=10, help="calls per contender per round")
    parser.add_argument("--csv", metavar="FILE", help="write the rows as CSV")
    parser.add_argument("--pieces", action="store_true",
                        help="instead: what each piece of enhanced_sdpa's host work adds to F.sdpa + the raw op")
    args = parser.parse_args()
    if args.blocks * args.block < 1000:
        parser.error("measure at least 1000 calls per contender (--blocks x --block)")
    torch.set_num_threads(1)
    rows = []
    for dtype_name in args.dtype or ["fp32", "bf16"]:
        calls = pieces(DTYPES[dtype_name]) if args.pieces else contenders(DTYPES[dtype_name])
        times = per_call_microseconds(calls, args.blocks, args.block)
        for name, microseconds in times.items():
            row = {"dtype": dtype_name, "call": name, "us_per_call": f"{microseconds:.1f}"}
            if args.pieces and name != "F.sdpa + raw op":
                row.update(over="F.sdpa + raw op", overhead_us=f"{microseconds - times['F.sdpa + raw op']:.1f}")
            elif name in TARGETS:
                baseline, target = TARGETS[name]
                overhead = microseconds - times[baseline]
                row.update(over=baseline, overhead_us=f"{overhead:.1f}", target_us=f"{target:.0f}",
                           reached="yes" if overhead <= target else "no")
            rows.append(row)
    print(f"# host overhead: q = k = v {list(SHAPE)}, F = {NUM_FRAMES}, 1 thread, torch {torch.__version__}, "
          f"median over {args.blocks} blocks of {args.block} calls")
    columns = ["dtype", "call", "us_per_call", "over", "overhead_us", "target_us", "reached"]
    print(format_rows(rows, columns))
    if args.csv:
        write_csv(rows, args.csv, columns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
