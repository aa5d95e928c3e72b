"""``eav plot-cfi RECORD.json --out heatmap.png``: a layer x denoising-step heatmap of the recorded
cross-frame intensity (and the enhance score), like Fig. 14 of the Enhance-A-Video paper.

A record comes from ``eav generate --record FILE.json`` or from the API::

    from eav_kernels.telemetry import CFIRecorder
    recorder = CFIRecorder()
    apply_enhance_a_video(pipe.transformer, EnhanceAVideoConfig(enhance_weight=4.0, recorder=recorder))
    pipe(...); recorder.save("cfi.json")
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..telemetry import load_record, record_matrix

__all__ = ["plot_record", "plot_layer_scores"]


def plot_record(record: dict[str, Any], path: str | Path, values: tuple[str, ...] = ("cfi", "score"),
                title: str | None = None) -> Path:
    """Writes one heatmap panel per entry of ``values`` ("cfi", "score"): rows = layers (model
    order), columns = denoising steps (run order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not record["forwards"] or not record["layers"]:
        raise ValueError("the record holds no enhanced layer: nothing to plot")
    layers, timesteps, _ = record_matrix(record, values[0])
    height = max(3.0, min(12.0, 0.22 * len(layers) + 1.6))
    width = max(4.5, min(14.0, 0.3 * len(timesteps) + 3.0))
    figure, axes = plt.subplots(1, len(values), figsize=(width * len(values), height), squeeze=False)
    labels = {"cfi": "cross-frame intensity", "score": "enhance score"}
    for axis, value in zip(axes[0], values):
        _, _, matrix = record_matrix(record, value)
        data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
        image = axis.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="viridis",
                            interpolation="nearest")
        figure.colorbar(image, ax=axis, label=labels[value])
        axis.set_xlabel("denoising step")
        axis.set_ylabel("layer")
        axis.set_title(labels[value], fontsize=10)
        _ticks(axis.set_xticks, axis.set_xticklabels, [str(i) for i in range(len(timesteps))])
        _ticks(axis.set_yticks, axis.set_yticklabels, [_short(name) for name in layers])
    frames = {f["num_frames"] for f in record["forwards"]} - {None}
    figure.suptitle(title or f"{len(layers)} layers x {len(timesteps)} steps"
                    + (f", {sorted(frames)[0]} latent frames" if len(frames) == 1 else ""), fontsize=10)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_layer_scores(record: dict[str, Any], path: str | Path) -> Path:
    """Per-layer enhance score (mean over steps, with min-max range): the ``--compare`` plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers, _, matrix = record_matrix(record, "score")
    rows = [[v for v in row if v is not None] for row in matrix]
    mean = np.array([np.mean(r) if r else np.nan for r in rows])
    low = np.array([np.min(r) if r else np.nan for r in rows])
    high = np.array([np.max(r) if r else np.nan for r in rows])
    figure, axis = plt.subplots(figsize=(max(5.0, min(14.0, 0.3 * len(layers) + 2.5)), 3.6))
    x = np.arange(len(layers))
    axis.bar(x, mean - 1.0, bottom=1.0, color="tab:blue", label="mean over steps")
    axis.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor="black", capsize=2,
                  label="min-max over steps")
    axis.axhline(1.0, color="gray", linewidth=0.8)
    _ticks(axis.set_xticks, axis.set_xticklabels, [_short(name) for name in layers], rotation=90)
    axis.set_ylabel("enhance score")
    axis.set_title("enhance score per layer", fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _ticks(set_ticks, set_labels, labels: list[str], rotation: int = 0, most: int = 40) -> None:
    stride = max(1, -(-len(labels) // most))
    positions = list(range(0, len(labels), stride))
    set_ticks(positions)
    set_labels([labels[i] for i in positions], fontsize=7, rotation=rotation)


def _short(layer_name: str) -> str:
    return layer_name.replace("transformer_blocks", "blocks")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot-cfi", help="layer x step heatmap of a recorded run",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("record", help="a JSON record (eav generate --record, CFIRecorder.save)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--value", choices=("cfi", "score", "both"), default="both")
    parser.add_argument("--title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    record = load_record(args.record)
    values = ("cfi", "score") if args.value == "both" else (args.value,)
    plot_record(record, args.out, values, args.title)
    layers, steps, _ = record_matrix(record)
    print(f"wrote {args.out}: {len(layers)} layers x {len(steps)} steps")
    return 0
