"""Fallback build of eav_kernels._C without CMake (for GPU machines that have torch, nvcc and
ninja but no cmake): torch.utils.cpp_extension compiles the sources of csrc/build_manifest.txt.
The CPU kernel is built once (DEFAULT capability), the CUDA kernels for EAV_CUDA_ARCHS (e.g.
"90a") or the visible GPU. The module is copied to eav_kernels/_C.abi3.so, next to its build
record (_C_build.json), where the package imports it.

cpp_extension gives every C++ source the same flags, but the torch-facing sources need
TORCH_TARGET_VERSION (stable ABI) and the CPU kernel must not have it (it includes at::vec): each
source is compiled through a generated one-line wrapper that sets its own macros.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch
from torch.utils import cpp_extension

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_manifest import ROOT, cuda_toolkit, read_manifest, write_build_record  # noqa: E402


def wrapper(build: Path, source: str, defines: dict[str, str]) -> Path:
    """build/<name>: #define each of `defines`, then #include the source (absolute path)."""
    path = build / (Path(source).stem + "_wrapped.cpp")
    lines = [f"#define {name} {value}".rstrip() for name, value in defines.items()]
    path.write_text("\n".join(lines + [f'#include "{ROOT / source}"', ""]))
    return path


def main() -> None:
    manifest = read_manifest()
    archs = os.environ.get("EAV_CUDA_ARCHS", "").replace(";", " ").split()
    if not archs and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        archs = [f"{major}{minor}" + ("a" if major == 9 else "")]
    toolkit = cuda_toolkit(torch.version.cuda) if archs else None
    if archs and toolkit is None:
        raise SystemExit(f"build_with_torch: CUDA archs {archs} asked for, but torch "
                         f"{torch.__version__} is not a CUDA build, no nvcc was found, or EAV_SKIP_CUDA_BUILD is set")
    build = ROOT / "build" / "torch-extension"
    build.mkdir(parents=True, exist_ok=True)
    stable = {"TORCH_TARGET_VERSION": manifest.torch_target_hex,
              "Py_LIMITED_API": manifest.python_limited_hex}
    sources = [wrapper(build, source, stable) for source in manifest.sources["host"]]
    sources += [wrapper(build, source, {"CPU_CAPABILITY": "DEFAULT", "CPU_CAPABILITY_DEFAULT": ""})
                for source in manifest.sources["cpu_kernel"]]
    cflags = ["-O3", "-fvisibility=hidden", "-fvisibility-inlines-hidden"]
    cuda_flags = ["-O3", "-lineinfo"]
    if toolkit:
        sources += [wrapper(build, source, dict(stable, USE_CUDA="1"))
                    for source in manifest.sources["cuda_host"]]
        sources += [ROOT / source for source in manifest.sources["cuda_kernel"]]
        cflags.append(f'-DEAV_CUDA_ARCHS="{" ".join(archs)}"')
        cuda_flags += [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    module = cpp_extension.load(
        name="_C", sources=[str(s) for s in sources], extra_cflags=cflags,
        extra_cuda_cflags=cuda_flags, build_directory=str(build), with_cuda=bool(toolkit),
        verbose=True,
    )
    package = ROOT / "eav_kernels"
    target = package / "_C.abi3.so"
    for other in package.glob("_C.*so"):  # another ABI tag would be imported first
        other.unlink()
    shutil.copy2(module.__file__, target)
    write_build_record(package, manifest, torch.__version__, toolkit, ["DEFAULT"])
    print(f"built {target} (CUDA archs: {' '.join(archs) or 'none'})")


if __name__ == "__main__":
    main()
