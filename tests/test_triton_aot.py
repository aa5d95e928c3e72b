"""Both Triton kernels compiled ahead of time for real GPUs, on a machine with no GPU.

Every launch the kernels make at the shapes of the GPU tests (tests/test_triton_gpu.py) and of
the benchmarks (every preset of eav_kernels/presets.py through ``eav bench``, the F sweep of
benchmarks/bench_triton_gpu.py), in fp32, fp16 and bf16, is recorded by running the launchers on
``meta`` tensors with the kernel replaced by a recorder. Each distinct launch is compiled with
``triton.compile`` for sm_80 (A100) and sm_90 (H100/H200), with the specialization Triton's
runtime derives from those arguments (alignment, strides equal to 1 or divisible by 16), and:

* no local-memory stack: ``cuobjdump --dump-resource-usage`` of the cubin reads STACK:0 LOCAL:0
  (a spilling tile runs, correctly, at a fraction of its speed);
* no warp repeats another's work: in the TTGIR every ``tt.dot`` result covers its layout's
  ``warpsPerCTA`` x per-warp tile in every dimension (Triton gives a 3-D dot's warps to the batch
  dimension: a batch block below ``num_warps`` makes warps compute the same tile);
* fp16/bf16 dots run on tensor cores (``mma`` with fp16/bf16 operands), fp32 dots exactly (FMA);
* shared memory within sm_80's 163 KiB.

    python -m pytest -m aot -q        # a few minutes cold; Triton caches compiled kernels
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import pathlib
import re
import subprocess
import tempfile

import pytest
import torch

triton = pytest.importorskip("triton")

import eav_kernels.triton_kernels.cross_frame_intensity as cfi_module  # noqa: E402
import eav_kernels.triton_kernels.temporal_attention as temporal_module  # noqa: E402
from eav_kernels.presets import PRESETS  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from contract import random_query_key, random_view  # noqa: E402
from test_triton_gpu import CFI_CASES, FUSED_SHAPE, TEMPORAL_CASES, TEMPORAL_FRAMES  # noqa: E402

pytestmark = [
    pytest.mark.aot,
    # Under the interpreter Triton routes even triton.compile's code generation through its
    # interpreter builder; the AOT tests need the real compiler (tests/test_triton_interpreter.py
    # sets the variable only in its own child process).
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"),
                       reason="TRITON_INTERPRET is set: triton.compile needs the real compiler"),
]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CAPABILITIES = [80, 90]
SM80_SHARED_MEMORY = 163 * 1024  # the most dynamic shared memory an sm_80 block may use
BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
TRITON_BIN = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


# ------------------------------------------------------------------ the launches, recorded


@dataclasses.dataclass(frozen=True)
class Launch:
    """One kernel launch as Triton's runtime would compile it (hashable: distinct launches)."""

    kernel_name: str
    signature: tuple  # ((argument, Triton type), ...): "*bf16", "i32", "constexpr", ...
    constexprs: tuple  # ((argument path, value), ...): tile sizes, and ints equal to 1
    attrs: tuple  # ((argument path, (("tt.divisibility", 16),)), ...)
    num_warps: int

    @property
    def constants(self) -> dict:
        """{argument: value} of the constexprs: tile sizes, and ints Triton specialized to 1."""
        return {self.signature[path[0]][0]: value for path, value in self.constexprs}

    @property
    def dtype(self) -> str:
        return dict(self.signature)["q_ptr"][1:]

    @property
    def tiles(self) -> str:
        """What the launcher chose: tiles, dims, row alignment, warps, dtype."""
        chosen = {k: v for k, v in self.constants.items()
                  if k.isupper() and k not in ("UPCAST_OPERANDS", "IEEE_DOT")}
        return " ".join(f"{k}={v}" for k, v in chosen.items()) + f" w{self.num_warps} {self.dtype}"


class Recorder:
    """Stands in for a ``@triton.jit`` kernel: ``recorder[grid](*args, **kwargs)`` records the
    launch with the specialization the real kernel's runtime would derive from the arguments."""

    def __init__(self, kernel, target: GPUTarget):
        from triton.compiler.compiler import make_backend
        from triton.runtime.jit import create_function_from_signature

        self.kernel = kernel
        self.backend = make_backend(target)
        self.binder = create_function_from_signature(kernel.signature, kernel.params, self.backend)
        self.launches: list[Launch] = []

    def __getitem__(self, grid):
        return self.record

    def record(self, *args, **kwargs):
        bound, specialization, options = self.binder(*args, **kwargs)
        options, signature, constexprs, attrs = self.kernel._pack_args(self.backend, kwargs, bound,
                                                                       specialization, options)
        self.launches.append(Launch(
            self.kernel.__name__, tuple(signature.items()),
            tuple(sorted((path, value) for path, value in constexprs.items())),
            tuple(sorted((path, tuple(map(tuple, value))) for path, value in attrs.items())),
            options.num_warps,
        ))


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cfi_inputs(dtype: torch.dtype):
    """(q, k, F) of every CFI launch: the GPU tests, each preset's video tokens (eav bench), and
    the per-sequence CFI of the Triton benchmark's sweep ([B*S, H, F, D] with S = 1)."""
    for batch, heads, kv_heads, frames, spatial, head_dim, layout in CFI_CASES:
        yield (*random_query_key(batch, heads, frames, spatial, head_dim, dtype,
                                 kv_heads=kv_heads, layout=layout, device="meta"), frames)
    for preset in PRESETS.values():
        q = random_view((1, preset.heads, preset.video_tokens, preset.head_dim), "bnhd", dtype, device="meta")
        yield q, q, preset.num_frames
    sweep = load_benchmark("bench_triton_gpu").parse_args([])
    for frames in sweep.frames:
        q = random_view((sweep.sequences, sweep.heads, frames, sweep.head_dim), "bnhd", dtype, device="meta")
        yield q, q, frames


def temporal_inputs(dtype: torch.dtype):
    """(q, k, v) of every temporal launch: the GPU tests, enhanced_sdpa's fused path, the sweep."""
    for frames in TEMPORAL_FRAMES:
        for sequences, heads, kv_heads, head_dim, value_dim, layout in TEMPORAL_CASES:
            yield tuple(random_view((sequences, h, frames, d), layout, dtype, device="meta")
                        for h, d in ((heads, head_dim), (kv_heads, head_dim), (kv_heads, value_dim)))
    sequences, frames, heads, head_dim = FUSED_SHAPE
    yield (random_view((sequences, heads, frames, head_dim), "bnhd", dtype, device="meta"),) * 3
    sweep = load_benchmark("bench_triton_gpu").parse_args([])
    for frames in sweep.frames:
        yield (random_view((sweep.sequences, sweep.heads, frames, sweep.head_dim), "bnhd", dtype,
                           device="meta"),) * 3


@functools.lru_cache(maxsize=None)
def recorded_launches() -> tuple[Launch, ...]:
    """Every distinct launch of both kernels at the shapes above, in fp32, fp16 and bf16."""
    target = GPUTarget("cuda", 80, 32)
    launches: dict[Launch, None] = {}
    with pytest.MonkeyPatch.context() as patch:
        for module, name in ((cfi_module, "cross_frame_intensity_kernel"),
                             (temporal_module, "temporal_attention_kernel")):
            recorder = Recorder(getattr(module, name), target)
            patch.setattr(module, name, recorder)
            patch.setattr(module, "check_device", lambda *tensors: None)  # meta tensors
            for dtype in DTYPES.values():
                if module is cfi_module:
                    for q, k, frames in cfi_inputs(dtype):
                        module.per_batch_cross_frame_intensity(q, k, frames, 0.125)
                else:
                    for q, k, v in temporal_inputs(dtype):
                        module.temporal_attention_with_cfi(q, k, v)
            launches.update(dict.fromkeys(recorder.launches))
    return tuple(launches)


# ------------------------------------------------------------------ compiling and reading


@dataclasses.dataclass(frozen=True)
class Compiled:
    registers: int
    stack: int  # bytes of local-memory stack per thread (spills)
    local: int
    shared: int
    ttgir: str
    ptx: str


@functools.lru_cache(maxsize=None)
def compile_launch(launch: Launch, capability: int) -> Compiled:
    kernel = {"cross_frame_intensity_kernel": cfi_module.cross_frame_intensity_kernel,
              "temporal_attention_kernel": temporal_module.temporal_attention_kernel}[launch.kernel_name]
    source = triton.compiler.ASTSource(
        fn=kernel, signature=dict(launch.signature), constexprs=dict(launch.constexprs),
        attrs={path: [list(attr) for attr in value] for path, value in launch.attrs},
    )
    compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32),
                              options={"num_warps": launch.num_warps})
    with tempfile.TemporaryDirectory() as directory:
        cubin = pathlib.Path(directory) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage = subprocess.run([str(TRITON_BIN / "cuobjdump"), "--dump-resource-usage", str(cubin)],
                               capture_output=True, text=True, check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", usage)
    assert found, f"no resource usage in cuobjdump's output:\n{usage}"
    registers, stack, local = map(int, found.groups())
    return Compiled(registers, stack, local, compiled.metadata.shared, compiled.asm["ttgir"],
                    compiled.asm["ptx"])


def dot_tiles(ttgir: str) -> list[tuple[list[int], list[int], str]]:
    """(result shape, warp tile, layout text) of every tt.dot: the warp tile is per dimension
    warpsPerCTA x instrShape (mma) or warpsPerCTA x threadsPerWarp x sizePerThread (FMA)."""
    layouts = dict(re.findall(r"^(#\w+) = (#ttg\.\w+<\{.*\}>)", ttgir, re.MULTILINE))
    tiles = []
    for shape, layout in re.findall(r"= tt\.dot .*?-> tensor<([\dx]+)x\w+, (#\w+)>", ttgir):
        text = layouts[layout]

        def field(name: str) -> list[int]:
            return [int(x) for x in re.search(name + r" = \[([\d, ]+)\]", text).group(1).split(",")]

        if "nvidia_mma" in text:
            per_warp = field("instrShape")
        else:
            per_warp = [s * t for s, t in zip(field("sizePerThread"), field("threadsPerWarp"))]
        tiles.append(([int(x) for x in shape.split("x")],
                      [w * p for w, p in zip(field("warpsPerCTA"), per_warp)], text))
    return tiles


# ------------------------------------------------------------------ the tests


def representatives() -> list[Launch]:
    """One launch per compiled configuration (kernel, dtype, warps and every constexpr parameter:
    tiles, HEAD_DIM, ROW_ALIGN, ...): the one Triton specializes least (no stride known to be 1 or
    divisible by 16: the most address arithmetic), the worst case for registers."""
    groups: dict[tuple, list[Launch]] = {}
    for launch in recorded_launches():
        key = (launch.kernel_name, launch.tiles)
        groups.setdefault(key, []).append(launch)
    return [min(group, key=lambda x: (len(x.constexprs), sum(bool(value) for _, value in x.attrs)))
            for group in groups.values()]


def launch_param(launch: Launch, capability: int):
    """fp16 compiles to the same tiles, registers and stack as its bf16 twin (checked when this
    test was written): the fp16 twins run with -m slow, to keep `make test` short."""
    digest = hashlib.sha1(repr(launch).encode()).hexdigest()[:6]
    tiles = launch.tiles.replace("BLOCK_", "").replace(" ", "-")
    name = f"{launch.kernel_name.removesuffix('_kernel')}-{tiles}-{digest}-sm_{capability}"
    return pytest.param(launch, capability, id=name, marks=[pytest.mark.slow] if launch.dtype == "fp16" else [])


def test_launches_cover_both_kernels_every_dtype_and_both_load_widths():
    launches = recorded_launches()
    kinds = {(launch.kernel_name, launch.dtype) for launch in launches}
    assert kinds == {(kernel, dtype) for kernel in ("cross_frame_intensity_kernel", "temporal_attention_kernel")
                     for dtype in ("fp32", "fp16", "bf16")}
    assert {1, 4} <= {x.constants.get("BLOCK_S") for x in launches}  # one position; full blocks
    assert {2, 16} <= {x.constants["ROW_ALIGN"] for x in launches}  # misaligned test; vector rows


@pytest.mark.parametrize(("launch", "capability"),
                         [launch_param(launch, capability) for launch in representatives()
                          for capability in CAPABILITIES])
def test_compiled_tile_has_no_stack_and_no_repeated_warp_work(launch, capability):
    compiled = compile_launch(launch, capability)
    print(f"{launch.tiles} sm_{capability}: {compiled.registers} registers, stack {compiled.stack} B, "
          f"shared {compiled.shared} B")
    assert compiled.stack == 0 and compiled.local == 0, (
        f"{launch.tiles} on sm_{capability}: {compiled.stack} B stack, {compiled.local} B local "
        f"per thread ({compiled.registers} registers): the tile spills"
    )
    assert compiled.shared <= SM80_SHARED_MEMORY, f"{compiled.shared} B shared memory"
    tiles = dot_tiles(compiled.ttgir)
    assert tiles, "no tt.dot in the TTGIR"
    for shape, warp_tile, layout in tiles:
        assert all(s >= t for s, t in zip(shape, warp_tile)), (
            f"dot result {shape} is smaller than its warps' tile {warp_tile} ({layout}): warps repeat work"
        )
    dtype = launch.dtype
    mma_lines = [line for line in compiled.ptx.splitlines() if "mma.sync" in line or "wgmma" in line]
    if dtype == "fp32":
        assert not mma_lines, "fp32 dots must be exact (FMA), not tf32 tensor-core products"
    else:
        operand = {"fp16": ".f16", "bf16": ".bf16"}[dtype]
        assert mma_lines and all(operand in line for line in mma_lines), (
            f"the tensor-core instructions do not take {dtype} operands"
        )


def test_aligned_rows_are_read_as_16_byte_vectors():
    """D = 72 (Latte, the Triton benchmark): Triton's own specialization knows only "divisible by
    16 elements", so without the ROW_ALIGN hint every element would be a 2-byte load."""
    sweep = [x for x in recorded_launches()
             if x.constants.get("HEAD_DIM") == 72 and x.constants["ROW_ALIGN"] == 16 and x.dtype == "bf16"]
    assert {x.kernel_name for x in sweep} == {"cross_frame_intensity_kernel", "temporal_attention_kernel"}
    for launch in sweep:
        loads = re.findall(r"ld\.global\S*", compile_launch(launch, 90).ptx)
        assert loads and all(".v4." in load for load in loads), f"{launch.tiles}: {sorted(set(loads))}"


@pytest.mark.parametrize(("row_align", "load"), [(8, "ld.global.v2.b32"), (4, "ld.global.b32"),
                                                 (2, "ld.global.b16")])
def test_row_alignment_hint_counts_bytes(row_align, load):
    """tl.multiple_of on pointers counts bytes: rows 8-byte aligned must get 8-byte loads, never
    16-byte ones (a misaligned vector load faults on the GPU)."""
    launch = next(x for x in recorded_launches() if x.kernel_name == "cross_frame_intensity_kernel"
                  and x.constants.get("HEAD_DIM") == 72 and x.constants["ROW_ALIGN"] == 16 and x.dtype == "bf16")
    names = [name for name, _ in launch.signature]
    hinted = dataclasses.replace(launch, constexprs=tuple(
        (path, row_align if names[path[0]] == "ROW_ALIGN" else value) for path, value in launch.constexprs))
    loads = set(re.findall(r"ld\.global\S*", compile_launch(hinted, 90).ptx))
    assert loads == {load}, loads


def test_row_alignment_of_the_views_the_kernels_get():
    from eav_kernels.triton_kernels._common import row_alignment, vector_loads

    def view(layout, dtype=torch.bfloat16, head_dim=72):
        return random_view((2, 4, 13, head_dim), layout, dtype, device="meta")

    assert row_alignment(view("bnhd")) == 16 and vector_loads(view("bnhd"), view("bhnd"))
    assert row_alignment(view("misaligned")) == 2 and not vector_loads(view("bnhd"), view("misaligned"))
    assert row_alignment(view("misaligned", torch.float32)) == 4
    assert row_alignment(view("strided")) == 2 and not vector_loads(view("strided"))  # stride 145
    assert row_alignment(view("bnhd", head_dim=36)) == 8  # rows of 72 bytes
    one_batch = torch.empty(100, dtype=torch.bfloat16, device="meta").as_strided((1, 2, 3, 8), (7, 24, 8, 1))
    assert row_alignment(one_batch) == 16  # a length-1 dim's stride is never multiplied
