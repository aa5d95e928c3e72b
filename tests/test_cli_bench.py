"""``eav bench`` on presets shrunk to a few spatial tokens: table, CSV, PNG, scaling notes."""

import csv
import dataclasses

import pytest
import torch
Image = pytest.importorskip("PIL.Image")  # a machine without pillow (the GPU image) skips the module

from eav_kernels.cli import bench, main
from eav_kernels.presets import PRESETS

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


def test_bench_table_csv_and_plot(tmp_path, capsys):
    csv_path, png_path = tmp_path / "bench.csv", tmp_path / "bench.png"
    code = main(["bench", "--preset", "cogvideox-2b", "--preset", "hunyuan-video", "--shrink", "400",
                 "--repeats", "2", "--csv", str(csv_path), "--plot", str(png_path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "official-style" in out and "enhanced_sdpa" in out and "x faster" in out
    assert "S/400: 4 of 1350 tokens per frame" in out
    assert "triton: runs on cuda tensors" in out  # unusable backends are listed with their reason

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == bench.CSV_COLUMNS
    methods = {(r["preset"], r["op"], r["method"]) for r in rows}
    for preset in ("cogvideox-2b", "hunyuan-video"):
        assert {(preset, "cfi", "cpu"), (preset, "cfi", "official-style"),
                (preset, "attention", "F.sdpa"), (preset, "attention", "enhanced_sdpa")} <= methods
    for row in rows:
        assert float(row["median_ms"]) > 0
        assert float(row["speedup_vs_baseline"]) > 0
        if row["op"] == "cfi":
            reference = float(row["cfi_reference_f64"])
            num_frames = int(row["num_frames"])
            assert 0 < reference < 1
            assert float(row["cfi_abs_err"]) < 1e-3 * reference * num_frames
            assert int(row["tokens"]) == num_frames * int(row["spatial"])
    hunyuan = next(r for r in rows if r["preset"] == "hunyuan-video" and r["op"] == "attention")
    assert int(hunyuan["tokens"]) == 33 * 9 + 256  # text tokens included in the joint sequence

    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.size[0] > 600 and image.size[1] > 300


def test_bench_scales_heads_down_to_fit_memory(monkeypatch, capsys, tmp_path):
    preset = dataclasses.replace(PRESETS["wan2.1-1.3b"], spatial=6)  # what --shrink 300 runs
    need = bench.estimated_bytes(preset, torch.bfloat16, with_attention=False)
    monkeypatch.setattr(bench, "free_memory_bytes", lambda device: int(need / 3 / bench.MEMORY_HEADROOM))
    csv_path = tmp_path / "bench.csv"
    assert main(["bench", "--preset", "wan2.1-1.3b", "--shrink", "300", "--repeats", "1", "--sdpa", "off",
                 "--csv", str(csv_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "attention not measured (--sdpa off)" in out
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert {r["op"] for r in rows} == {"cfi"}
    heads = {int(r["heads"]) for r in rows}
    assert len(heads) == 1 and 1 <= heads.pop() < preset.heads
    assert "heads (device memory)" in rows[0]["note"] and "heads (device memory)" in out


def test_cpu_attention_budget():
    settings = bench.BenchSettings(presets=["wan2.1-1.3b"])
    plan = bench._plan("wan2.1-1.3b", settings, torch.device("cpu"), torch.bfloat16)
    assert plan.attention_heads == 0 and "attention not measured" in plan.notes[-1]
    plan = bench._plan("cogvideox-2b", settings, torch.device("cpu"), torch.bfloat16)
    assert plan.attention_heads == 1
    full = bench._plan("cogvideox-2b", bench.BenchSettings(sdpa="full"), torch.device("cpu"), torch.bfloat16)
    assert full.attention_heads == PRESETS["cogvideox-2b"].heads


def test_fit_heads():
    preset = PRESETS["hunyuan-video"]
    need = bench.estimated_bytes(preset, torch.bfloat16, with_attention=True)
    assert bench.fit_heads(preset, torch.bfloat16, None, True) == preset.heads
    assert bench.fit_heads(preset, torch.bfloat16, int(10 * need), True) == preset.heads
    assert bench.fit_heads(preset, torch.bfloat16, int(need / 2 / bench.MEMORY_HEADROOM), True) == preset.heads // 2
    assert bench.fit_heads(preset, torch.bfloat16, 1, True) == 1


def test_unknown_backend_is_reported():
    with pytest.raises(ValueError, match="unknown backend"):
        bench.run_benchmarks(bench.BenchSettings(presets=["ltx-video"], backends=["nope"], shrink=100))
