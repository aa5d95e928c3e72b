"""`python -m eav_kernels.info` runs, exits 0 and reports the build: backends, CUDA arches, versions."""

from __future__ import annotations

import subprocess
import sys

import torch

from eav_kernels._extension import compiled_extension
from eav_kernels.info import collect_info


def test_info_command_exits_zero_and_reports():
    result = subprocess.run(
        [sys.executable, "-m", "eav_kernels.info"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for field in ("torch", "triton", "diffusers", "CUDA archs", "CPU kernel", "cpu ", "reference"):
        assert field in result.stdout, (field, result.stdout)


def test_collect_info_probes_every_device():
    info = collect_info()
    assert info["torch"] == torch.__version__
    assert "cpu" in info["devices"]
    assert info["devices"]["cpu"]["backends"]["reference"] is None
    if torch.cuda.is_available():
        assert "cuda:0" in info["devices"]


def test_info_reports_the_torch_the_extension_was_built_for():
    info = collect_info()
    if compiled_extension() is None:
        assert info["extension"].startswith("not built (") and info["parallel_region_threads"] is None
        return
    assert info["extension"] == "built"
    assert info["extension_torch_target"] is not None and info["extension_torch_built_with"] is not None
    assert torch.__version__ >= info["extension_torch_target"]
    assert 1 <= info["parallel_region_threads"] <= torch.get_num_threads()
