"""The GPU benchmark scripts import, parse their arguments and print their plan on a machine
without a GPU; without one they measure nothing and say so."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from eav_kernels._extension import compiled_extension
from eav_kernels.presets import AttentionPreset

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_triton_arguments_and_dry_run(capsys):
    bench = load_script("bench_triton_gpu")
    args = bench.parse_args(["--frames", "16", "64", "--dtype", "fp16"])
    assert args.frames == [16, 64] and args.dtype == "fp16"
    defaults = bench.parse_args([])
    assert (defaults.sequences, defaults.heads, defaults.head_dim) == (1024, 16, 72)  # latte-temporal
    assert bench.main(["--dry-run", "--frames", "32"]) == 0
    out = capsys.readouterr().out
    assert "B*S=1024 H=16 F=32 D=72" in out and "sdpa + official-style CFI" in out and "fp16" not in out
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--frames", "0"])


def test_cuda_arguments_and_dry_run(capsys):
    bench = load_script("bench_cuda_gpu")
    assert bench.parse_args([]).preset == ["hunyuan-video"]
    assert bench.main(["--dry-run", "--preset", "mochi", "--preset", "wan2.1-1.3b", "--skip-sdpa"]) == 0
    out = capsys.readouterr().out
    assert "mochi: B=1 H=24 F=28 S=1590 D=128" in out and "wan2.1-1.3b" in out
    assert "enhanced_sdpa" not in out
    assert bench.peak_bandwidth_gbps("NVIDIA H100 80GB HBM3", None) == 3350.0
    assert bench.peak_bandwidth_gbps("NVIDIA H100 PCIe", None) == 2000.0
    assert bench.peak_bandwidth_gbps("some GPU", None) is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--preset", "latte-temporal"])  # the Triton script's sweep


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
@pytest.mark.parametrize("name", ["bench_cuda_gpu", "bench_triton_gpu"])
def test_without_gpu_nothing_is_measured(name, capsys, tmp_path):
    csv = tmp_path / "rows.csv"
    assert load_script(name).main(["--csv", str(csv)]) == 2
    assert "nothing measured" in capsys.readouterr().err
    assert not csv.exists()


@pytest.mark.skipif(compiled_extension() is None, reason="eav_kernels._C is not built")
def test_cuda_script_measures_on_cpu(monkeypatch, tmp_path, capsys):
    """Every line of the measuring code, on CPU with the CPU kernel and a tiny preset."""
    bench = load_script("bench_cuda_gpu")
    monkeypatch.setattr(bench, "PRESETS", {"hunyuan-video": AttentionPreset("hunyuan-video", 3, 5, 2, 8)})
    args = bench.parse_args(["--repeats", "2", "--sdpa-repeats", "2", "--dtype", "fp32",
                             "--peak-bandwidth", "100"])
    rows = bench.run(args, torch.device("cpu"))
    assert [row["name"] for row in rows] == ["cfi_cpu", "sdpa", "enhanced_sdpa_cpu"]
    assert rows[0]["gb_per_s"] > 0 and rows[0]["pct_of_hbm_peak"] == pytest.approx(rows[0]["gb_per_s"], abs=0.1)
    assert rows[2]["vs_sdpa"] > 0 and all(row["median_ms"] > 0 for row in rows)
    from eav_kernels.benchmarking import write_csv

    write_csv(rows, tmp_path / "rows.csv", bench.COLUMNS)
    header, *lines = (tmp_path / "rows.csv").read_text().splitlines()
    assert header.split(",") == bench.COLUMNS and len(lines) == 3


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_triton_script_measures_on_cpu_in_the_interpreter(tmp_path):
    """Every line of the measuring code, on CPU in Triton's interpreter (a child process: the
    interpreter is chosen when the kernels are first imported), tiny sizes, table and CSV."""
    csv = tmp_path / "rows.csv"
    code = f"""
import importlib.util, torch
spec = importlib.util.spec_from_file_location("bench_triton_gpu", {str(BENCHMARKS / "bench_triton_gpu.py")!r})
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
args = bench.parse_args("--frames 2 3 --sequences 3 --heads 2 --head-dim 8 --repeats 1 --dtype fp32".split()
                        + ["--csv", {str(csv)!r}])
rows = bench.run(args, torch.device("cpu"))
assert [r["method"] for r in rows] == bench.METHODS * 2, rows
assert rows[0]["ratio_to_triton"] == "1.000" and all(float(r["median_ms"]) > 0 for r in rows), rows
assert bench.script_main("bench_triton_gpu", args, [], lambda: None, lambda: rows, bench.COLUMNS) == 0
"""
    env = dict(os.environ, TRITON_INTERPRET="1")
    env.pop("EAV_BACKEND", None)
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert "sdpa + triton CFI" in child.stdout and f"wrote {csv}" in child.stdout
    header, *lines = csv.read_text().splitlines()
    assert header.split(",") == ["shape", "dtype", "method", "repeats", "median_ms", "peak_extra_mib",
                                 "ratio_to_triton"] and len(lines) == 8


# ---------------------------------------------------------------- benchmarks/gpu_check.sh, cheap part

GPU_CHECK = BENCHMARKS / "gpu_check.sh"
needs_venv = pytest.mark.skipif(sys.prefix == sys.base_prefix,
                                reason="needs an interpreter that is itself a venv (as on the lent machine)")


def run_gpu_check(tmp_path, python: str, *args: str, **env: str) -> tuple[int, str, str]:
    """(exit status, gpu_check.log, steps.tsv) of gpu_check.sh with PYTHON=python, OUT=tmp_path/out."""
    out = tmp_path / "out"
    environment = {k: v for k, v in os.environ.items() if k not in ("GPU_ENV", "OUT", "GPU_CHECK_BUDGET")}
    environment.update(PYTHON=python, OUT=str(out), **env)
    child = subprocess.run(["bash", str(GPU_CHECK), *args], env=environment, capture_output=True, text=True,
                           timeout=300)
    log = (out / "gpu_check.log").read_text()
    assert child.stdout == log, "the log must hold everything the script printed"
    return child.returncode, log, (out / "steps.tsv").read_text()


@needs_venv
def test_gpu_check_runs_a_venv_interpreter_directly(tmp_path):
    """The lent machine's python3 is a venv: used as is (a --system-site-packages venv made from
    it would see the base interpreter's packages, without torch)."""
    status, log, steps = run_gpu_check(tmp_path, sys.executable, "--rehearsal", "--stop-after=preflight")
    assert status == 0, log
    assert f"{sys.executable} is a virtual environment: using it directly" in log
    assert f"torch {torch.__version__} from" in log and "FATAL" not in log
    rows = [line.split("\t") for line in steps.splitlines()[1:]]
    assert [(name, outcome) for name, outcome, _ in rows] == [
        ("machine", "ok"), ("environment", "ok"), ("preflight", "ok")]


@needs_venv
def test_gpu_check_lets_a_new_venv_see_its_parent_venvs_packages(tmp_path):
    env_dir = tmp_path / "gpu-env"
    status, log, _ = run_gpu_check(tmp_path, sys.executable, "--rehearsal", "--stop-after=preflight",
                                   GPU_ENV=str(env_dir))
    assert status == 0, log
    assert "gpu-check-parent.pth adds" in log and f"python {sys.version.split()[0]} at {env_dir}" in log
    assert f"torch {torch.__version__} from" in log


def test_gpu_check_stops_in_seconds_without_torch(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(bare)],
                   check=True, timeout=120)
    status, log, steps = run_gpu_check(tmp_path, str(bare / "bin" / "python"))
    assert status == 2, log
    assert "FATAL: torch is not importable" in log and "FATAL: triton is not importable" in log
    assert steps.splitlines()[-1].startswith("preflight\tfatal\t")
    assert "=== build" not in log


def write_junit(path, outcomes: list[str]) -> None:
    cases = "".join(
        f'<testcase name="t{i}">' + {"passed": "", "skipped": '<skipped message="no CUDA device"/>',
                                     "unexplained": "<skipped/>", "failed": '<failure message="x"/>'}[o]
        + "</testcase>" for i, o in enumerate(outcomes))
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')


def test_pytest_summary_expects_every_test_skipped_with_a_reason(tmp_path, capsys):
    steps = load_script("gpu_check_steps")
    report = tmp_path / "report.xml"
    write_junit(report, ["skipped", "skipped"])
    assert steps.main(["pytest-summary", str(report), "--expect-all-skipped"]) == 0
    assert "2 tests, 0 passed, 0 failed, 0 errors, 2 skipped" in capsys.readouterr().out
    for outcomes in (["skipped", "passed"], ["skipped", "unexplained"], [], ["failed"]):
        write_junit(report, outcomes)
        assert steps.main(["pytest-summary", str(report), "--expect-all-skipped"]) == 1, outcomes
    write_junit(report, ["passed", "failed", "skipped"])
    assert steps.main(["pytest-summary", str(report)]) == 0
    assert "3 tests, 1 passed, 1 failed, 0 errors, 1 skipped" in capsys.readouterr().out
