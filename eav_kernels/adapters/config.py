"""``EnhanceAVideoConfig``: what the user asks for. Plain data, validated once, no diffusers import."""

from __future__ import annotations

import re
import warnings
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Literal, Mapping, Sequence

from .._deprecation import renamed_keyword
from ..validation import check_enhance_weight

if TYPE_CHECKING:
    from ..telemetry import CFIRecorder

Placement = Literal["to_out", "attention_output"]
PLACEMENTS = ("to_out", "attention_output")


@dataclass
class EnhanceAVideoConfig:
    """Settings of Enhance-A-Video on one model (pass to ``apply_enhance_a_video`` or ``enhance_module``).

    Attributes:
        enhance_weight: the enhance weight ``w`` of ``score = max(1, CFI * (num_frames + w))``.
            With uniform temporal attention (``CFI = 1 / num_frames``) the score is
            ``1 + w / num_frames``; a negative enough weight clamps every score to 1 (the
            unmodified model); NaN and infinity are a ``ValueError``. Usual values: CogVideoX 3.4,
            HunyuanVideo / Wan / LTX-Video 4. ``weight=`` is its deprecated spelling.
        start, end: the denoising window, as fractions of the schedule. A forward is enhanced when
            ``start <= progress < end`` (``progress <= end`` when ``end == 1``), where ``progress``
            is the noise level read from the forward's ``timestep`` argument:
            ``1 - timestep / num_train_timesteps`` (0 = pure noise, 1 = clean; Mochi's rising
            timestep convention is handled by its adapter). Outside the window the model runs
            untouched.
        layers: which targeted self-attention layers are enhanced: ``None`` (all), a sequence of
            indices into the adapter's layers in model order (negative indices count from the
            end), or ``{regex: weight}`` (``re.fullmatch`` on the module name, e.g.
            ``{r"transformer_blocks\\.[0-9]\\.attn1": 4.0}``, the value being that layer's enhance
            weight; first matching pattern wins; each pattern must match at least one layer).
        per_sample: ``False``: one score per layer call, shared by the whole batch (the paper).
            ``True``: one score per batch element (e.g. the cond and uncond halves of a batched
            classifier-free-guidance pass each get their own).
        placement: ``"to_out"`` (default, as the paper's code): the layer's video output after the
            output projection is scaled. ``"attention_output"``: the attention output before the
            output projection (as ComfyUI ports do). See each adapter's notes for models where the
            two coincide or where the score must move (Mochi).
        num_train_timesteps: the timestep scale of ``progress`` (1000 for every supported model).
        backend: the cross-frame-intensity backend (``"auto"``, ``"reference"``, ...).
        recorder: an ``eav_kernels.telemetry.CFIRecorder`` that collects each enhanced layer's
            CFI and score per forward (``eav plot-cfi`` draws them); ``None`` (default) records
            nothing and costs nothing.
    """

    enhance_weight: float = 4.0
    start: float = 0.0
    end: float = 1.0
    layers: Sequence[int] | Mapping[str, float] | None = None
    per_sample: bool = False
    placement: Placement = "to_out"
    num_train_timesteps: float = 1000.0
    backend: str = "auto"
    recorder: "CFIRecorder | None" = field(default=None, compare=False)
    _layer_patterns: tuple[tuple[re.Pattern, float], ...] = field(init=False, repr=False, default=())
    weight: InitVar[float | None] = None  # deprecated spelling of enhance_weight

    def __post_init__(self, weight: float | None) -> None:
        if weight is not None:
            self.enhance_weight = renamed_keyword(  # stacklevel 4: above the generated __init__
                "weight", weight, "enhance_weight", self.enhance_weight, 4.0, stacklevel=4
            )
        check_enhance_weight(self.enhance_weight)
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise ValueError(f"need 0 <= start <= end <= 1, got start={self.start}, end={self.end}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if self.num_train_timesteps <= 0:
            raise ValueError(f"num_train_timesteps must be positive, got {self.num_train_timesteps}")
        if isinstance(self.layers, Mapping):
            self._layer_patterns = tuple(
                (re.compile(pattern), float(weight)) for pattern, weight in self.layers.items()
            )
            for _, weight in self._layer_patterns:
                check_enhance_weight(weight)
        elif self.layers is not None:
            if isinstance(self.layers, (str, bytes)) or not all(
                isinstance(index, int) for index in self.layers
            ):
                raise TypeError(
                    f"layers must be None, a sequence of int indices or a {{regex: weight}} dict, "
                    f"got {self.layers!r}"
                )

    def is_active_at(self, progress: float | None) -> bool:
        """Whether a forward at denoising ``progress`` (0 = noise, 1 = clean) is enhanced."""
        if self.start == 0.0 and self.end == 1.0:
            return True
        if progress is None:
            raise ValueError(
                f"the window start={self.start}, end={self.end} needs the transformer's `timestep` "
                "argument, and this forward got none"
            )
        if self.end == 1.0:
            return self.start <= progress <= 1.0
        return self.start <= progress < self.end

    def layer_weights(self, layer_names: Sequence[str]) -> dict[str, float]:
        """``{layer name: enhance weight}`` for the selected layers among ``layer_names``
        (the adapter's targeted layers in model order). Raises on a selection that names nothing."""
        if self.layers is None:
            return {name: float(self.enhance_weight) for name in layer_names}
        if isinstance(self.layers, Mapping):
            selected: dict[str, float] = {}
            for pattern, weight in self._layer_patterns:
                matches = [name for name in layer_names if pattern.fullmatch(name)]
                if not matches:
                    raise ValueError(
                        f"layers pattern {pattern.pattern!r} matches none of the {len(layer_names)} "
                        f"targeted layers ({_preview(layer_names)})"
                    )
                for name in matches:
                    selected.setdefault(name, weight)
            return {name: selected[name] for name in layer_names if name in selected}
        selected_names = []
        for index in self.layers:
            if not -len(layer_names) <= index < len(layer_names):
                raise IndexError(
                    f"layer index {index} out of range for {len(layer_names)} targeted layers "
                    f"({_preview(layer_names)})"
                )
            selected_names.append(layer_names[index])
        return {name: float(self.enhance_weight) for name in layer_names if name in selected_names}


def _deprecated_weight(config: EnhanceAVideoConfig) -> float:
    """``config.enhance_weight`` under its deprecated name."""
    warnings.warn("EnhanceAVideoConfig.weight is deprecated; use enhance_weight", DeprecationWarning,
                  stacklevel=2)
    return config.enhance_weight


# Reading ``config.weight`` keeps working too (set after @dataclass, which made ``weight`` an
# init-only keyword whose class attribute would otherwise read None).
EnhanceAVideoConfig.weight = property(_deprecated_weight)


def _preview(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")
