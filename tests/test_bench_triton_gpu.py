"""The GPU benchmark script imports and parses its arguments on a machine without a GPU."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_triton_gpu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_triton_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_and_dry_run(capsys):
    bench = load_script()
    args = bench.parse_args(["--frames", "16", "64", "--preset", "hunyuan-video", "--dtype", "fp16"])
    assert args.frames == [16, 64] and args.preset == ["hunyuan-video"] and args.dtype == "fp16"
    assert bench.parse_args([]).preset == list(bench.CFI_PRESETS)
    assert bench.main(["--dry-run", "--preset", "mochi"]) == 0
    assert "CFI preset mochi" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
