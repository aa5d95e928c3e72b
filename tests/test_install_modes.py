"""``eav_kernels.triton_kernels`` resolves to the repository's ``triton_kernels/`` folder in every
install mode, and no install adds a top-level ``triton_kernels`` module (docs/design.md):

- this test session's own install (editable, or the wheel under ``make wheel-compat``);
- a plain copy of the repository on ``PYTHONPATH`` (what ``tools/build_with_torch.py`` leaves);
- the wheel's layout (setuptools' ``build_py``, the step that lays out a wheel's Python files).

Each mode runs in a child interpreter started with ``-S`` (no site-packages, so no editable
finder), the environment's packages given on ``PYTHONPATH`` after the tree under test.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import eav_kernels

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import importlib.util, sys
import eav_kernels, eav_kernels.triton_kernels as kernels
print(kernels.__file__)
top_level = importlib.util.find_spec("triton_kernels")
print(top_level.origin if top_level else None)
if len(sys.argv) > 1:  # also run a Triton kernel (interpreter) from this tree
    import torch
    q = torch.randn(1, 2, 4 * 3, 16)
    triton = eav_kernels.cross_frame_intensity(q, q, 4, backend="triton")
    reference = eav_kernels.cross_frame_intensity(q, q, 4, backend="reference")
    torch.testing.assert_close(triton, reference, rtol=1e-5, atol=1e-6)
    print("triton ok")
"""


def _probe(tree: Path, cwd: Path, run_triton: bool = False) -> list[str]:
    """Runs PROBE with only ``tree`` and the environment's packages importable; its stdout lines."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), sysconfig.get_paths()["purelib"]]),
               TRITON_INTERPRET="1")
    env.pop("EAV_BACKEND", None)
    command = [sys.executable, "-S", "-c", PROBE] + (["triton"] if run_triton else [])
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _copy_extension(package: Path) -> None:
    """The built extension module, if any, next to the copied package (as an install has it)."""
    for built in Path(eav_kernels.__file__).parent.glob("_C*.so"):
        shutil.copy2(built, package / built.name)


def test_this_install_maps_the_folder():
    """Editable (the package imported from this checkout): the checkout's ``triton_kernels/``;
    installed from a wheel (``make wheel-compat``): the package's own ``triton_kernels/``."""
    import eav_kernels.triton_kernels as kernels

    package = Path(eav_kernels.__file__).resolve().parent
    editable = package == REPO / "eav_kernels"
    expected = REPO / "triton_kernels" if editable else package / "triton_kernels"
    assert Path(kernels.__file__).resolve() == expected / "__init__.py"


def test_plain_copy_on_pythonpath(tmp_path):
    tree = tmp_path / "checkout"
    for folder in ("eav_kernels", "triton_kernels"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    _copy_extension(tree / "eav_kernels")
    triton = importlib.util.find_spec("triton") is not None
    lines = _probe(tree, cwd=tmp_path, run_triton=triton)
    assert Path(lines[0]) == tree / "triton_kernels" / "__init__.py"
    if triton:
        assert lines[-1] == "ok"


def test_wheel_layout_has_no_top_level_triton_kernels(tmp_path):
    build = tmp_path / "build-lib"
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (build / "eav_kernels" / "triton_kernels" / "cross_frame_intensity.py").is_file()
    assert not (build / "triton_kernels").exists()
    _copy_extension(build / "eav_kernels")
    lines = _probe(build, cwd=tmp_path)
    assert Path(lines[0]) == build / "eav_kernels" / "triton_kernels" / "__init__.py"
    assert lines[1] == "None" or not lines[1].startswith(str(build)), lines
