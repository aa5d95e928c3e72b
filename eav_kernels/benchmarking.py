"""Timing and peak-memory measurement shared by the benchmarks and the CLI.

Time: median wall time of several repeats after one warm-up (CUDA calls synchronised).
Peak extra memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated before;
on CPU, the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs``) above its resident set before the call: the memory the call really
touched, whatever allocated it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

__all__ = ["Measurement", "measure", "measure_interleaved"]


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
