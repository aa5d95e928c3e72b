"""``eav generate``: a video from a diffusers pipeline with Enhance-A-Video, optionally side by side
with the same seed without it.

    eav generate --model THUDM/CogVideoX-2b --prompt "a corgi surfing" --enhance-weight 3.4 --out corgi.mp4 --compare

``--model`` is anything ``DiffusionPipeline.from_pretrained`` takes: a local directory (written
by ``save_pretrained``) or a hub id where the network allows, of any text-to-video pipeline whose
video model has an adapter (``eav_kernels.adapters.supported_models()``). The adapter
(``apply_enhance_a_video``) goes on every video model of the pipeline (Wan 2.2's two experts
``transformer`` and ``transformer_2`` both); the run records every enhanced layer's CFI and score
per step (``--record FILE.json``; ``eav plot-cfi`` draws it). With several video models, layer
names are prefixed by the component (``transformer_2.blocks.0.attn1``).

Outputs: ``--out`` (mp4 through imageio-ffmpeg; a GIF next to it when ffmpeg is missing). With
``--compare``: ``STEM_compare.mp4`` (left: without, right: with Enhance-A-Video, same seed),
``STEM_scores.png`` (enhance score per layer) and ``STEM_cfi.png`` (layer x step heatmap).

Prompts: pipelines with a tokenizer and text encoder take ``--prompt``. For a pipeline saved
without them, pass precomputed embeddings: ``--prompt-embeds FILE.pt`` holding a tensor
``[1, L, C]`` or a dict ``{"prompt_embeds": ..., "negative_prompt_embeds": ...}``.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from .._deprecation import renamed_keyword

__all__ = ["generate_frames", "write_video", "main"]

DEFAULT_WEIGHT = 4.0  # the enhance weight of models with no recommended one
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="generate a video with Enhance-A-Video (diffusers pipeline)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="pipeline directory or hub id")
    parser.add_argument("--prompt", help="text prompt (needs the pipeline's tokenizer/text encoder)")
    parser.add_argument("--negative-prompt")
    parser.add_argument("--prompt-embeds", metavar="FILE.pt", help="precomputed prompt embeddings (see above)")
    parser.add_argument("--frames", type=int, help="video frames (pipeline default if omitted)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--enhance-weight", type=float, metavar="W",
                        help=f"enhance weight (default: the model's recommended one, e.g. CogVideoX 3.4, "
                             f"else {DEFAULT_WEIGHT})")
    parser.add_argument("--weight", type=float, dest="deprecated_weight", metavar="W",
                        help="deprecated spelling of --enhance-weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if present)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default: bf16 on GPU, fp32 on CPU")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--out", required=True, help="video file to write (.mp4; .gif also works)")
    parser.add_argument("--compare", action="store_true",
                        help="also run without enhancement (same seed): side-by-side video + score plots")
    parser.add_argument("--record", metavar="FILE.json", help="save the per-layer, per-step CFI record")
    parser.set_defaults(func=run)


def enhance_weight_argument(args: argparse.Namespace) -> float | None:
    """``--enhance-weight``, or its deprecated spelling ``--weight`` (which warns on stderr); None
    when neither is given (each model's recommended weight)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DeprecationWarning)  # a command's user should see it
        return renamed_keyword("--weight", args.deprecated_weight, "--enhance-weight", args.enhance_weight, None)


# ---- the pipeline ---------------------------------------------------------------------------

def load_pipeline(model: str, device: torch.device, dtype: torch.dtype):
    from diffusers import DiffusionPipeline

    with warnings.catch_warnings():  # newer diffusers call it `dtype`; older ones know only this name
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        pipe = DiffusionPipeline.from_pretrained(model, torch_dtype=dtype)
    from ..adapters import refused_models, supported_models, video_models

    models = video_models(pipe)
    if not models:
        raise SystemExit(f"{model}: {type(pipe).__name__} has no video model with an adapter; eav generate "
                         f"needs a video diffusion pipeline of: {', '.join(supported_models())}")
    for name, video_model in models.items():
        reason = refused_models().get(type(video_model).__name__)
        if reason is not None:
            raise SystemExit(f"{model}: Enhance-A-Video does not apply to {name} "
                             f"({type(video_model).__name__}): {reason}")
    pipe.set_progress_bar_config(file=sys.stderr)
    return pipe.to(device)


def prompt_arguments(pipe, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    if args.prompt_embeds:
        loaded = torch.load(args.prompt_embeds, map_location="cpu", weights_only=True)
        embeds = loaded if isinstance(loaded, dict) else {"prompt_embeds": loaded}
        unknown = set(embeds) - {"prompt_embeds", "negative_prompt_embeds"}
        if "prompt_embeds" not in embeds or unknown:
            raise SystemExit(f"{args.prompt_embeds}: expected a tensor or a dict with prompt_embeds "
                             f"(and negative_prompt_embeds), got keys {sorted(embeds)}")
        return {name: tensor.to(device, dtype) for name, tensor in embeds.items()}
    if args.prompt is None:
        raise SystemExit("give --prompt TEXT (or --prompt-embeds FILE.pt)")
    if getattr(pipe, "tokenizer", None) is None or getattr(pipe, "text_encoder", None) is None:
        raise SystemExit(f"{args.model} has no tokenizer/text encoder: pass --prompt-embeds FILE.pt")
    arguments = {"prompt": args.prompt}
    if args.negative_prompt is not None:
        arguments["negative_prompt"] = args.negative_prompt
    return arguments


def call_arguments(pipe, args: argparse.Namespace) -> dict[str, Any]:
    """The size/steps flags under the names this pipeline's ``__call__`` uses."""
    accepted = inspect.signature(pipe.__call__).parameters
    wanted = {
        ("num_frames", "video_length"): args.frames,
        ("num_inference_steps",): args.steps,
        ("height",): args.height,
        ("width",): args.width,
        ("guidance_scale",): args.guidance_scale,
    }
    arguments = {}
    for names, value in wanted.items():
        if value is None:
            continue
        name = next((n for n in names if n in accepted), None)
        if name is None:
            raise SystemExit(f"{type(pipe).__name__} takes none of {names}")
        arguments[name] = value
    return arguments


def generate_frames(pipe, arguments: dict[str, Any], seed: int, device: torch.device):
    """One video as uint8 ``[F, H, W, 3]`` (numpy)."""
    import numpy as np

    generator = torch.Generator(device="cpu").manual_seed(seed)
    output = pipe(**arguments, generator=generator, output_type="np")
    frames = output.frames[0]
    if isinstance(frames, torch.Tensor):
        frames = frames.float().cpu().numpy()
    if isinstance(frames, list):  # PIL images
        frames = np.stack([np.asarray(frame) for frame in frames])
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    if frames.shape[-1] != 3 and frames.shape[1] == 3:  # [F, C, H, W]
        frames = frames.transpose(0, 2, 3, 1)
    return frames


class _ComponentRecorder:
    """Records into a shared ``CFIRecorder`` with layer names prefixed by ``prefix`` (one per
    video model of a pipeline, so Wan 2.2's two experts keep their layers apart)."""

    def __init__(self, recorder, prefix: str):
        self.recorder, self.prefix = recorder, prefix

    def begin_forward(self, timestep, num_frames) -> None:
        self.recorder.begin_forward(timestep, num_frames)

    def record_layer(self, layer_name: str, cross_frame_intensity, score) -> None:
        self.recorder.record_layer(self.prefix + layer_name, cross_frame_intensity, score)


def enhance_weights(pipe, weight: float | None) -> dict[str, float]:
    """``{component: enhance weight}`` for every video model of ``pipe``: ``weight``, or (``None``)
    the model's recommended weight, else ``DEFAULT_WEIGHT``."""
    from ..adapters import video_models
    from ..adapters.models import REFUSED_MODELS, SUPPORTED_MODELS
    from ..adapters.spec import find_spec

    return {
        name: weight if weight is not None
        else find_spec(model, SUPPORTED_MODELS, REFUSED_MODELS).recommended_weight or DEFAULT_WEIGHT
        for name, model in sorted(video_models(pipe).items())
    }


def enhance_configs(weights: dict[str, float], recorder) -> dict[str, Any]:
    """``{component: EnhanceAVideoConfig}`` with those weights, all recording into ``recorder``
    (layer names prefixed by the component when there are several)."""
    from ..adapters import EnhanceAVideoConfig

    return {
        name: EnhanceAVideoConfig(
            enhance_weight=weight, recorder=recorder if len(weights) == 1 else _ComponentRecorder(recorder, f"{name}."),
        )
        for name, weight in weights.items()
    }


# ---- video files ----------------------------------------------------------------------------

def ffmpeg_available() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return False
    return True


def write_video(path: str | Path, frames, fps: int = 8) -> Path:
    """Writes uint8 ``[F, H, W, 3]`` frames: mp4 (etc.) through ffmpeg, else a GIF. Returns the
    path written (``path`` with ``.gif`` when ffmpeg is missing)."""
    import imageio.v2 as imageio
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in VIDEO_SUFFIXES and ffmpeg_available():
        # yuv420p needs even sizes: pad by one edge row/column instead of letting ffmpeg rescale
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        imageio.mimwrite(path, list(frames), fps=fps, macro_block_size=1)
        return path
    if path.suffix.lower() != ".gif":
        gif = path.with_suffix(".gif")
        warnings.warn(f"ffmpeg (imageio-ffmpeg) is not available: writing {gif} instead of {path}")
        path = gif
    imageio.mimwrite(path, list(frames), duration=1000 / fps, loop=0)
    return path


def side_by_side(left, right, gap: int = 4):
    import numpy as np

    separator = np.full((left.shape[0], left.shape[1], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([left, separator, right], axis=2)


# ---- the command ----------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from ..adapters import apply_enhance_a_video, remove_enhance_a_video
    from ..telemetry import CFIRecorder

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else torch.device(args.device)
    dtype = DTYPES[args.dtype] if args.dtype else (torch.float32 if device.type == "cpu" else torch.bfloat16)
    out = Path(args.out)
    pipe = load_pipeline(args.model, device, dtype)
    arguments = {**prompt_arguments(pipe, args, device, dtype), **call_arguments(pipe, args)}

    plain = None
    if args.compare:
        print("without Enhance-A-Video ...", file=sys.stderr, flush=True)
        plain = generate_frames(pipe, arguments, args.seed, device)
    recorder = CFIRecorder()
    weights = enhance_weights(pipe, enhance_weight_argument(args))
    apply_enhance_a_video(pipe, enhance_configs(weights, recorder))
    try:
        applied = ", ".join(f"{name} (enhance weight {weight})" for name, weight in weights.items())
        print(f"with Enhance-A-Video on {applied} ...", file=sys.stderr, flush=True)
        enhanced = generate_frames(pipe, arguments, args.seed, device)
    finally:
        remove_enhance_a_video(pipe)

    written = [write_video(out, enhanced, args.fps)]
    record = recorder.to_dict()
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        recorder.save(args.record)
        written.append(Path(args.record))
    if args.compare:
        from .plot_cfi import plot_layer_scores, plot_record

        stem = out.with_suffix("")
        written.append(write_video(f"{stem}_compare{out.suffix}", side_by_side(plain, enhanced), args.fps))
        written.append(plot_layer_scores(record, f"{stem}_scores.png"))
        written.append(plot_record(record, f"{stem}_cfi.png"))
        difference = abs(enhanced.astype("float32") - plain.astype("float32")).mean()
        print(f"mean |enhanced - plain| pixel difference: {difference:.2f} / 255")
    frames, height, width = enhanced.shape[:3]
    print(f"{frames} frames {width}x{height}, {len(record['layers'])} enhanced layers, "
          f"{len(record['forwards'])} transformer forwards")
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from . import main as eav_main

    return eav_main(["generate", *(argv or sys.argv[1:])])
