"""``eav bench``: every usable CFI backend against the paper's materialising path, and
``enhanced_sdpa`` against ``F.scaled_dot_product_attention``, on the real shapes of eav_kernels/presets.py.

For each preset, in one run (ratios are only compared within a run):

- ``cfi``: median time and peak extra memory of ``eav.cross_frame_intensity`` per backend and of
  ``official_style_cross_frame_intensity`` (bf16 ``q @ k^T``, the ``F x F`` maps materialised, as
  in the paper's code); each CFI's absolute error against the float64 reference (computed a few
  heads at a time to bound memory).
- ``attention``: ``F.scaled_dot_product_attention`` and ``eav.enhanced_sdpa`` on the preset's full
  joint sequence (text tokens included, first or last; only the video tokens are scaled); for
  ``latte-temporal`` a batch of S sequences of F frames (the fused temporal path where Triton runs).

q, k, v are ``[1, N, H, D]`` tensors handed over as ``[1, H, N, D]`` transposed views, the way
diffusers calls attention. A preset that does not fit the device's free memory runs with fewer
heads (time and memory are linear in heads; the table says so). On CPU, attention at these
lengths takes minutes per call, so ``--sdpa auto`` measures it there on as many heads as keep one
call under 100 GFLOP, and not at all where one head alone is more (``--sdpa full``: all heads
everywhere; ``--sdpa off``: CFI only). Contenders are timed interleaved (a b a b ...), so a busy
machine slows them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..benchmarking import DTYPES, transposed_randn
from ..benchmarking import write_csv as _write_rows
from ..presets import PRESETS, AttentionPreset

__all__ = ["BenchSettings", "run_benchmarks", "format_table", "write_csv", "plot_results", "main"]

MIB = 2**20
OFFICIAL = "official-style"
SDPA, ENHANCED_SDPA = "F.sdpa", "enhanced_sdpa"
CPU_SDPA_FLOP_BUDGET = 1e11  # --sdpa auto on CPU: about one to a few seconds per call on a few cores
MEMORY_HEADROOM = 0.6  # use at most this fraction of the free memory
REFERENCE_HEADS_PER_STEP = 4

CSV_COLUMNS = [
    "preset", "op", "method", "device", "dtype", "num_frames", "spatial", "heads", "preset_heads",
    "head_dim", "tokens", "repeats", "median_ms", "peak_MiB", "speedup_vs_baseline", "cfi",
    "cfi_reference_f64", "cfi_abs_err", "note",
]


@dataclass
class BenchSettings:
    presets: list[str] = field(default_factory=lambda: list(PRESETS))
    backends: list[str] | None = None  # None: every usable backend but "reference"
    dtype: str = "bf16"
    device: str = "auto"
    repeats: int = 5
    seed: int = 0
    sdpa: str = "auto"  # auto | full | off
    shrink: int = 1  # divide each preset's spatial tokens per frame by this (quick runs, tests)
    progress: bool | None = None  # tqdm on stderr; None: only on a terminal


@dataclass
class Row:
    preset: str
    op: str  # "cfi" | "attention"
    method: str
    device: str
    dtype: str
    num_frames: int
    spatial: int
    heads: int
    preset_heads: int
    head_dim: int
    tokens: int
    repeats: int
    median_ms: float
    peak_MiB: float | None
    speedup_vs_baseline: float | None = None  # baseline time / this time
    cfi: float | None = None
    cfi_reference_f64: float | None = None
    cfi_abs_err: float | None = None
    note: str = ""


# ---- devices and memory ---------------------------------------------------------------------

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def free_memory_bytes(device: torch.device) -> int | None:
    """CUDA: ``torch.cuda.mem_get_info``; CPU: ``MemAvailable`` of ``/proc/meminfo``."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def estimated_bytes(preset: AttentionPreset, dtype: torch.dtype, with_attention: bool) -> int:
    """A generous estimate of the peak memory one preset's benchmark needs (batch 1)."""
    element = torch.finfo(dtype).bits // 8
    qk = 2 * preset.heads * preset.video_tokens * preset.head_dim * element
    maps = preset.heads * preset.spatial * preset.num_frames**2
    official = 2 * qk + maps * (element + 12)  # copies of q, k; logits; fp32 softmax + masked copy
    reference_step = (2 * REFERENCE_HEADS_PER_STEP * preset.video_tokens * preset.head_dim * 8
                      + 4 * REFERENCE_HEADS_PER_STEP * preset.spatial * preset.num_frames**2 * 8)
    need = qk + max(official, reference_step)
    if with_attention:
        joint = preset.video_tokens + preset.text_tokens
        need = max(need, 6 * preset.heads * joint * preset.head_dim * element)  # q k v, out, copies
    return need


def fit_heads(preset: AttentionPreset, dtype: torch.dtype, free: int | None, with_attention: bool) -> int:
    """The most heads (at most the preset's) whose estimated need fits in the free memory."""
    if free is None:
        return preset.heads
    budget = MEMORY_HEADROOM * free
    need = estimated_bytes(preset, dtype, with_attention)
    if need <= budget:
        return preset.heads
    return max(1, math.floor(preset.heads * budget / need))


def is_temporal(preset: AttentionPreset) -> bool:
    """Whether the model's attention *is* temporal (a batch of S sequences of F frames)."""
    return preset.name.endswith("temporal")


def attention_flops(preset: AttentionPreset, heads: int) -> float:
    if is_temporal(preset):
        return 4.0 * heads * preset.spatial * preset.num_frames**2 * preset.head_dim
    tokens = preset.video_tokens + preset.text_tokens
    return 4.0 * heads * tokens**2 * preset.head_dim


# ---- inputs ---------------------------------------------------------------------------------

def _tokens_major(generator: torch.Generator, tokens: int, preset: AttentionPreset, heads: int,
                  dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[1, H, N, D]``: a transposed view of a ``[1, N, H, D]`` tensor, as diffusers hands it over."""
    return transposed_randn((1, tokens, heads, preset.head_dim), dtype, device, generator)


def video_slice(preset: AttentionPreset) -> slice | None:
    if preset.text_position == "first":
        return slice(preset.text_tokens, None)
    if preset.text_position == "last":
        return slice(0, preset.video_tokens)
    return None


def reference_cfi(query: torch.Tensor, key: torch.Tensor, num_frames: int,
                  heads_per_step: int = REFERENCE_HEADS_PER_STEP) -> float:
    """Float64 reference, a few heads at a time (the mean over heads of equal-weight groups)."""
    from ..reference import cross_frame_intensity_reference

    heads = query.shape[1]
    total = 0.0
    for h in range(0, heads, heads_per_step):
        part = cross_frame_intensity_reference(
            query[:, h: h + heads_per_step], key[:, h: h + heads_per_step], num_frames
        )
        total += float(part) * min(heads_per_step, heads - h)
    return total / heads


# ---- the run --------------------------------------------------------------------------------

@dataclass
class _Plan:
    preset: AttentionPreset  # shrunk / with fewer heads
    original: AttentionPreset
    attention_heads: int  # 0: attention skipped
    notes: list[str]


def _choose_backends(settings: BenchSettings, probe_q: torch.Tensor, probe_k: torch.Tensor):
    """(backends to run, {skipped backend: reason})."""
    from ..backends import available_backends
    from ..capabilities import triton_interpreting

    reasons = available_backends(probe_q, probe_k)
    interpreting = triton_interpreting()
    chosen, skipped = [], {}
    for name, reason in reasons.items():
        explicit = settings.backends is not None and name in settings.backends
        if settings.backends is not None and not explicit:
            continue
        if reason is not None:
            skipped[name] = reason
        elif name == "reference" and not explicit:
            skipped[name] = "the float64 truth the errors are measured against (--backend reference to time it)"
        elif name == "triton" and probe_q.device.type == "cpu" and interpreting and not explicit:
            skipped[name] = "Triton's interpreter on CPU is far too slow for presets (--backend triton to force)"
        else:
            chosen.append(name)
    if settings.backends is not None:
        unknown = [name for name in settings.backends if name not in reasons]
        if unknown:
            raise ValueError(f"unknown backend(s) {unknown}; known: {', '.join(reasons)}")
    return chosen, skipped


def _plan(name: str, settings: BenchSettings, device: torch.device, dtype: torch.dtype) -> _Plan:
    original = PRESETS[name]
    preset, notes = original, []
    if settings.shrink > 1:
        spatial = max(1, -(-original.spatial // settings.shrink))
        preset = dataclasses.replace(preset, spatial=spatial)
        notes.append(f"S/{settings.shrink}: {spatial} of {original.spatial} tokens per frame")
    with_attention = settings.sdpa != "off"
    heads = fit_heads(preset, dtype, free_memory_bytes(device), with_attention)
    if heads < preset.heads:
        notes.append(f"{heads} of {preset.heads} heads (device memory)")
        preset = dataclasses.replace(preset, heads=heads)
    attention_heads = 0
    if settings.sdpa == "full" or (settings.sdpa == "auto" and device.type != "cpu"):
        attention_heads = preset.heads
    elif settings.sdpa == "auto":
        per_head = attention_flops(preset, 1)
        attention_heads = min(preset.heads, math.floor(CPU_SDPA_FLOP_BUDGET / per_head))
        if attention_heads == 0:
            notes.append(f"attention not measured: {per_head / 1e9:.0f} GFLOP per head is too slow on "
                         "cpu (--sdpa full to force)")
        elif attention_heads < preset.heads:
            notes.append(f"attention on {attention_heads} of {preset.heads} heads (cpu; --sdpa full for all)")
    return _Plan(preset, original, attention_heads, notes)


def run_benchmarks(settings: BenchSettings, log: Callable[[str], None] | None = None) -> tuple[list[Row], dict]:
    """Runs every preset; returns the rows and a summary (device, skipped backends, notes)."""
    from tqdm.auto import tqdm

    device = resolve_device(settings.device)
    dtype = DTYPES[settings.dtype]
    probe = torch.randn(1, 1, 2 * 3, 8, device=device).to(dtype)
    backends, skipped = _choose_backends(settings, probe, probe)
    plans = [_plan(name, settings, device, dtype) for name in settings.presets]
    progress = tqdm(total=3 * len(plans), file=sys.stderr, unit="step",
                    disable=None if settings.progress is None else not settings.progress)
    rows: list[Row] = []
    try:
        for plan in plans:
            rows += _run_preset(plan, settings, device, dtype, backends, progress)
    finally:
        progress.close()
    summary = {
        "device": device,
        "device_name": _device_name(device),
        "dtype": settings.dtype,
        "repeats": settings.repeats,
        "skipped_backends": skipped,
        "notes": {plan.original.name: plan.notes for plan in plans if plan.notes},
        "sdpa": settings.sdpa,
    }
    return rows, summary


def _run_preset(plan: _Plan, settings, device, dtype, backends, progress) -> list[Row]:
    import eav_kernels as eav
    from ..benchmarking import measure_interleaved
    from ..reference import official_style_cross_frame_intensity

    preset = plan.preset
    generator = torch.Generator().manual_seed(settings.seed)
    query = _tokens_major(generator, preset.video_tokens, preset, preset.heads, dtype, device)
    key = _tokens_major(generator, preset.video_tokens, preset, preset.heads, dtype, device)
    common = dict(preset=preset.name, device=str(device), dtype=settings.dtype,
                  num_frames=preset.num_frames, spatial=preset.spatial, preset_heads=plan.original.heads,
                  head_dim=preset.head_dim, repeats=settings.repeats, note="; ".join(plan.notes))

    def step(label: str):
        progress.set_description(f"{preset.name}: {label}")

    step("float64 reference CFI")
    truth = reference_cfi(query, key, preset.num_frames)
    progress.update()

    step(f"cfi {', '.join(backends)} vs {OFFICIAL}")
    methods = [OFFICIAL, *backends]
    functions = [lambda: official_style_cross_frame_intensity(query, key, preset.num_frames)]
    functions += [lambda b=b: eav.cross_frame_intensity(query, key, preset.num_frames, backend=b)
                  for b in backends]
    measured = measure_interleaved(functions, device, settings.repeats)
    progress.update()
    baseline_ms = measured[0].median_seconds * 1e3
    rows: list[Row] = []
    for method, result in zip(methods, measured):
        value = float(result.result)
        ms = result.median_seconds * 1e3
        rows.append(Row(op="cfi", method=method, heads=preset.heads, tokens=preset.video_tokens,
                        median_ms=ms, peak_MiB=_mib(result.peak_extra_bytes),
                        speedup_vs_baseline=baseline_ms / ms, cfi=value, cfi_reference_f64=truth,
                        cfi_abs_err=abs(value - truth), **common))
    rows = rows[1:] + rows[:1]  # backends first, the baseline last
    del query, key, functions

    if plan.attention_heads:
        heads = plan.attention_heads
        if is_temporal(preset):  # Latte's temporal blocks: a batch of S sequences of F frames
            tokens = preset.num_frames
            q, k, v = (_tokens_major(generator, tokens, preset, heads, dtype, device)
                       .expand(preset.spatial, -1, -1, -1).contiguous() for _ in range(3))
        else:
            tokens = preset.video_tokens + preset.text_tokens
            q, k, v = (_tokens_major(generator, tokens, preset, heads, dtype, device) for _ in range(3))
        video = video_slice(preset)
        step(f"attention {SDPA} vs {ENHANCED_SDPA} ({heads} heads, {tokens} tokens)")
        measured = measure_interleaved([
            lambda: F.scaled_dot_product_attention(q, k, v),
            lambda: eav.enhanced_sdpa(q, k, v, num_frames=preset.num_frames, enhance_weight=4.0,
                                      video_tokens=video),
        ], device, settings.repeats)
        baseline_ms = measured[0].median_seconds * 1e3
        for method, result in zip((SDPA, ENHANCED_SDPA), measured):
            ms = result.median_seconds * 1e3
            rows.append(Row(op="attention", method=method, heads=heads, tokens=tokens, median_ms=ms,
                            peak_MiB=_mib(result.peak_extra_bytes),
                            speedup_vs_baseline=baseline_ms / ms, **common))
    progress.update()
    return rows


def _mib(value: int | None) -> float | None:
    return None if value is None else value / MIB


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


# ---- output ---------------------------------------------------------------------------------

def _ratio_text(row: Row) -> str:
    if row.speedup_vs_baseline is None:
        return ""
    if row.op == "cfi":
        return "baseline" if row.method == OFFICIAL else f"{row.speedup_vs_baseline:.1f}x faster"
    if row.method == SDPA:
        return "baseline"
    return f"{100 * (1 / row.speedup_vs_baseline - 1):+.1f}% time"


def format_table(rows: list[Row], summary: dict) -> str:
    header = ["preset", "op", "method", "heads", "median ms", "peak MiB", "vs baseline", "CFI abs err"]
    table = []
    for row in rows:
        heads = str(row.heads) if row.heads == row.preset_heads else f"{row.heads}/{row.preset_heads}"
        table.append([
            row.preset, row.op, row.method, heads, _fmt_ms(row.median_ms),
            "n/a" if row.peak_MiB is None else f"{row.peak_MiB:.1f}", _ratio_text(row),
            "" if row.cfi_abs_err is None else f"{row.cfi_abs_err:.1e}",
        ])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    left = {0, 1, 2}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [
        f"# eav bench: {summary['device']} ({summary['device_name']}), torch {torch.__version__}, "
        f"{summary['dtype']}, median of {summary['repeats']}",
        line(header), line(["-" * w for w in widths]),
    ]
    previous = None
    for row, cells in zip(rows, table):
        if previous is not None and row.preset != previous:
            out.append("")
        previous = row.preset
        out.append(line(cells))
    notes = [f"  {name}: {'; '.join(text)}" for name, text in summary["notes"].items()]
    if notes:
        out += ["", "scaled down:"] + notes
    if summary["skipped_backends"]:
        out += ["", "backends not run:"]
        out += [f"  {name}: {reason}" for name, reason in summary["skipped_backends"].items()]
    if summary["sdpa"] == "off":
        out += ["", "attention not measured (--sdpa off)"]
    out += ["", "cfi: one call's cross-frame intensity (baseline: the paper's materialising code); "
                "attention: one call on the full joint sequence, or for *-temporal a batch of S sequences of F "
                "frames (baseline: F.scaled_dot_product_attention). "
                "peak MiB: extra memory at peak (CPU: resident-set growth)."]
    return "\n".join(out)


def _fmt_ms(ms: float) -> str:
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def write_csv(rows: list[Row], path: str | Path) -> None:
    _write_rows([{name: _csv_value(getattr(row, name)) for name in CSV_COLUMNS} for row in rows],
                path, CSV_COLUMNS)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def plot_results(rows: list[Row], summary: dict, path: str | Path) -> None:
    """Log-scale bars of median time per method per preset; speedup / overhead labels on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [op for op in ("cfi", "attention") if any(r.op == op for r in rows)]
    most = max(len({r.preset for r in rows if r.op == op}) for op in panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(max(6.5, 1.8 * most) * len(panels), 4.8),
                                squeeze=False)
    titles = {"cfi": "cross-frame intensity, one call", "attention": "attention, one call"}
    for axis, op in zip(axes[0], panels):
        op_rows = [r for r in rows if r.op == op]
        presets = list(dict.fromkeys(r.preset for r in op_rows))
        methods = list(dict.fromkeys(r.method for r in op_rows))
        width = 0.8 / len(methods)
        colors = plt.get_cmap("tab10")
        for m, method in enumerate(methods):
            for p, preset in enumerate(presets):
                match = [r for r in op_rows if r.preset == preset and r.method == method]
                if not match:
                    continue
                row = match[0]
                x = p + (m - (len(methods) - 1) / 2) * width
                axis.bar(x, row.median_ms, width, color=colors(m), label=method if p == 0 else None)
                label = _ratio_text(row)
                if label and label != "baseline":
                    axis.annotate(label.replace(" time", ""), (x, row.median_ms),
                                  ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                                  textcoords="offset points")
        axis.set_yscale("log")
        smallest = min(r.median_ms for r in op_rows)
        axis.set_ylim(bottom=smallest / 4, top=max(r.median_ms for r in op_rows) * 2.5)
        axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xticks(range(len(presets)))
        axis.set_xticklabels([_preset_label(preset, op_rows) for preset in presets], fontsize=8)
        axis.set_ylabel("median time (ms, log scale)")
        axis.set_title(titles[op], fontsize=10)
        axis.legend(fontsize=8)
        axis.grid(axis="y", which="both", alpha=0.3)
    figure.suptitle(f"eav bench: {summary['device_name']} ({summary['device']}), {summary['dtype']}, "
                    f"median of {summary['repeats']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _preset_label(preset: str, rows: list[Row]) -> str:
    row = next(r for r in rows if r.preset == preset)
    heads = f"{row.heads}" if row.heads == row.preset_heads else f"{row.heads}/{row.preset_heads}"
    return f"{preset}\nF={row.num_frames} S={row.spatial}\nH={heads} D={row.head_dim}"


# ---- command line ---------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", action="append", choices=list(PRESETS), metavar="NAME",
                        help=f"repeatable; default: all of {', '.join(PRESETS)}")
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="CFI backend to time (repeatable; default: every usable one but reference)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if present)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median; after one warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sdpa", choices=("auto", "full", "off"), default="auto",
                        help="attention timing: auto = all heads on GPU, a few heads on CPU (minutes per "
                             "call otherwise); full = all heads; off = CFI only")
    parser.add_argument("--no-sdpa", dest="sdpa", action="store_const", const="off",
                        help="same as --sdpa off")
    parser.add_argument("--shrink", type=int, default=1, metavar="K",
                        help="divide each preset's spatial tokens per frame by K (quick checks, tests)")
    parser.add_argument("--csv", metavar="FILE", help="write every row as CSV")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG chart (matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time CFI backends and enhanced_sdpa on real model shapes",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    if args.shrink < 1:
        raise SystemExit(f"--shrink must be at least 1, got {args.shrink}")
    return BenchSettings(
        presets=args.preset or list(PRESETS), backends=args.backend, dtype=args.dtype,
        device=args.device, repeats=args.repeats, seed=args.seed, sdpa=args.sdpa, shrink=args.shrink,
        progress=False if args.no_progress else None,
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    rows, summary = run_benchmarks(settings)
    print(format_table(rows, summary), flush=True)
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        plot_results(rows, summary, args.plot)
        print(f"wrote {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eav bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
