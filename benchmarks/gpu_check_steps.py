"""The Python steps of benchmarks/gpu_check.sh, run with the interpreter it chose.

    python benchmarks/gpu_check_steps.py preflight [--rehearsal]
    python benchmarks/gpu_check_steps.py pytest-summary REPORT.xml [--expect-all-skipped]
    python benchmarks/gpu_check_steps.py select-wheel DIST_DIR
    python benchmarks/gpu_check_steps.py installed-extension --source-root ROOT [--serve-archs "90a"]

``preflight`` prints the versions and devices it finds and exits 2, with one ``FATAL:`` line per
problem, when torch, Triton or pytest cannot be imported, torch is a CPU build, or no CUDA device
is visible: the GPU check then stops in its first seconds instead of failing later, step by step.
In a rehearsal (a CPU machine standing in for the GPU one) a CPU build of torch and the missing
device are expected and only noted. Build tools (pip, setuptools, cmake, ninja, nvcc) are reported,
not required: gpu_check.sh picks its build from what is there.

``pytest-summary`` reads a JUnit XML report and prints tests, passed, failed, errors and skipped,
with every distinct skip reason; with ``--expect-all-skipped`` (a rehearsal's ``pytest -m gpu``) it
exits 1 unless at least one test was collected and every one was skipped with a reason.

``select-wheel`` prints the newest (by modification time) ``eav_kernels-*-abi3-*.whl`` in DIST_DIR,
or nothing when there is none: the wheel gpu_check.sh installs instead of compiling.

``installed-extension`` (run from outside the source tree) imports the installed ``eav_kernels``
and exits 1, saying why, unless it is not the source tree's copy, its ``_C`` loaded, and its CUDA
archs serve every arch of ``--serve-archs`` (a GPU's arch as gpu_check.sh names it: ``90a``,
``86``); gpu_check.sh then builds from source instead.

Only the standard library is imported at module level, so both run under any interpreter.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

REQUIRED_MODULES = ["torch", "triton", "pytest"]
BUILD_MODULES = ["pip", "setuptools", "cmake", "ninja"]  # pip packages; cmake/ninja may be binaries
WHEEL_PATTERN = "eav_kernels-*-abi3-*.whl"  # one wheel for every CPython >= 3.10 (docs/wheels.md)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def preflight(rehearsal: bool) -> int:
    """Prints what the machine offers; returns 2 when the GPU check cannot do its job here."""
    fatal: list[str] = []
    print(f"python {sys.version.split()[0]} at {sys.executable} (prefix {sys.prefix}, "
          f"venv: {sys.prefix != sys.base_prefix})")
    for name in REQUIRED_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - any import failure is the message
            fatal.append(f"{name} is not importable: {type(error).__name__}: {error}")
            continue
        print(f"{name} {getattr(module, '__version__', '?')} from {module.__file__}")
    for name in BUILD_MODULES:
        print(f"{name} (python package): {_version(name) or 'absent'}")
    for tool in ("cmake", "ninja", "nvcc", "nvidia-smi"):
        print(f"{tool} on PATH: {shutil.which(tool) or 'absent'}")
    print(f"diffusers: {_version('diffusers') or 'absent (the tests that need it skip)'}")

    if "torch" in sys.modules:
        import torch

        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        print(f"torch CUDA build: {torch.version.cuda or 'none (CPU build)'}; devices: {cuda_devices}")
        for index in range(cuda_devices):
            major, minor = torch.cuda.get_device_capability(index)
            print(f"  cuda:{index} {torch.cuda.get_device_name(index)} sm_{major}{minor}")
        problems = []
        if torch.version.cuda is None:
            problems.append("torch is a CPU build: no CUDA kernel can be built or run")
        elif cuda_devices == 0:
            problems.append("no CUDA device is visible to torch")
        for problem in problems:
            if rehearsal:
                print(f"rehearsal: {problem} (expected here: the script stops before the GPU steps)")
            else:
                fatal.append(problem)
    for line in fatal:
        print(f"FATAL: {line}")
    if fatal:
        print("FATAL: stopping now; nothing after this step could produce a result")
        return 2
    return 0


def pytest_summary(report: str, expect_all_skipped: bool) -> int:
    """Prints the counts of a JUnit XML report (and the skip reasons); see the module docstring."""
    root = ElementTree.parse(report).getroot()
    cases = root.findall(".//testcase")
    outcome: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for case in cases:
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome[kind] += 1
                if kind == "skipped":
                    reasons[(element.get("message") or "").strip()] += 1
                break
        else:
            outcome["passed"] += 1
    print(f"{report}: {len(cases)} tests, {outcome['passed']} passed, {outcome['failure']} failed, "
          f"{outcome['error']} errors, {outcome['skipped']} skipped")
    for reason, count in reasons.most_common():
        print(f"  {count:4d} skipped: {reason or '<no reason given>'}")
    if not expect_all_skipped:
        return 0
    if not cases or outcome["skipped"] != len(cases) or "" in reasons:
        print("expected every collected test to be skipped with a reason, and at least one test")
        return 1
    return 0


def newest_wheel(dist: Path) -> Path | None:
    """The most recently modified wheel in ``dist`` matching WHEEL_PATTERN, or None."""
    wheels = [path for path in dist.glob(WHEEL_PATTERN) if path.is_file()]
    return max(wheels, key=lambda path: path.stat().st_mtime, default=None)


def _capability(arch: str) -> tuple[int, int, str]:
    """(major, minor, suffix) of an arch entry: "90a" -> (9, 0, "a"), "80+PTX" -> (8, 0, "+PTX")."""
    match = re.fullmatch(r"(\d+)(\d)([a-z]?(?:\+PTX)?)", arch)
    if match is None:
        raise ValueError(f"not a CUDA arch like '80', '90a' or '80+PTX': {arch!r}")
    return int(match[1]), int(match[2]), match[3]


def archs_serve(built: list[str], target: str) -> bool:
    """Whether kernels built for the archs ``built`` run on a GPU of arch ``target`` ("90a", "86").

    A cubin runs on its own major version from its minor on, except an arch-specific one ("90a"),
    which runs only on that exact capability; embedded PTX ("80+PTX") is compiled by the driver for
    any later capability.
    """
    major, minor, _ = _capability(target)
    for arch in built:
        built_major, built_minor, suffix = _capability(arch)
        if "+PTX" in suffix and (built_major, built_minor) <= (major, minor):
            return True
        if built_major == major and (built_minor == minor if suffix.startswith("a") else built_minor <= minor):
            return True
    return False


def installed_extension(source_root: str, serve_archs: list[str]) -> int:
    """Checks the installed eav_kernels and its _C (see the module docstring); 0 when usable."""
    import eav_kernels
    from eav_kernels._extension import compiled_extension, extension_import_error

    location = Path(eav_kernels.__file__).resolve()
    print(f"eav_kernels {eav_kernels.__version__} from {location}")
    problems = []
    if location.is_relative_to(Path(source_root).resolve() / "eav_kernels"):
        problems.append(f"the checkout's eav_kernels ({location.parent}) was imported, not the installed one")
    extension = compiled_extension()
    if extension is None:
        problems.append(f"eav_kernels._C did not load (the package fell back to Python backends): "
                        f"{extension_import_error()}")
    else:
        built = extension.cuda_archs().split()
        print(f"eav_kernels._C loaded from {extension.__file__}; CUDA archs: {' '.join(built) or 'none'}")
        problems += [f"its CUDA archs ({' '.join(built) or 'none'}) cannot run on this GPU's arch {target}"
                     for target in serve_archs if not archs_serve(built, target)]
    for problem in problems:
        print(f"not usable: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("preflight", help="versions, devices; exit 2 when torch/Triton/CUDA is missing")
    check.add_argument("--rehearsal", action="store_true", help="a CPU machine standing in for the GPU one")
    summary = commands.add_parser("pytest-summary", help="counts and skip reasons of a JUnit XML report")
    summary.add_argument("report")
    summary.add_argument("--expect-all-skipped", action="store_true")
    select = commands.add_parser("select-wheel", help=f"the newest {WHEEL_PATTERN} in a folder")
    select.add_argument("dist", type=Path)
    installed = commands.add_parser("installed-extension", help="is the installed eav_kernels._C usable here")
    installed.add_argument("--source-root", required=True, help="the checkout, whose eav_kernels must not be used")
    installed.add_argument("--serve-archs", default="", help='the GPU arch(s) to run on, ";"-separated: "90a"')
    args = parser.parse_args(argv)
    if args.command == "preflight":
        return preflight(args.rehearsal)
    if args.command == "select-wheel":
        wheel = newest_wheel(args.dist)
        if wheel is not None:
            print(wheel)
        return 0
    if args.command == "installed-extension":
        return installed_extension(args.source_root, [arch for arch in args.serve_archs.split(";") if arch])
    return pytest_summary(args.report, args.expect_all_skipped)


if __name__ == "__main__":
    sys.exit(main())
