"""``EnhanceSettings``: what the ComfyUI node asks for, validated once. Plain data, no ComfyUI import."""

from __future__ import annotations

from dataclasses import dataclass

from ..validation import check_enhance_weight

AFTER_PROJECTION = "after output projection"  # the paper's placement (its code scales to_out's output)
BEFORE_PROJECTION = "before output projection"  # where attn1_patch / attn1_output_patch hand the output
PLACEMENTS = (AFTER_PROJECTION, BEFORE_PROJECTION)


@dataclass(frozen=True)
class EnhanceSettings:
    """Enhance-A-Video on one ComfyUI model.

    Attributes:
        weight: the enhance weight ``w`` of ``score = max(1, CFI * (F + w))``.
        start_percent, end_percent: the sampling window, as ComfyUI's other nodes read it: a step
            is enhanced when ``percent_to_sigma(end_percent) <= sigma <= percent_to_sigma(start_percent)``.
        blocks: the enhanced transformer blocks (numbered in model order, see ``parse_blocks``),
            ``None`` for all of them.
        per_sample: ``False``: one score per attention call, shared by everything ComfyUI batched
            into it (the paper). ``True``: each entry of ``cond_or_uncond`` (cond, uncond) gets its
            own score, so the result no longer depends on whether ComfyUI batched them.
        placement: ``AFTER_PROJECTION`` (default) or ``BEFORE_PROJECTION``.
        backend: the cross-frame-intensity backend (``"auto"``, ``"reference"``, ...).
    """

    weight: float = 4.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    blocks: frozenset[int] | None = None
    per_sample: bool = False
    placement: str = AFTER_PROJECTION
    backend: str = "auto"

    def __post_init__(self) -> None:
        check_enhance_weight(self.weight)
        if not 0.0 <= self.start_percent <= self.end_percent <= 1.0:
            raise ValueError(
                f"need 0 <= start_percent <= end_percent <= 1, got start_percent={self.start_percent}, "
                f"end_percent={self.end_percent}"
            )
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")

    def selects(self, block: int) -> bool:
        """Whether block number ``block`` (model order) is enhanced."""
        return self.blocks is None or block in self.blocks

    def check_blocks(self, block_count: int, numbering: str) -> None:
        """Raise if ``blocks`` names a block the model does not have (``numbering`` says how the
        model's ``block_count`` blocks are numbered, for the message)."""
        outside = sorted(b for b in self.blocks or () if b >= block_count)
        if outside:
            raise ValueError(
                f"blocks {outside} do not exist: this model has {block_count} blocks, 0-{block_count - 1} "
                f"({numbering})"
            )


def parse_blocks(text: str) -> frozenset[int] | None:
    """``"all"`` (or empty) -> ``None``; ``"0-9, 20"`` -> ``{0, ..., 9, 20}``. Ranges are inclusive."""
    text = text.strip()
    if text.lower() in ("", "all"):
        return None
    blocks: set[int] = set()
    for part in text.split(","):
        bounds = [b.strip() for b in part.split("-")]
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise ValueError(f"blocks: cannot read {part.strip()!r} in {text!r}; write e.g. 'all' or '0-9,20'")
        first, last = int(bounds[0]), int(bounds[-1])
        if first > last:
            raise ValueError(f"blocks: range {part.strip()!r} runs backwards ({first} > {last})")
        blocks.update(range(first, last + 1))
    return frozenset(blocks)

