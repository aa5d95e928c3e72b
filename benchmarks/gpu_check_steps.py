"""The Python steps of benchmarks/gpu_check.sh, run with the interpreter it chose.

    python benchmarks/gpu_check_steps.py preflight [--rehearsal]
    python benchmarks/gpu_check_steps.py pytest-summary REPORT.xml [--expect-all-skipped]

``preflight`` prints the versions and devices it finds and exits 2, with one ``FATAL:`` line per
problem, when torch, Triton or pytest cannot be imported, torch is a CPU build, or no CUDA device
is visible: the GPU check then stops in its first seconds instead of failing later, step by step.
In a rehearsal (a CPU machine standing in for the GPU one) a CPU build of torch and the missing
device are expected and only noted. Build tools (pip, setuptools, cmake, ninja, nvcc) are reported,
not required: gpu_check.sh picks its build from what is there.

``pytest-summary`` reads a JUnit XML report and prints tests, passed, failed, errors and skipped,
with every distinct skip reason; with ``--expect-all-skipped`` (a rehearsal's ``pytest -m gpu``) it
exits 1 unless at least one test was collected and every one was skipped with a reason.

Only the standard library is imported at module level, so both run under any interpreter.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter

REQUIRED_MODULES = ["torch", "triton", "pytest"]
BUILD_MODULES = ["pip", "setuptools", "cmake", "ninja"]  # pip packages; cmake/ninja may be binaries


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("preflight", help="versions, devices; exit 2 when torch/Triton/CUDA is missing")
    check.add_argument("--rehearsal", action="store_true", help="a CPU machine standing in for the GPU one")
    summary = commands.add_parser("pytest-summary", help="counts and skip reasons of a JUnit XML report")
    summary.add_argument("report")
    summary.add_argument("--expect-all-skipped", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "preflight":
        return preflight(args.rehearsal)
    return pytest_summary(args.report, args.expect_all_skipped)


if __name__ == "__main__":
    sys.exit(main())
