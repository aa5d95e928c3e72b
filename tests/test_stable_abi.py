"""eav_kernels._C on torch's stable C ABI: what makes one binary load in every torch from
csrc/build_manifest.txt's torch_target on, and what happens where it cannot load.

- the library imports no C++ symbol of libtorch (only the stable C functions aoti_torch_* /
  torch_*), and exports nothing but PyInit__C;
- the wheel's `torch>=` bound is the manifest's torch_target;
- a _C built for a newer torch than the running one (or with CUDA kernels under a CPU torch) is
  refused before it is loaded, with both versions in the message, and the package falls back to
  its pure-Python backends; a _C that fails to load for another reason says the same versions;
- the CPU kernel build follows the capability torch itself runs at.
The same suite runs against torch 2.11 with a wheel built against 2.13 (`make wheel-compat`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import eav_kernels
from eav_kernels._abi_check import build_record, incompatibility
from eav_kernels._extension import compiled_extension

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_manifest import read_manifest  # noqa: E402

requires_extension = pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")
# _ZN / _ZNK ... followed by the namespace c10, at or torch: a C++ function or object of libtorch.
TORCH_CPP_SYMBOL = re.compile(r"^_ZN[KVRO]*(3c10|2at|5torch)")


def _dynamic_symbols(library: str, *flags: str) -> list[tuple[str, str]]:
    """(type, name) of the dynamic symbols `nm -D <flags>` lists."""
    output = subprocess.run(["nm", "-D", *flags, library], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in output.splitlines()]
    return [(row[-2], row[-1]) for row in rows if len(row) >= 2]


@requires_extension
@pytest.mark.skipif(shutil.which("nm") is None, reason="no nm (binutils) on this machine")
def test_extension_uses_only_the_stable_c_abi_of_torch():
    library = compiled_extension().__file__
    undefined = [name for _, name in _dynamic_symbols(library, "--undefined-only")]
    cpp = [name for name in undefined if TORCH_CPP_SYMBOL.match(name)]
    assert cpp == [], f"{library} imports C++ symbols of libtorch (not ABI-stable): {cpp}"
    assert any(name.startswith("torch_call_dispatcher") for name in undefined), undefined
    exported_functions = [name for kind, name in _dynamic_symbols(library, "--defined-only") if kind == "T"]
    assert exported_functions == ["PyInit__C"], exported_functions


def test_wheel_requires_the_torch_the_manifest_targets():
    manifest = read_manifest()
    pyproject = (ROOT / "pyproject.toml").read_text()
    bounds = re.findall(r'"torch>=([0-9.]+)"', pyproject)
    assert bounds == [manifest.torch_target], (bounds, manifest.torch_target)
    assert manifest.torch_target_hex == "0x{:02x}{:02x}000000000000".format(
        *map(int, manifest.torch_target.split(".")))


@requires_extension
def test_build_record_describes_this_build():
    record = build_record()
    assert record is not None, "eav_kernels/_C_build.json is missing next to _C"
    assert record["torch_target"] == read_manifest().torch_target
    assert record["torch_built_with"].split("+")[0].count(".") == 2, record
    assert (record["cuda"] is None) == (compiled_extension().cuda_archs() == ""), record


RECORD = {"torch_target": "2.10", "torch_built_with": "2.13.0+cu130", "cuda": "13.0", "python_limited": "3.10"}


@pytest.mark.parametrize("running, cuda, refused", [
    ("2.9.1", "12.8", True), ("2.10.0", "13.0", False), ("2.11.0+cu130", "13.0", False),
    ("2.13.0", "12.6", False), ("2.13.0+cpu", None, True), ("2.10.0a0+git1234", "13.0", True),
])
def test_incompatibility_names_both_versions(running, cuda, refused):
    reason = incompatibility(RECORD, running, cuda)
    assert (reason is not None) == refused, reason
    if refused:
        assert running in reason and "2.13.0+cu130" in reason and "2.10" in reason, reason


def _package_copy(tmp_path: Path) -> Path:
    """A copy of the imported package (with _C and its record: the source tree's, or an installed
    wheel's) that a subprocess imports first."""
    package = tmp_path / "eav_kernels"
    shutil.copytree(Path(eav_kernels.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    if not (package / "triton_kernels").exists():
        shutil.copytree(ROOT / "triton_kernels", package / "triton_kernels",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return package


FALLBACK_PROBE = textwrap.dedent("""
    import torch, eav_kernels as eav
    from eav_kernels._extension import compiled_extension, extension_import_error
    q = torch.randn(1, 2, 6, 8)
    cfi = eav.cross_frame_intensity(q, q, 3, backend="reference")
    assert compiled_extension() is None
    assert eav.available_backends(q, q)["cpu"] is not None
    print("FALLBACK", torch.__version__, extension_import_error())
""")


def _run_fallback_probe(tmp_path: Path) -> str:
    result = subprocess.run([sys.executable, "-c", FALLBACK_PROBE], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout


@requires_extension
def test_extension_for_a_newer_torch_is_refused_and_the_package_falls_back(tmp_path):
    record_path = _package_copy(tmp_path) / "_C_build.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(dict(record, torch_target="99.0")))
    output = _run_fallback_probe(tmp_path)
    assert "FALLBACK" in output and "99.0" in output and torch.__version__ in output, output
    assert record["torch_built_with"] in output, output


@requires_extension
def test_extension_that_fails_to_load_says_which_torch(tmp_path):
    package = _package_copy(tmp_path)
    for library in package.glob("_C.*so"):
        library.write_bytes(b"not an ELF file")
    output = _run_fallback_probe(tmp_path)
    record = build_record()
    assert f"failed to load in torch {torch.__version__}" in output, output
    assert record["torch_built_with"] in output, output


@requires_extension
@pytest.mark.skipif("AVX2" not in (build_record() or {}).get("cpu_capabilities", []),
                    reason="this _C holds only the portable CPU kernel (not x86-64, or tools/build_with_torch.py)")
@pytest.mark.parametrize("forced", [None, "avx2"])
def test_cpu_kernel_build_follows_the_capability_torch_runs_at(forced, tmp_path):
    """csrc/cpu/cpu_capability.cpp mirrors torch's rule (not in the stable ABI): both must agree."""
    script = textwrap.dedent("""
        import torch
        from eav_kernels._extension import compiled_extension
        print(torch.backends.cpu.get_cpu_capability(), compiled_extension().cpu_kernel_capability())
    """)
    env = {key: value for key, value in os.environ.items() if key != "ATEN_CPU_CAPABILITY"}
    if forced:
        env["ATEN_CPU_CAPABILITY"] = forced
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)  # the package the tests import
    assert result.returncode == 0, result.stderr[-3000:]
    torch_capability, ours = result.stdout.split()[-2:]
    has_bf16 = "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    built = build_record()["cpu_capabilities"]
    expected = {"AVX512": "AVX512_BF16" if has_bf16 and "AVX512_BF16" in built else "AVX2",
                "AVX2": "AVX2"}.get(torch_capability, "DEFAULT")
    assert ours == expected, (torch_capability, ours)
