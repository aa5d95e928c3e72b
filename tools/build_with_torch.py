"""Fallback build of eav_kernels._C without CMake (for GPU machines that have torch, nvcc and
ninja but no cmake): torch.utils.cpp_extension compiles the same sources; the CPU kernel is built
once (DEFAULT capability), the CUDA kernels for EAV_CUDA_ARCHS (e.g. "90a") or the visible GPU.
The module is copied to eav_kernels/ where the package imports it. Used by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    archs = os.environ.get("EAV_CUDA_ARCHS", "").replace(";", " ").split()
    if not archs and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        archs = [f"{major}{minor}" + ("a" if major == 9 else "")]
    build = ROOT / "build" / "torch-extension"
    build.mkdir(parents=True, exist_ok=True)
    kernel = build / "cross_frame_intensity_kernel_default.cpp"
    kernel.write_text(
        "#define CPU_CAPABILITY DEFAULT\n#define CPU_CAPABILITY_DEFAULT\n"
        f'#include "{ROOT}/csrc/cpu/cross_frame_intensity_kernel.cpp"\n'
    )
    sources = [ROOT / "csrc/registration.cpp", ROOT / "csrc/cpu/cross_frame_intensity_cpu.cpp",
               ROOT / "csrc/cpu/temporal_attention_cpu.cpp", kernel]
    cflags = ["-O3", "-fopenmp", "-DTORCH_EXTENSION_NAME=_C"]
    cuda_flags = ["-O3", "-lineinfo"]
    if archs:
        sources += [ROOT / "csrc/cuda/cross_frame_intensity.cu",
                    ROOT / "csrc/cuda/cross_frame_intensity_cuda.cpp",
                    ROOT / "csrc/cuda/temporal_attention.cu",
                    ROOT / "csrc/cuda/temporal_attention_cuda.cpp"]
        cflags.append(f'-DEAV_CUDA_ARCHS="{" ".join(archs)}"')
        cuda_flags += [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    module = cpp_extension.load(
        name="_C", sources=[str(s) for s in sources], extra_cflags=cflags,
        extra_cuda_cflags=cuda_flags, extra_ldflags=["-fopenmp"], build_directory=str(build),
        with_cuda=bool(archs), verbose=True,
    )
    target = ROOT / "eav_kernels" / ("_C" + sysconfig.get_config_var("EXT_SUFFIX"))
    shutil.copy2(module.__file__, target)
    print(f"built {target} (CUDA archs: {' '.join(archs) or 'none'})")


if __name__ == "__main__":
    main()
