"""Build of eav-kernels: setuptools hands the extension to CMake + ninja (the vLLM pattern).

Install into an environment that already has torch, without build isolation (as flash-attn does):

    pip install --no-build-isolation -e .

Environment switches: MAX_JOBS (parallel compile jobs), EAV_SKIP_CUDA_BUILD=1 (CPU only),
EAV_CUDA_ARCHS / TORCH_CUDA_ARCH_LIST (CUDA architectures, see README), EAV_BUILD_DIR (CMake's
build directory, default build/cmake).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures and builds CMakeLists.txt, placing the module where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        import torch  # build requirement: installed beforehand, no build isolation

        output = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = Path(os.environ.get("EAV_BUILD_DIR", ROOT / "build" / "cmake")).resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", str(ROOT), "-G", "Ninja",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('EAV_BUILD_TYPE', 'Release')}",
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DEAV_OUTPUT_DIR={output.parent}",
            f"-DEAV_EXTENSION_FILENAME={output.name}",
        ]
        for switch in ("EAV_SKIP_CUDA_BUILD", "EAV_CUDA_ARCHS", "TORCH_CUDA_ARCH_LIST"):
            if os.environ.get(switch):
                configure.append(f"-D{switch}={os.environ[switch]}")
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        subprocess.run(configure, cwd=build_dir, check=True)
        subprocess.run(["cmake", "--build", ".", "-j", jobs], cwd=build_dir, check=True)


setup(
    ext_modules=[CMakeExtension("eav_kernels._C")],
    cmdclass={"build_ext": CMakeBuild},
)
