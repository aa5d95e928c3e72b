"""``ScheduleWindow``: the node's start/end percent as sigma bounds, read the way ComfyUI's own
nodes read them (``model_sampling.percent_to_sigma``), compared with ``transformer_options["sigmas"]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ScheduleWindow:
    """A step at noise level ``sigma`` is inside when ``sigma_end <= sigma <= sigma_start``.
    ``sigma_start is None``: the whole schedule (no comparison, no host sync)."""

    sigma_start: float | None = None
    sigma_end: float = 0.0

    @classmethod
    def from_percents(cls, model_sampling: Any, start_percent: float, end_percent: float) -> "ScheduleWindow":
        """The window of ``start_percent`` to ``end_percent`` (0 = first step, 1 = last) of a model
        whose ``model_sampling`` has ComfyUI's ``percent_to_sigma``."""
        if start_percent == 0.0 and end_percent == 1.0:
            return cls()
        return cls(float(model_sampling.percent_to_sigma(start_percent)),
                   float(model_sampling.percent_to_sigma(end_percent)))

    def contains(self, sigmas: torch.Tensor | None  # [B]: the step's sigma per batch entry
                 ) -> bool:
        if self.sigma_start is None:
            return True
        if sigmas is None:
            raise ValueError(
                f"the window sigma {self.sigma_end:.4g} to {self.sigma_start:.4g} needs "
                "transformer_options['sigmas'], and this model call has none"
            )
        sigma = float(torch.as_tensor(sigmas).max())  # the noisiest entry sets the position
        return self.sigma_end <= sigma <= self.sigma_start
