"""What this installation of eav-kernels can do here: ``python -m eav_kernels.info``.

Prints the backends (built, and usable for small probe tensors on each device present), the CUDA
architectures compiled into ``eav_kernels._C`` and the torch it was built with and for, the
versions of torch / triton / diffusers / CUDA, the devices, and the CPU kernel build (capability,
threads of its parallel regions). Always exits 0: it reports, it does
not judge. ``collect_info()`` returns the same as a dict (for bug reports and tests).
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

import torch

from . import __version__
from ._abi_check import build_record
from ._extension import compiled_extension, extension_import_error
from .backends import BACKEND_PRIORITY, available_backends

__all__ = ["collect_info", "format_info", "main"]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return devices


def _device_name(device: str) -> str:
    if device == "cpu":
        return platform.processor() or platform.machine()
    properties = torch.cuda.get_device_properties(device)
    return f"{properties.name} (sm_{properties.major}{properties.minor}, {properties.total_memory / 2**30:.0f} GiB)"


def collect_info() -> dict[str, Any]:
    """Everything ``python -m eav_kernels.info`` prints, as plain data."""
    extension = compiled_extension()
    record = build_record() or {}
    info: dict[str, Any] = {
        "eav_kernels": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _version("triton"),
        "diffusers": _version("diffusers"),
        "extension": "built" if extension is not None else f"not built ({extension_import_error()})",
        "extension_torch_built_with": record.get("torch_built_with"),
        "extension_torch_target": record.get("torch_target"),
        "cuda_archs": extension.cuda_archs() if extension is not None else "",
        "cpu_kernel_capability": extension.cpu_kernel_capability() if extension is not None else None,
        "parallel_region_threads": extension.parallel_region_threads() if extension is not None else None,
        "cpu_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "devices": {},
    }
    for device in _probe_devices():
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
        probe = torch.randn(1, 2, 2 * 3, 8, device=device).to(dtype)  # [B, H, F*S, D], F = 2
        reasons = available_backends(probe, probe)
        usable = [name for name in BACKEND_PRIORITY if reasons.get(name, "unknown") is None]
        info["devices"][device] = {
            "name": _device_name(device),
            "probe_dtype": str(dtype).removeprefix("torch."),
            "auto": usable[0] if usable else None,
            "backends": reasons,
        }
    return info


def format_info(info: dict[str, Any]) -> str:
    lines = [
        f"eav-kernels {info['eav_kernels']} (python {info['python']})",
        f"torch        {info['torch']} (CUDA {info['torch_cuda'] or 'none: CPU build'})",
        f"triton       {info['triton'] or 'not installed'}",
        f"diffusers    {info['diffusers'] or 'not installed'}",
        f"extension    eav_kernels._C {info['extension']}"
        + (f" (with torch {info['extension_torch_built_with']}, for torch >= "
           f"{info['extension_torch_target']}: stable ABI)" if info["extension_torch_target"] else ""),
        f"CUDA archs   {info['cuda_archs'] or 'none (CUDA kernels not built)'}",
        f"CPU kernel   {info['cpu_kernel_capability']}, threads in a parallel region: "
        f"{info['parallel_region_threads']}, torch threads: {info['cpu_threads']}",
        f"CUDA device  {'available' if info['cuda_available'] else 'none visible'}",
    ]
    for device, entry in info["devices"].items():
        lines.append(f"{device:<12} {entry['name']}: auto -> {entry['auto']} "
                     f"(probe {entry['probe_dtype']})")
        for name, reason in entry["backends"].items():
            lines.append(f"  {name:<10} {'usable' if reason is None else 'no: ' + reason}")
    return "\n".join(lines)


def main() -> int:
    print(format_info(collect_info()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
