"""`python -m eav_kernels.info` runs, exits 0 and reports the build: backends, CUDA arches, versions."""

from __future__ import annotations

import subprocess
import sys

import torch

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
