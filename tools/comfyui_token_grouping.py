"""Cross-frame intensity of a static video, read frame-major (token t * S + s, as the models lay
tokens out) and read the way spatial-major wrappers group them (``reshape(B, S, T, ...)`` of
frame-major tokens: each "temporal" group is T neighbouring tokens of one frame).

A static video repeats each spatial position's features in every frame, so each position's
F x F temporal attention is uniform and the frame-major CFI is exactly 1/F. Usage:

    .venv/bin/python tools/comfyui_token_grouping.py [--frames 5] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch

import eav_kernels as eav


def static_video_qk(frames: int, spatial: int, shared_projection: bool, heads: int = 4, head_dim: int = 64,
                    channels: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k ``[1, heads, frames * spatial, head_dim]`` frame-major, from random projections of
    per-position features repeated in every frame; ``shared_projection``: q and k from the same
    projection (each token attends to itself most: neighbouring tokens are told apart)."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(spatial, channels, generator=generator)
    w_q, w_k = (torch.randn(channels, heads * head_dim, generator=generator) / channels ** 0.5 for _ in range(2))
    w_k = w_q if shared_projection else w_k
    tokens = features.repeat(frames, 1)  # [F*S, C], token t*S + s = position s
    q, k = ((tokens @ w).view(1, frames * spatial, heads, head_dim).transpose(1, 2) for w in (w_q, w_k))
    return q, k


def spatial_major(x: torch.Tensor,  # [B, H, N, D] frame-major
                  frames: int) -> torch.Tensor:
    """The same tokens reordered so that reading them frame-major gives the spatial-major grouping:
    group g holds tokens g*T .. g*T + T-1."""
    batch, heads, tokens, dim = x.shape
    return x.view(batch, heads, tokens // frames, frames, dim).transpose(2, 3).reshape(batch, heads, tokens, dim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--spatial", type=int, default=240, help="tokens per frame (12 x 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"static video, F={args.frames}, S={args.spatial}, 4 heads x 64, seed {args.seed}; 1/F = {1 / args.frames:.4f}")
    print("q, k projections   frame-major CFI   spatial-major grouping reshape(B, S, T, ...)")
    for shared in (False, True):
        q, k = static_video_qk(args.frames, args.spatial, shared, seed=args.seed)
        frame_major = eav.cross_frame_intensity(q, k, args.frames)
        grouped = eav.cross_frame_intensity(spatial_major(q, args.frames), spatial_major(k, args.frames), args.frames)
        print(f"{'shared' if shared else 'independent':<18} {frame_major.item():>15.4f}   {grouped.item():.4f}")


if __name__ == "__main__":
    main()
