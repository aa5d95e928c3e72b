"""CFI telemetry (``CFIRecorder`` in ``EnhanceAVideoConfig``) and ``eav plot-cfi``."""

import json

import pytest
import torch
Image = pytest.importorskip("PIL.Image")  # a machine without pillow (the GPU image) skips the module

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

from adapters_tiny_models import CASES, run
from eav_kernels import EnhanceAVideoConfig, apply_enhance_a_video, remove_enhance_a_video
from eav_kernels.cli import main
from eav_kernels.telemetry import CFIRecorder, load_record, record_matrix

pytest.importorskip("matplotlib")


def _record_wan_run(recorder, timesteps=(900.0, 900.0, 500.0, 500.0, 100.0)):
    """Wan runs cond and uncond as two forwards per step: 5 forwards = 3 steps."""
    case = CASES["wan"]
    model = case.build()
    generator = torch.Generator().manual_seed(0)
    inputs = case.inputs(1, generator)
    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0, recorder=recorder))
    outputs = [run(model, {**inputs, "timestep": torch.tensor([t])}) for t in timesteps]
    remove_enhance_a_video(model)
    return model, inputs, outputs


def test_recorder_collects_layers_and_steps_without_changing_outputs():
    recorder = CFIRecorder()
    model, inputs, recorded = _record_wan_run(recorder)
    assert len(recorder) == 5
    layers, timesteps, cfi = recorder.matrix("cfi")
    assert layers == ["blocks.0.attn1", "blocks.1.attn1"]
    assert timesteps == [900.0, 500.0, 100.0]
    assert all(0 < v < 1 for row in cfi for v in row)
    _, _, scores = recorder.matrix("score")
    assert all(s == pytest.approx(max(1.0, c * (3 + 4.0)), rel=1e-5)
               for c_row, s_row in zip(cfi, scores) for c, s in zip(c_row, s_row))

    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0))  # no recorder
    plain = run(model, {**inputs, "timestep": torch.tensor([900.0])})
    remove_enhance_a_video(model)
    assert torch.equal(plain, recorded[0])


def test_window_records_only_enhanced_forwards():
    case = CASES["wan"]
    model = case.build()
    inputs = case.inputs(1, torch.Generator().manual_seed(0))
    recorder = CFIRecorder()
    apply_enhance_a_video(model, EnhanceAVideoConfig(enhance_weight=4.0, end=0.5, recorder=recorder))
    for t in (900.0, 100.0):  # progress 0.1 (enhanced), 0.9 (outside the window)
        run(model, {**inputs, "timestep": torch.tensor([t])})
    layers, timesteps, values = record_matrix(recorder.to_dict())
    assert timesteps == [900.0, 100.0]
    assert all(row[0] is not None and row[1] is None for row in values)


def test_plot_cfi_command(tmp_path, capsys):
    recorder = CFIRecorder()
    _record_wan_run(recorder)
    path = recorder.save(tmp_path / "run.json")
    assert load_record(path)["layers"] == ["blocks.0.attn1", "blocks.1.attn1"]
    for value in ("both", "cfi"):
        out = tmp_path / f"heatmap-{value}.png"
        assert main(["plot-cfi", str(path), "--out", str(out), "--value", value]) == 0
        with Image.open(out) as image:
            assert image.format == "PNG" and image.size[0] > 300
    assert "2 layers x 3 steps" in capsys.readouterr().out


def test_plot_cfi_rejects_other_json(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not an eav CFI record"):
        main(["plot-cfi", str(other), "--out", str(tmp_path / "x.png")])
