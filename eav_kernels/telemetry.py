"""CFI telemetry: the cross-frame intensity and score of every enhanced layer at every denoising step.

    recorder = CFIRecorder()
    apply_enhance_a_video(pipe.transformer, EnhanceAVideoConfig(enhance_weight=4.0, recorder=recorder))
    pipe(prompt, ...)
    recorder.save("cfi.json")            # then: eav plot-cfi cfi.json --out cfi.png

The recorder is an object carried by the config (no module-level state). While a run records, it
keeps the device tensors the hooks computed anyway (detached, no ``.item()``): nothing is copied
to the host until ``to_dict()`` / ``save()``. Without a recorder the hooks do no extra work.

Steps: every transformer forward is one entry; consecutive forwards with the same timestep (Wan
and HunyuanVideo run the conditional and unconditional passes as two forwards) form one denoising
step, and their values are averaged per layer in ``matrix()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["CFIRecorder", "load_record"]


@dataclass
class _Forward:
    timestep: torch.Tensor | None  # as the transformer got it (scalar / [B] / [B, N])
    num_frames: int | None
    layers: list[tuple[str, torch.Tensor, torch.Tensor]] = field(default_factory=list)  # name, cfi, score


class CFIRecorder:
    """Collects ``(layer, CFI, score)`` per transformer forward. Pass it as
    ``EnhanceAVideoConfig(recorder=...)``; read it with ``to_dict()``, ``matrix()`` or ``save()``."""

    def __init__(self) -> None:
        self._forwards: list[_Forward] = []

    def __len__(self) -> int:
        return len(self._forwards)

    def clear(self) -> None:
        self._forwards.clear()

    # -- called by the hooks (no host syncs) -------------------------------------------------

    def begin_forward(self, timestep: torch.Tensor | float | None, num_frames: int | None) -> None:
        if isinstance(timestep, torch.Tensor):
            timestep = timestep.detach().clone()
        self._forwards.append(_Forward(timestep, num_frames))

    def record_layer(self, layer_name: str, cross_frame_intensity: torch.Tensor,  # [L] per sequence
                     score: torch.Tensor) -> None:  # 0-d or [B]
        if not self._forwards:
            self.begin_forward(None, None)
        self._forwards[-1].layers.append(
            (layer_name, cross_frame_intensity.detach().float().mean(), score.detach().float().mean())
        )

    # -- reading (syncs) -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"forwards": [{"timestep", "num_frames", "layers": {name: {"cfi",
        "score"}}}], "layers": [names in first-seen order]}``."""
        forwards, names = [], {}
        for forward in self._forwards:
            timestep = forward.timestep
            if isinstance(timestep, torch.Tensor):
                timestep = float(timestep.float().max()) if timestep.numel() else None
            layers = {}
            for name, cfi, score in forward.layers:
                names.setdefault(name, None)
                layers[name] = {"cfi": float(cfi), "score": float(score)}
            forwards.append({"timestep": timestep, "num_frames": forward.num_frames, "layers": layers})
        return {"format": "eav-cfi-record/1", "layers": list(names), "forwards": forwards}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def matrix(self, value: str = "cfi"):
        """See ``record_matrix``."""
        return record_matrix(self.to_dict(), value)


def load_record(path: str | Path) -> dict[str, Any]:
    record = json.loads(Path(path).read_text())
    if record.get("format") != "eav-cfi-record/1":
        raise ValueError(f"{path}: not an eav CFI record (format {record.get('format')!r})")
    return record


def record_matrix(record: dict[str, Any], value: str = "cfi"):
    """``(layers, timesteps, values)``: ``values[layer][step]`` (a list of lists, ``None`` where a
    layer was not enhanced at a step), steps in run order; forwards of one step are averaged."""
    if value not in ("cfi", "score"):
        raise ValueError(f"value must be 'cfi' or 'score', got {value!r}")
    steps: list[tuple[Any, list[dict]]] = []
    for forward in record["forwards"]:
        if steps and forward["timestep"] is not None and steps[-1][0] == forward["timestep"]:
            steps[-1][1].append(forward)
        else:
            steps.append((forward["timestep"], [forward]))
    layers = record["layers"]
    values = []
    for name in layers:
        row = []
        for _, group in steps:
            samples = [f["layers"][name][value] for f in group if name in f["layers"]]
            row.append(sum(samples) / len(samples) if samples else None)
        values.append(row)
    return layers, [timestep for timestep, _ in steps], values
