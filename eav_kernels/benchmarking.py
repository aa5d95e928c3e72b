"""Timing and peak-memory measurement shared by the benchmarks and the CLI.

Time: median wall time of several repeats after one warm-up (CUDA calls synchronised).
Peak extra memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated before;
on CPU, the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs``) above its resident set before the call: the memory the call really
touched, whatever allocated it.

Also the few things every benchmark needs besides timing (``eav bench`` and the GPU scripts in
``benchmarks/``): the ``--dtype`` names, random q/k/v laid out as diffusers hands them over, and
writing rows as CSV.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

__all__ = ["DTYPES", "Measurement", "measure", "measure_interleaved", "transposed_randn", "format_rows",
           "write_csv", "script_main"]

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Measurement:
    median_seconds: float
    seconds: tuple[float, ...]
    peak_extra_bytes: int | None  # None where the platform cannot tell
    result: Any


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_extra_bytes(fn: Callable[[], Any], device: torch.device) -> int | None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu" or not _reset_peak_rss():
        return None
    before = _proc_status_kib("VmRSS")
    fn()
    peak = _proc_status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024


def measure(fn: Callable[[], Any], device: torch.device, repeats: int = 5) -> Measurement:
    """Runs ``fn`` once to warm up, once for peak memory, then ``repeats`` timed times."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    result = fn()
    sync()
    peak = _peak_extra_bytes(fn, device)
    seconds = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return Measurement(statistics.median(seconds), tuple(seconds), peak, result)


def measure_interleaved(fns: Sequence[Callable[[], Any]], device: torch.device,
                        repeats: int = 5) -> list[Measurement]:
    """``measure`` for functions compared with each other, on a machine whose load varies: each
    runs once to warm up and once for peak memory, then the timed repeats alternate
    (``a b a b ...``) so that a busy moment slows every contender alike."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    results = []
    for fn in fns:
        results.append(fn())
        sync()
    peaks = [_peak_extra_bytes(fn, device) for fn in fns]
    seconds: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, seconds):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
    return [Measurement(statistics.median(times), tuple(times), peak, result)
            for times, peak, result in zip(seconds, peaks, results)]


def transposed_randn(shape: tuple[int, int, int, int], dtype: torch.dtype, device: torch.device | str,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal ``[B, H, N, D]``: a transposed view of a ``[B, N, H, D]`` tensor (``shape``),
    the way diffusers hands q, k, v to ``scaled_dot_product_attention``. Drawn in float32 on the
    generator's device (the CPU one when there is none: the same numbers on every device), then
    cast and moved."""
    where = generator.device if generator is not None else "cpu"
    x = torch.randn(shape, generator=generator, dtype=torch.float32, device=where)
    return x.to(device, dtype).transpose(1, 2)


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path,
              columns: Sequence[str] | None = None) -> None:
    """Rows as CSV (folders created); ``columns`` default: every key, in first-seen order.
    A missing value is an empty cell."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def format_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned text table (the same columns ``write_csv`` writes)."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(columns))]
    lines = [[c.rjust(w) if n else c.ljust(w) for c, w, n in zip(columns, widths, numeric)],
             ["-" * w for w in widths]]
    lines += [[c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric)] for r in cells]
    return "\n".join("  ".join(line).rstrip() for line in lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True


def script_main(script: str, args: Any, plan: Sequence[str], unavailable_reason: Callable[[], str | None],
                run: Callable[[], list[dict[str, Any]]], columns: Sequence[str]) -> int:
    """The ``main`` of a benchmark script in ``benchmarks/``: with ``args.dry_run`` prints the plan
    and times nothing; where ``unavailable_reason()`` names a reason (no GPU, no kernels) measures
    nothing and returns 2; otherwise measures the rows (``run()``), prints them as a table and writes
    them to ``args.csv`` when one is given."""
    if args.dry_run:
        print(f"plan ({args.dtype}; nothing timed):")
        print("\n".join("  " + line for line in plan))
        if args.csv:
            print(f"CSV -> {args.csv}")
        return 0
    reason = unavailable_reason()
    if reason:
        print(f"{script}: {reason}; nothing measured (--dry-run shows the plan)", file=sys.stderr)
        return 2
    rows = run()
    print(format_rows(rows, columns))
    if args.csv:
        write_csv(rows, args.csv, columns)
        print(f"wrote {args.csv}")
    return 0
