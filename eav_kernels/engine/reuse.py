"""``ProducedOutput``: recognises a layer output that a cache hands back instead of computing it.

A cache that sits inside the enhanced layer's forward (an attention processor or a host's own
code that hands back its earlier output; diffusers' hooks never sit there, see
adapters/hook_chain.py) may return, on a later forward, the very tensor object the layer
computed earlier, without running attention. The engine then sees no attention call; that is
explained, not an error, exactly when the returned video tensor is the object the layer's own
computation produced (object identity, held through a weak reference: nothing is kept alive that
the cache does not keep alive itself).
The record also says which score that computation had, so a reused output carries the score of
the computation that produced it (``None``: that computation was not enhanced).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch


class ProducedOutput:
    """The latest output a layer's forward computed (not reused), with its score.

    ``output``: the layer forward's output as its inner forward returned it (a video tensor
    ``[B', N_layer, C]`` or a tuple starting with one); ``score``: 0-d or ``[B]``, ``None`` when
    that forward was not enhanced; ``generated``: the generated video rows of its input.
    """

    def __init__(self, output: Any, score: torch.Tensor | None, generated: slice | None):
        self._video = weakref.ref(_video_tensor(output))
        self.score = score
        self.generated = generated

    def is_returned_again(self, output: Any) -> bool:
        """Whether ``output`` is that same computed output, handed back by a cache."""
        return self._video() is _video_tensor(output)


def _video_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output
