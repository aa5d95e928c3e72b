"""benchmarks/gpu_check.sh with a carried wheel: which wheel it picks (``select-wheel``), whether a
build's CUDA archs run on the GPU (``archs_serve``) and the check of the installed package
(``installed-extension``), all in benchmarks/gpu_check_steps.py. The install itself is rehearsed
by ``make gpu-rehearsal`` with a wheel in dist/ (docs/testing.md)."""

from __future__ import annotations

import os
import time

import pytest

from eav_kernels._extension import compiled_extension
from test_bench_gpu_scripts import BENCHMARKS, load_script

steps = load_script("gpu_check_steps")


def test_select_wheel_takes_the_newest_abi3_wheel_by_time_not_name(tmp_path, capsys):
    assert steps.main(["select-wheel", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "", "no wheel: nothing printed (gpu_check.sh then builds)"
    now = time.time()
    ages = {"eav_kernels-0.9.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl": 600,  # the greatest name, oldest
            "eav_kernels-0.1.0+cu130-cp310-abi3-manylinux_2_28_x86_64.whl": 300,  # the one to pick
            "eav_kernels-0.2.0-cp312-cp312-linux_x86_64.whl": 0,  # newest, but for one Python and one torch
            "other_package-1.0-cp310-abi3-linux_x86_64.whl": 0}
    for name, age in ages.items():
        (tmp_path / name).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
        os.utime(tmp_path / name, (now - age, now - age))
    expected = tmp_path / "eav_kernels-0.1.0+cu130-cp310-abi3-manylinux_2_28_x86_64.whl"
    assert steps.newest_wheel(tmp_path) == expected
    assert steps.main(["select-wheel", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{expected}\n"


@pytest.mark.parametrize("built, target, serves", [
    (["80", "90a"], "90a", True),   # the wheel `make wheel` builds, on the lent H200
    (["80"], "86", True),           # a cubin runs on later minors of its major
    (["86"], "80", False),          # ... not on earlier ones
    (["80"], "90a", False),         # ... nor on another major
    (["90a"], "90", True),
    (["90a"], "100", False),        # arch-specific: that capability only
    (["80+PTX"], "90a", True),      # PTX: compiled by the driver for later capabilities
    (["90+PTX"], "86", False),
    ([], "90a", False),             # no CUDA kernels at all
])
def test_archs_serve(built, target, serves):
    assert steps.archs_serve(built, target) is serves


def test_archs_serve_refuses_a_malformed_arch():
    with pytest.raises(ValueError, match="'sm_90'"):
        steps.archs_serve(["sm_90"], "90a")


@pytest.mark.skipif(compiled_extension() is None, reason="needs the built extension (make build)")
def test_installed_extension_refuses_the_checkout_and_a_foreign_arch(tmp_path, capsys):
    """make test's .venv imports the checkout's own eav_kernels (editable install): the check must
    refuse it as the installed copy, accept it when the source root is elsewhere, and refuse CUDA
    archs that cannot run on the GPU (sm_10: no build targets it)."""
    checkout = BENCHMARKS.parent
    assert steps.main(["installed-extension", "--source-root", str(checkout)]) == 1
    assert "the checkout's eav_kernels" in capsys.readouterr().out
    assert steps.main(["installed-extension", "--source-root", str(tmp_path)]) == 0
    assert "eav_kernels._C loaded from" in capsys.readouterr().out
    assert steps.main(["installed-extension", "--source-root", str(tmp_path), "--serve-archs", "10"]) == 1
    assert "cannot run on this GPU's arch 10" in capsys.readouterr().out
