"""The two output checks the model tests share (tiny diffusers models, seed-model twins)."""

from __future__ import annotations

import torch


def assert_matches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """``actual`` equals ``expected`` (float32 outputs of the same computation) to 1e-5."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def assert_changed(a: torch.Tensor, b: torch.Tensor, at_least: float = 1e-3) -> None:
    """``a`` and ``b`` differ somewhere by more than ``at_least``: the enhancement did something."""
    assert (a - b).abs().max().item() > at_least, "enhancement changed nothing: the test is blind"
