"""`make cuda-check` as part of the test suite: every .cu compiles for sm_80 and sm_90a with this
machine's nvcc and the cubins are really in the object (no GPU, no CUDA torch needed).

The script caches its outputs by a hash of the sources, so after `make cuda-check` this only
re-lists the cubins; a cold run takes ~50 s on 2 cores (nvcc and the launcher check in parallel).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nvcc() -> str | None:
    return os.environ.get("NVCC") or shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None
    )


@pytest.mark.aot
@pytest.mark.skipif(_nvcc() is None, reason="no nvcc on this machine (CUDA toolkit not installed)")
def test_cuda_sources_compile_for_sm80_and_sm90a():
    env = dict(os.environ, NVCC=_nvcc(), PYTHON=sys.executable, CUDA_CHECK_ARCHS="80 90a")
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "cuda_check.sh")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "sm_80" in output and "sm_90a" in output, output
    assert "cuda-check: OK" in output, output
    for kernel in ("cross_frame_intensity", "temporal_attention"):  # contracts 1 and 2
        for arch in ("sm_80", "sm_90a"):
            assert f"{kernel}.{arch}.cubin" in output, output
