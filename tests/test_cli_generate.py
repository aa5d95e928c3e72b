"""``eav generate`` on a tiny random CogVideoX pipeline (tokenizer, T5 encoder, VAE, transformer)
saved with ``save_pretrained`` to a temp dir and loaded back through ``DiffusionPipeline``."""

import json

import numpy as np
import pytest
import torch
Image = pytest.importorskip("PIL.Image")  # a machine without pillow (the GPU image) skips the module

from cli_helpers import load_tool
from eav_kernels.cli import generate, main

pytest.importorskip("diffusers")
imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("matplotlib")

SIZE = ["--frames", "9", "--height", "64", "--width", "64"]


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-cogvideox")
    load_tool("make_tiny_pipeline").main([str(directory)])
    return directory


def _read_video(path):
    return np.stack(imageio.mimread(path, memtest=False))


def test_generate_compare(tiny_pipeline_dir, tmp_path, capsys):
    out = tmp_path / "cat.mp4"
    record = tmp_path / "cat.json"
    code = main(["generate", "--model", str(tiny_pipeline_dir), "--prompt", "a cat surfing a wave",
                 *SIZE, "--steps", "2", "--enhance-weight", "3.4", "--seed", "1", "--out", str(out),
                 "--compare", "--record", str(record)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 enhanced layers" in printed and f"wrote {out}" in printed

    enhanced = _read_video(out)
    assert enhanced.shape == (9, 64, 64, 3)
    compare = _read_video(tmp_path / "cat_compare.mp4")
    assert compare.shape == (9, 64, 64 + 4 + 64, 3)  # without | gap | with
    for name in ("cat_scores.png", "cat_cfi.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"

    data = json.loads(record.read_text())
    assert data["layers"] == ["transformer_blocks.0.attn1", "transformer_blocks.1.attn1"]
    assert len(data["forwards"]) == 2  # 2 steps, classifier-free guidance batched in one forward
    for forward in data["forwards"]:
        assert forward["num_frames"] == 3
        for values in forward["layers"].values():
            assert 0 < values["cfi"] < 1
            assert values["score"] == pytest.approx(max(1.0, values["cfi"] * (3 + 3.4)), rel=1e-5)


def test_generate_from_prompt_embeddings_as_gif(tiny_pipeline_dir, tmp_path, monkeypatch):
    embeds = tmp_path / "embeds.pt"
    generator = torch.Generator().manual_seed(0)
    torch.save({"prompt_embeds": torch.randn(1, 226, 16, generator=generator),
                "negative_prompt_embeds": torch.randn(1, 226, 16, generator=generator)}, embeds)
    monkeypatch.setattr(generate, "ffmpeg_available", lambda: False)
    with pytest.warns(UserWarning, match="ffmpeg"):
        assert main(["generate", "--model", str(tiny_pipeline_dir), "--prompt-embeds", str(embeds),
                     *SIZE, "--steps", "1", "--out", str(tmp_path / "noise.mp4")]) == 0
    gif = tmp_path / "noise.gif"
    assert not (tmp_path / "noise.mp4").exists()
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 9 and image.size == (64, 64)


def test_generate_needs_a_prompt(tiny_pipeline_dir, tmp_path):
    with pytest.raises(SystemExit, match="--prompt"):
        main(["generate", "--model", str(tiny_pipeline_dir), *SIZE, "--steps", "1",
              "--out", str(tmp_path / "x.mp4")])


def test_weight_flag_is_the_deprecated_spelling_of_enhance_weight():
    from eav_kernels.cli import build_parser
    from eav_kernels.cli.generate import enhance_weight_argument

    base = ["generate", "--model", "m", "--out", "o.mp4"]
    assert enhance_weight_argument(build_parser().parse_args(base)) is None  # each model's recommended weight
    assert enhance_weight_argument(build_parser().parse_args(base + ["--enhance-weight", "3.4"])) == 3.4
    with pytest.warns(DeprecationWarning, match="'--weight' is deprecated; use '--enhance-weight'"):
        assert enhance_weight_argument(build_parser().parse_args(base + ["--weight", "2.5"])) == 2.5


@pytest.fixture(scope="module")
def tiny_wan22_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-wan22")
    load_tool("make_tiny_pipeline").main([str(directory), "--model-type", "wan2.2"])
    return directory


def test_generate_enhances_both_wan22_experts(tiny_wan22_dir, tmp_path, capsys):
    """A Wan 2.2 pipeline (two experts) saved and loaded back: both experts are enhanced, each
    layer recorded under its component's name."""
    record = tmp_path / "wan22.json"
    out = tmp_path / "wan22.mp4"
    assert main(["generate", "--model", str(tiny_wan22_dir), "--prompt", "a corgi running", "--frames", "9",
                 "--height", "32", "--width", "32", "--steps", "2", "--out", str(out), "--record", str(record)]) == 0
    assert "4 enhanced layers" in capsys.readouterr().out
    assert _read_video(out).shape == (9, 32, 32, 3)
    data = json.loads(record.read_text())
    assert data["layers"] == ["transformer.blocks.0.attn1", "transformer.blocks.1.attn1",
                              "transformer_2.blocks.0.attn1", "transformer_2.blocks.1.attn1"]
    experts = [sorted({name.split(".")[0] for name in forward["layers"]}) for forward in data["forwards"]]
    assert experts == [["transformer"], ["transformer"], ["transformer_2"], ["transformer_2"]]  # cond, uncond per step
    for forward in data["forwards"]:  # no --enhance-weight: Wan's recommended weight, 4
        for values in forward["layers"].values():
            assert values["score"] == pytest.approx(max(1.0, values["cfi"] * (3 + 4.0)), rel=1e-5)
