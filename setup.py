"""Build of eav-kernels: setuptools hands the extension to CMake + ninja (the vLLM pattern).

Install into an environment that already has torch, without build isolation (as flash-attn does):

    pip install --no-build-isolation -e .

The extension uses torch's stable C ABI and Python's limited API (csrc/build_manifest.txt names
the oldest torch and CPython), so a wheel built here is tagged ``cp310-abi3`` and requires
``torch>=<that version>``; its local version names the CUDA its kernels carry (``+cu130``), or
``+cpu`` without CUDA kernels.

Environment switches: MAX_JOBS (parallel compile jobs), EAV_SKIP_CUDA_BUILD=1 (CPU only),
EAV_CUDA_ARCHS / TORCH_CUDA_ARCH_LIST (CUDA architectures, see README), EAV_BUILD_DIR (CMake's
build directory, default build/cmake), EAV_BUILD_TYPE (default Release).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
from build_manifest import (RECORD_NAME, built_cpu_capabilities, cuda_toolkit, read_manifest,  # noqa: E402
                            write_build_record)

import torch  # noqa: E402  build requirement: installed beforehand, no build isolation

MANIFEST = read_manifest()
TOOLKIT = cuda_toolkit(torch.version.cuda)


def package_version() -> str:
    """eav_kernels.__version__ plus the local label of what the binary carries: +cu130 or +cpu."""
    text = (ROOT / "eav_kernels" / "__init__.py").read_text()
    base = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)
    return f"{base}+{TOOLKIT.local_version if TOOLKIT else 'cpu'}"


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[], py_limited_api=True)


class CMakeBuild(build_ext):
    """Configures and builds CMakeLists.txt, placing the module (and its build record,
    eav_kernels/_C_build.json) where setuptools expects it."""

    def build_extension(self, ext: Extension) -> None:
        output = Path(self.get_ext_fullpath(ext.name)).resolve()
        remove_other_builds(output)
        build_dir = Path(os.environ.get("EAV_BUILD_DIR", ROOT / "build" / "cmake")).resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        # cmake and ninja of this environment (the build requirements) before any other on PATH.
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        configure = [
            "cmake", str(ROOT), "-G", "Ninja",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('EAV_BUILD_TYPE', 'Release')}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DEAV_OUTPUT_DIR={output.parent}",
            f"-DEAV_EXTENSION_FILENAME={output.name}",
            f"-DEAV_BUILD_CUDA={'ON' if TOOLKIT else 'OFF'}",
        ]
        if TOOLKIT:
            configure.append(f"-DCMAKE_CUDA_COMPILER={TOOLKIT.nvcc}")
        for switch in ("EAV_CUDA_ARCHS", "TORCH_CUDA_ARCH_LIST"):
            configure.append(f"-D{switch}={os.environ.get(switch, '')}")
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        subprocess.run(configure, cwd=build_dir, check=True, env=env)
        subprocess.run(["cmake", "--build", ".", "-j", jobs], cwd=build_dir, check=True, env=env)
        write_build_record(output.parent, MANIFEST, torch.__version__, TOOLKIT,
                           built_cpu_capabilities(MANIFEST))

    # The build record travels with _C: into the wheel (get_outputs) and, for editable installs,
    # into the source tree (the in-place copy).
    def get_outputs(self) -> list[str]:
        outputs = super().get_outputs()
        if self.inplace:
            return outputs
        return outputs + [str(Path(path).with_name(RECORD_NAME)) for path in outputs
                          if Path(path).name.startswith("_C.")]

    def _get_output_mapping(self):
        for built, in_place in super()._get_output_mapping():
            yield built, in_place
            if Path(built).name.startswith("_C."):
                yield str(Path(built).with_name(RECORD_NAME)), str(Path(in_place).with_name(RECORD_NAME))

    def copy_extensions_to_source(self) -> None:
        super().copy_extensions_to_source()
        for built, in_place in self._get_output_mapping():
            if Path(built).name == RECORD_NAME:
                remove_other_builds(Path(in_place).with_name(Path(self.get_ext_filename("eav_kernels._C")).name))
                self.copy_file(built, in_place, level=self.verbose)


def remove_other_builds(extension: Path) -> None:
    """Deletes any _C of another ABI tag next to `extension` (e.g. _C.cpython-311-...so from an
    older build): Python would import it before _C.abi3.so."""
    for other in extension.parent.glob("_C.*so"):
        if other.name != extension.name:
            other.unlink()


setup(
    version=package_version(),
    ext_modules=[CMakeExtension("eav_kernels._C")],
    cmdclass={"build_ext": CMakeBuild},
    options={"bdist_wheel": {"py_limited_api": MANIFEST.python_tag}},
)
