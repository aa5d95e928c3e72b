"""Both Triton kernels compiled ahead of time for real GPUs, on a machine with no GPU.

``triton.compile`` lowers the kernels to PTX for sm_80 (A100) and sm_90 (H100) in fp16 and bf16,
with the tile sizes the launchers pick at real shapes, and the PTX must use the tensor cores:
``mma`` on sm_80, ``wgmma`` or ``mma`` on sm_90 (batched 3-D dots lower to ``mma.sync``).

    python -m pytest -m aot -q
"""

from __future__ import annotations

import pytest

triton = pytest.importorskip("triton")

import eav_kernels.triton_kernels.cross_frame_intensity as cfi_module  # noqa: E402
import eav_kernels.triton_kernels.temporal_attention as temporal_module  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

import os  # noqa: E402

import torch  # noqa: E402

pytestmark = [
    pytest.mark.aot,
    # Under the interpreter Triton routes even triton.compile's code generation through its
    # interpreter builder; the AOT tests need the real compiler (tests/test_triton_interpreter.py
    # sets the variable only in its own child process).
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"),
                       reason="TRITON_INTERPRET is set: triton.compile needs the real compiler"),
]

TRITON_DTYPES = {"fp16": "*fp16", "bf16": "*bf16", "fp32": "*fp32"}
TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
SM80_SHARED_MEMORY = 163 * 1024  # the most dynamic shared memory an sm_80 block may use
FLOAT32_POINTERS = {"partial_ptr", "lse_ptr"}  # outputs that are float32 whatever the inputs
FLOAT_SCALARS = {"qk_scale"}


def kernel_and_config(name: str, dtype: str, num_frames: int | None = None, head_dim: int | None = None):
    """(kernel, launch config) at a real shape: CFI at hunyuan-video, temporal at Latte."""
    if name == "cross_frame_intensity":
        config = cfi_module._launch_config(num_frames or 33, 3600, head_dim or 128, TORCH_DTYPES[dtype])
        return cfi_module.cross_frame_intensity_kernel, config
    config = temporal_module._launch_config(num_frames or 16, 1024, head_dim or 72, head_dim or 72,
                                            TORCH_DTYPES[dtype])
    return temporal_module.temporal_attention_kernel, config


def compile_kernel(name: str, dtype: str, capability: int, **shape):
    kernel, config = kernel_and_config(name, dtype, **shape)
    config = dict(config)
    num_warps = config.pop("num_warps")
    constexprs = dict(config, UPCAST_OPERANDS=False, IEEE_DOT=dtype == "fp32")
    signature = {}
    for arg in kernel.arg_names:
        if arg in constexprs:
            signature[arg] = "constexpr"
        elif arg in FLOAT32_POINTERS:
            signature[arg] = "*fp32"
        elif arg.endswith("_ptr"):
            signature[arg] = TRITON_DTYPES[dtype]
        elif arg in FLOAT_SCALARS:
            signature[arg] = "fp32"
        else:
            signature[arg] = "i32"
    source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": num_warps})


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("capability", [80, 90], ids=lambda c: f"sm_{c}")
@pytest.mark.parametrize("name", ["cross_frame_intensity", "temporal_attention"])
def test_compiles_to_tensor_core_instructions(name, capability, dtype):
    compiled = compile_kernel(name, dtype, capability)
    ptx = compiled.asm["ptx"]
    assert compiled.metadata.shared <= SM80_SHARED_MEMORY
    assert f".target sm_{capability}" in ptx
    if capability == 80:
        assert "mma.sync" in ptx, f"{name} ({dtype}) has no mma on sm_80"
    else:
        assert "wgmma" in ptx or "mma.sync" in ptx, f"{name} ({dtype}) has no wgmma/mma on sm_90"
    operand = {"fp16": ".f16", "bf16": ".bf16"}[dtype]
    assert any(operand in line for line in ptx.splitlines() if "mma" in line), (
        f"{name}: the tensor-core instructions do not take {dtype} operands"
    )


@pytest.mark.parametrize("name", ["cross_frame_intensity", "temporal_attention"])
def test_float32_at_256_frames_fits_sm80_shared_memory(name):
    """fp32 dots (exact, not tf32) stage operands in shared memory: the tiles must still fit."""
    compiled = compile_kernel(name, "fp32", 80, num_frames=256, head_dim=128)
    assert compiled.metadata.shared <= SM80_SHARED_MEMORY, compiled.metadata.shared
