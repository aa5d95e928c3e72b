"""Microbenchmarks of the ops (see conftest.py): CFI per backend vs the paper's materialising path,
``enhanced_sdpa`` vs SDPA. Groups make pytest-benchmark print the contenders side by side."""

import dataclasses
import os

import pytest
import torch
import torch.nn.functional as F

import eav_kernels as eav
from eav_kernels.backends import available_backends
from eav_kernels.cli.bench import video_slice
from eav_kernels.presets import PRESETS

pytest.importorskip("pytest_benchmark")

SHRINK = int(os.environ.get("EAV_BENCH_SHRINK", "50"))
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
PRESET_NAMES = ["cogvideox-2b", "wan2.1-1.3b", "ltx-video"]


def _preset(name):
    preset = PRESETS[name]
    return dataclasses.replace(preset, spatial=max(1, preset.spatial // SHRINK))


def _tensors(preset, tokens, count):
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(1, tokens, preset.heads, preset.head_dim, generator=generator)
            .to(DEVICE, torch.bfloat16).transpose(1, 2) for _ in range(count)]


def _sync(fn):
    if DEVICE.type != "cuda":
        return fn
    def synced():
        result = fn()
        torch.cuda.synchronize()
        return result
    return synced


def _backends():
    probe = torch.randn(1, 1, 6, 8, device=DEVICE, dtype=torch.bfloat16)
    return [name for name, reason in available_backends(probe, probe).items()
            if reason is None and name != "reference"]


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("method", ["official-style", *_backends()])
def test_cross_frame_intensity(benchmark, name, method):
    preset = _preset(name)
    query, key = _tensors(preset, preset.num_frames * preset.spatial, 2)
    benchmark.group = f"cfi {name}"
    if method == "official-style":
        fn = lambda: eav.official_style_cross_frame_intensity(query, key, preset.num_frames)
    else:
        fn = lambda: eav.cross_frame_intensity(query, key, preset.num_frames, backend=method)
    cfi = benchmark(_sync(fn))
    assert 0 < float(cfi) < 1


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("method", ["sdpa", "enhanced_sdpa"])
def test_attention(benchmark, name, method):
    preset = _preset(name)
    q, k, v = _tensors(preset, preset.num_frames * preset.spatial + preset.text_tokens, 3)
    benchmark.group = f"attention {name}"
    if method == "sdpa":
        fn = lambda: F.scaled_dot_product_attention(q, k, v)
    else:
        fn = lambda: eav.enhanced_sdpa(q, k, v, num_frames=preset.num_frames, enhance_weight=4.0,
                                       video_tokens=video_slice(preset))
    out = benchmark(_sync(fn))
    assert out.shape == q.shape
