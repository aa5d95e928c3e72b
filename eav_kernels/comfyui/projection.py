"""The paper's placement: the score multiplies the output projection's video rows.

The attention hook of a block computes the score; the block's output projection, called next in
the same block, must apply it. ``PendingScores`` carries it from one to the other (one per patched
clone, kept on the clone's patches, never on a module or in a global). ``ScaledProjection`` is the
projection's ``forward`` installed with ``ModelPatcher.add_object_patch``: the module itself (its
weights, their state-dict names, LoRA and low-VRAM handling) stays what it is, and the original
forward runs unchanged before the scaling. Scaling after the projection differs from scaling its
input by ``(score - 1) * bias``.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

import torch

from .scoring import scale_rows


class PendingScores:
    """Scores handed from a block's attention hook to its output projection, by device and block
    key (ComfyUI's multi-GPU sampling runs one model call per device, in threads, concurrently)."""

    def __init__(self) -> None:
        self._scores: dict[tuple[torch.device, Hashable], tuple[torch.Tensor, slice]] = {}

    def put(self, block: Hashable, score: torch.Tensor,  # 0-d or [B], on the call's device
            rows: slice) -> None:
        """``score`` for the ``rows`` of the next output of ``block``'s projection on its device."""
        self._scores[(score.device, block)] = (score, rows)

    def take(self, block: Hashable, device: torch.device) -> tuple[torch.Tensor, slice] | None:
        return self._scores.pop((device, block), None)

    def clear(self, device: torch.device) -> None:
        """Drop what a model call on ``device`` left (at the start of the next call there)."""
        for key in [key for key in self._scores if key[0] == device]:
            self._scores.pop(key, None)


class ScaledProjection:
    """``forward`` of one output projection: the original forward, then its video rows times the
    score its block's attention hook left in ``pending`` (none left: the output as it is).
    ``sequence_first``: the projection runs on ``[N, B, C]`` (Cosmos 1), else ``[B, N, C]``."""

    def __init__(self, original_forward: Callable[..., torch.Tensor], pending: PendingScores,
                 block: Hashable, sequence_first: bool = False):
        self.original_forward, self.pending, self.block = original_forward, pending, block
        self.sequence_first = sequence_first

    def __call__(self, hidden: torch.Tensor,  # [B, N, C_in] ([N, B, C_in] sequence_first)
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        output = self.original_forward(hidden, *args, **kwargs)  # [B, N, C_out]
        entry = self.pending.take(self.block, output.device)
        if entry is None:
            return output
        score, rows = entry
        if self.sequence_first:
            return scale_rows(output.transpose(0, 1), score, rows).transpose(0, 1)
        return scale_rows(output, score, rows)


def wrap_projection(clone: Any, module_name: str, pending: PendingScores, block: Hashable,
                    sequence_first: bool = False) -> None:
    """Install ``ScaledProjection`` as ``module_name``'s forward on ``clone`` (an object patch:
    applied while the clone runs, restored after; chained to an earlier patch of that forward).
    ``block``: the ``PendingScores`` key its attention hook puts the score under."""
    name = f"{module_name}.forward"
    clone.add_object_patch(name, ScaledProjection(clone.get_model_object(name), pending, block, sequence_first))
