"""Enhance-A-Video under diffusers context parallelism (``ContextParallelConfig``): 2 gloo
processes on 127.0.0.1 (tests/context_parallel_worker.py, one process per rank) run tiny Wan,
HunyuanVideo and LTX-Video (called with ``num_frames``, and with ``video_coords``) with
``ulysses_degree=2`` and ``ring_degree=2``, with the adapter applied after or before
``enable_parallelism``; the outputs must match one process running the same model with the same
adapter. Removed again (in either order) the model computes exactly what diffusers alone computes.
Tiny Wan also runs with a per-token (TI2V) timestep and a partial window, and with FasterCache and
``per_sample=True`` (applied after ``enable_parallelism``: as one process; before: refused).

Tolerances are on the max abs difference, relative to the output's scale (``max(1, max |out|)``:
the tiny HunyuanVideo's outputs reach 6, where one float32 ulp is 4.8e-7): Ulysses 1e-6, Ring
1e-5. Measured: docs/multi_gpu.md. diffusers' own sharded attention (no adapter) already differs from one process by a few
ulps (joint models: text and video are interleaved per shard after the all-to-all, so softmax
sums run in another order); the enhanced output carries that difference times the score.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

pytest.importorskip("diffusers")  # before the imports that need it: a machine without it skips

import eav_kernels as eav
from context_parallel_worker import (MODELS, MODES, ORDERS, PLACEMENTS, WEIGHT, WINDOW, WINDOW_TIMESTEPS,
                                     apply_faster_cache, faster_cache_steps, layer_scores, model_inputs,
                                     per_token_timestep_inputs)
from eav_kernels.adapters.hooks import TRANSFORMER_HOOK

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "context_parallel_worker.py")
WORLD_SIZE = 2
TOLERANCE = {"ulysses": 1e-6, "ring": 1e-5}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Each rank's results (``context_parallel_worker.run_all``)."""
    directory = tmp_path_factory.mktemp("context_parallel")
    port = str(_free_port())
    files = [directory / f"rank{rank}.pt" for rank in range(WORLD_SIZE)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    processes = [
        subprocess.Popen([sys.executable, WORKER, str(rank), str(WORLD_SIZE), port, str(files[rank])],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for rank in range(WORLD_SIZE)
    ]
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=120)[0].decode(errors="replace"))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for rank, process in enumerate(processes):
        assert process.returncode == 0, f"rank {rank} failed:\n{logs[rank][-4000:]}"
    return [torch.load(file, weights_only=False) for file in files]


def _single_process(name: str, placement: str):
    build, inputs = model_inputs(name)
    model = build()
    eav.apply_enhance_a_video(model, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, placement=placement))
    with torch.no_grad():
        output = model(**inputs)[0]
    return output, layer_scores(model)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_context_parallel_matches_single_process(ranks, name, mode, placement, order):
    expected, expected_scores = _single_process(name, placement)
    results = [rank[(name, mode)] for rank in ranks]
    for rank, result in enumerate(results):
        enhanced = result["enhanced"][(placement, order)]
        assert not isinstance(enhanced, str), f"rank {rank}: {enhanced}"
        output, scores = enhanced
        # the same score on every rank, equal to one process's (the all-reduce is exact)
        assert scores.keys() == expected_scores.keys() and expected_scores
        for layer, score in expected_scores.items():
            assert score.item() > 1.0, f"{layer}: score {score.item()} is clamped, the test is blind"
            assert torch.equal(scores[layer], results[0]["enhanced"][(placement, order)][1][layer])
            torch.testing.assert_close(scores[layer], score, rtol=1e-6, atol=0)
        output_scale = max(1.0, expected.abs().max().item())
        error = (output - expected).abs().max().item()
        assert error <= TOLERANCE[mode] * output_scale, (
            f"rank {rank}: max abs diff {error:.3g} vs one process (output scale {output_scale:.3g})"
        )
        # the enhancement did something: a bug that skips it cannot pass
        assert (output - result["plain"]).abs().max().item() > 1e-2


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_removal_leaves_context_parallelism_working(ranks, name, mode, order):
    """Applied after or before ``enable_parallelism`` and removed: diffusers' CP alone, bit for bit."""
    for rank, result in enumerate(ranks):
        removed, plain = result[(name, mode)]["removed"][order], result[(name, mode)]["plain"]
        assert torch.equal(removed, plain), (
            f"rank {rank}: max abs diff {(removed - plain).abs().max().item():.3g} vs diffusers alone"
        )


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_order_of_enable_parallelism_does_not_change_the_output(ranks, name, mode, placement):
    """The same bits whether Enhance-A-Video was applied before or after ``enable_parallelism``."""
    for rank, result in enumerate(ranks):
        before, after = (result[(name, mode)]["enhanced"][(placement, order)] for order in ORDERS)
        assert not isinstance(before, str) and not isinstance(after, str), f"rank {rank}: {before} / {after}"
        assert torch.equal(before[0], after[0]), (
            f"rank {rank}: max abs diff {(before[0] - after[0]).abs().max().item():.3g} between the orders"
        )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
def test_window_reads_the_unsplit_per_token_timestep(ranks, mode, order):
    """Wan 2.2 TI2V's per-token timestep, which Wan's plan splits at the transformer's input:
    rank 0's half is all zeros (the conditioning frame). Both ranks read the whole timestep, so
    the window enhances the first step (progress 0.1) and not the second (0.8), as one process."""
    build, _ = model_inputs("wan")
    model = build()
    eav.apply_enhance_a_video(model, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, **WINDOW))
    context = model._diffusers_hook.get_hook(TRANSFORMER_HOOK).context
    expected = []
    for timestep in WINDOW_TIMESTEPS:
        with torch.no_grad():
            output = model(**per_token_timestep_inputs(timestep))[0]
        expected.append((output, layer_scores(model), context.active))
    assert [active for _, _, active in expected] == [True, False]  # the window decides
    for rank, result in enumerate(rank[("window", mode, order)] for rank in ranks):
        assert not isinstance(result, str), f"rank {rank}: {result}"
        for step, ((output, scores, active), (want, want_scores, want_active), plain) in enumerate(
                zip(result["enhanced"], expected, result["plain"])):
            assert active == want_active, f"rank {rank}, step {step}: active={active}, one process {want_active}"
            output_scale = max(1.0, want.abs().max().item())
            error = (output - want).abs().max().item()
            assert error <= TOLERANCE[mode] * output_scale, (
                f"rank {rank}, step {step}: max abs diff {error:.3g} vs one process"
            )
            if want_active:
                for layer, score in want_scores.items():
                    assert score.item() > 1.0, f"{layer}: score {score.item()} is clamped, the test is blind"
                    torch.testing.assert_close(scores[layer], score, rtol=1e-6, atol=0)
                assert (output - plain).abs().max().item() > 1e-2
            else:  # outside the window: diffusers' CP alone, bit for bit
                assert torch.equal(output, plain), f"rank {rank}, step {step}: enhanced outside the window"


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
def test_per_sample_under_faster_cache_applied_after_enable_parallelism(ranks, mode, order):
    """FasterCache applied after ``enable_parallelism``, ``per_sample=True``: Enhance-A-Video's
    transformer hook sits inside FasterCache and outside the split, and folds the halved CFG
    batch of step 2 as one process with the same hooks does."""
    clock = [0.0]
    model = model_inputs("wan")[0]()
    apply_faster_cache(model, clock)
    eav.apply_enhance_a_video(model, eav.EnhanceAVideoConfig(enhance_weight=WEIGHT, per_sample=True))
    expected = faster_cache_steps(model, clock, None)
    for rank, result in enumerate(rank[("faster_cache", mode, False, order)] for rank in ranks):
        assert not isinstance(result, str), f"rank {rank}: {result}"
        for step, (output, want) in enumerate(zip(result, expected)):
            error = (output - want).abs().max().item()
            assert error <= TOLERANCE[mode] * max(1.0, want.abs().max().item()), (
                f"rank {rank}, step {step}: max abs diff {error:.3g} vs one process"
            )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
def test_per_sample_refuses_faster_cache_applied_before_enable_parallelism(ranks, mode, order):
    """FasterCache applied before ``enable_parallelism`` sits inside the split, where the
    transformer hook cannot be: ``per_sample=True`` raises, naming the combination."""
    for rank in ranks:
        result = rank[("faster_cache", mode, True, order)]
        assert isinstance(result, str) and "FasterCache applied before enable_parallelism" in result, result
