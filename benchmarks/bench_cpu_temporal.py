#!/usr/bin/env python
"""Latte temporal attention on CPU: the fused op ``eav::temporal_attention_with_cfi`` (the CPU twin
of the CUDA kernel) against SDPA followed by the CPU CFI kernel, which is what ``enhanced_sdpa``
does on CPU. One run, contenders interleaved, median of the repeats.

    .venv/bin/python benchmarks/bench_cpu_temporal.py --repeats 5
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels.benchmarking import DTYPES, measure_interleaved, transposed_randn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=1024, help="B*S sequences")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=72)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    shape = (args.sequences, args.frames, args.heads, args.head_dim)
    q, k, v = (transposed_randn(shape, DTYPES[args.dtype], "cpu", generator) for _ in range(3))
    scale = args.head_dim ** -0.5
    contenders = {
        "fused op (temporal_attention_with_cfi)": lambda: torch.ops.eav.temporal_attention_with_cfi(q, k, v, scale),
        "SDPA + CPU CFI kernel": lambda: (
            F.scaled_dot_product_attention(q, k, v),
            eav.cross_frame_intensity(q, k, args.frames, backend="cpu"),
        ),
    }
    measured = measure_interleaved(list(contenders.values()), torch.device("cpu"), args.repeats)
    print(f"# [{args.sequences}, {args.heads}, {args.frames}, {args.head_dim}] {args.dtype}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    for name, result in zip(contenders, measured):
        print(f"{name:40s} {result.median_seconds * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
