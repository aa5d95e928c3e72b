"""What eav_kernels._C is built from and for, for the Python side of the build.

``csrc/build_manifest.txt`` is the one list of sources (CMake reads it in cmake/manifest.cmake);
this module reads it for setup.py, tools/build_with_torch.py and tools/cuda_check.sh, decides
whether the CUDA kernels are built (one rule for every build path), and writes the build record
``eav_kernels/_C_build.json`` that eav_kernels/_abi_check.py reads before loading ``_C``.

    python tools/build_manifest.py sources cuda_kernel    # one path per line (for shell scripts)
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "csrc" / "build_manifest.txt"
RECORD_NAME = "_C_build.json"  # next to _C in the installed package
SOURCE_KINDS = ("host", "cpu_kernel", "cuda_host", "cuda_kernel")


@dataclass(frozen=True)
class Manifest:
    torch_target: str  # "2.10": the oldest torch whose stable ABI _C uses
    python_limited: str  # "3.10": the oldest CPython whose limited API _C uses
    sources: dict[str, list[str]]  # kind -> paths relative to ROOT
    cpu_capabilities: dict[str, list[str]] = field(default_factory=dict)  # name -> [VEC, flags...]

    @property
    def torch_target_hex(self) -> str:
        """TORCH_TARGET_VERSION: major << 56 | minor << 48 (torch/csrc/stable/version.h)."""
        major, minor = (int(part) for part in self.torch_target.split("."))
        return f"0x{major:02x}{minor:02x}000000000000"

    @property
    def python_limited_hex(self) -> str:
        """Py_LIMITED_API: PY_VERSION_HEX of the oldest CPython, e.g. 0x030a0000."""
        major, minor = (int(part) for part in self.python_limited.split("."))
        return f"0x{major:02x}{minor:02x}0000"

    @property
    def python_tag(self) -> str:
        """The wheel's abi3 Python tag, e.g. cp310."""
        return "cp" + self.python_limited.replace(".", "")


def read_manifest(path: Path = MANIFEST) -> Manifest:
    values: dict[str, str] = {}
    sources: dict[str, list[str]] = {kind: [] for kind in SOURCE_KINDS}
    capabilities: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or line.startswith("#"):
            continue
        kind, rest = fields[0], fields[1:]
        if kind in ("torch_target", "python_limited") and len(rest) == 1:
            values[kind] = rest[0]
        elif kind in SOURCE_KINDS and len(rest) == 1:
            sources[kind].append(rest[0])
        elif kind == "cpu_capability" and len(rest) >= 2:
            capabilities[rest[0]] = rest[1:]
        else:
            raise ValueError(f"{path}:{number}: cannot read {line!r}")
    return Manifest(values["torch_target"], values["python_limited"], sources, capabilities)


@dataclass(frozen=True)
class CudaToolkit:
    nvcc: str
    version: str  # "13.0"

    @property
    def local_version(self) -> str:
        """The wheel's local version label: cu130 for CUDA 13.0."""
        return "cu" + self.version.replace(".", "")


def built_cpu_capabilities(manifest: Manifest) -> list[str]:
    """The CPU kernel builds CMake makes here (cmake/manifest.cmake, CMakeLists.txt): every
    cpu_capability of the manifest on x86-64, DEFAULT elsewhere."""
    return list(manifest.cpu_capabilities) if platform.machine() in ("x86_64", "AMD64") else ["DEFAULT"]


def nvcc_version(nvcc: str) -> str:
    output = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"release (\d+)\.(\d+)", output)
    if match is None:
        raise RuntimeError(f"cannot read the CUDA version from `{nvcc} --version`:\n{output}")
    return f"{match.group(1)}.{match.group(2)}"


def cuda_toolkit(torch_cuda: str | None) -> CudaToolkit | None:
    """The toolkit the CUDA kernels are built with, or None when they are not built: when
    EAV_SKIP_CUDA_BUILD is set (not "0"), when torch is not a CUDA build (``torch.version.cuda``
    is None: the launchers need libtorch_cuda), or when no nvcc is found (CUDACXX, then
    $CUDA_HOME/bin, then PATH, then /usr/local/cuda/bin)."""
    if os.environ.get("EAV_SKIP_CUDA_BUILD", "0") not in ("", "0") or not torch_cuda:
        return None
    candidates = [os.environ.get("CUDACXX"),
                  os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
                  shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    for nvcc in candidates:
        if nvcc and os.access(nvcc, os.X_OK):
            nvcc = toolkit_nvcc(nvcc)
            return CudaToolkit(nvcc, nvcc_version(nvcc))
    return None


def toolkit_nvcc(nvcc: str) -> str:
    """The nvcc inside its toolkit directory: a wrapper script on PATH (/usr/local/bin/nvcc
    running /usr/local/cuda-13.0/bin/nvcc) would hide where the headers and libraries are."""
    dryrun = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                            capture_output=True, text=True)
    match = re.search(r"^#\$ TOP=(.+)$", dryrun.stderr + dryrun.stdout, re.MULTILINE)
    real = Path(match.group(1).strip()).resolve() / "bin" / "nvcc" if match else None
    return str(real) if real is not None and os.access(real, os.X_OK) else nvcc


def write_build_record(directory: Path, manifest: Manifest, torch_version: str,
                       toolkit: CudaToolkit | None, cpu_capabilities: list[str]) -> Path:
    """Writes _C_build.json next to _C: what eav_kernels._abi_check needs to know before it loads
    the library (the torch range, the CUDA the kernels need), and which builds of the CPU kernel
    it holds."""
    record = {
        "torch_target": manifest.torch_target,
        "torch_built_with": torch_version,
        "cuda": toolkit.version if toolkit else None,
        "python_limited": manifest.python_limited,
        "cpu_capabilities": cpu_capabilities,
    }
    path = Path(directory) / RECORD_NAME
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "sources" and argv[1] in SOURCE_KINDS:
        print("\n".join(read_manifest().sources[argv[1]]))
        return 0
    if len(argv) == 1 and argv[0] in ("torch_target", "python_limited", "torch_target_hex"):
        print(getattr(read_manifest(), argv[0]))
        return 0
    print(f"usage: {sys.argv[0]} sources {{{','.join(SOURCE_KINDS)}}} | torch_target | "
          "torch_target_hex | python_limited", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
