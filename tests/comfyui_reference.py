"""The expected outputs of an enhanced stand-in model, computed independently of the node's code:
float64 CFI from ``eav_kernels.reference``, the score by its formula, the scaling by hand."""

from __future__ import annotations

import copy

import torch

from eav_kernels.reference import cross_frame_intensity_reference

AFTER, BEFORE = "after output projection", "before output projection"


def reference_score(q: torch.Tensor,  # [B, H, N, D] video tokens
                    k: torch.Tensor, frames: int, weight: float, entries: int | None) -> torch.Tensor:
    """float64 ``max(1, CFI * (F + w))``: 0-d, or ``[B]`` (each of ``entries`` groups of rows its own)."""
    cfi = cross_frame_intensity_reference(q, k, frames, per_sample=True)  # [B] float64
    if entries:
        cfi = cfi.view(entries, -1).mean(dim=1).repeat_interleave(q.shape[0] // entries)
    else:
        cfi = cfi.mean()
    return (cfi * (frames + weight)).clamp(min=1.0)


def scaled(x: torch.Tensor,  # [B, N, C]
           score: torch.Tensor, rows: slice) -> torch.Tensor:
    factor = score.view(-1, 1, 1) if score.dim() else score
    out = x.clone()
    out[:, rows] = (x[:, rows].double() * factor).to(x.dtype)
    return out


class Expectation:
    """What the node should do: weight, placement, enhanced blocks (model order), per-sample entries
    (``None``: one score per call), and whether the call is inside the window."""

    def __init__(self, weight=4.0, placement=AFTER, blocks=None, entries=None, active=True):
        self.weight, self.placement, self.blocks, self.entries, self.active = weight, placement, blocks, entries, active

    def enhances(self, block: int) -> bool:
        return self.active and (self.blocks is None or block in self.blocks)

    def project(self, projection, attn: torch.Tensor, score: torch.Tensor | None, rows: slice) -> torch.Tensor:
        if score is None:
            return projection(attn)
        if self.placement == AFTER:
            return scaled(projection(attn), score, rows)
        return projection(scaled(attn, score, rows))


def wan_expected(model: torch.nn.Module, expectation: Expectation) -> torch.nn.Module:
    """A copy of a stand-in Wan whose self-attentions compute the expected enhancement."""
    expected = copy.deepcopy(model)

    def reference(module, q, k, out, transformer_options):
        block = transformer_options["block_index"]
        if not expectation.enhances(block):
            return module.o(out)
        frames = int(transformer_options["grid_sizes"][0])
        score = reference_score(q, k, frames, expectation.weight, expectation.entries)
        return expectation.project(module.o, out, score, slice(None))

    for block in expected.blocks:
        block.self_attn.reference = reference
    return expected


def hunyuan_expected(model: torch.nn.Module, expectation: Expectation, frames: int, spatial: int) -> torch.nn.Module:
    """A copy of a stand-in HunyuanVideo whose blocks compute the expected enhancement (the video:
    the last ``frames * spatial`` image tokens; single-stream blocks scale the attention output)."""
    expected = copy.deepcopy(model)
    doubles = len(expected.double_blocks)

    def score_of(q, k, options, number):
        video = slice(options["img_slice"][1] - frames * spatial, options["img_slice"][1])
        if not expectation.enhances(number):
            return None, video
        return reference_score(q[:, :, video], k[:, :, video], frames, expectation.weight, expectation.entries), video

    def double(module, q, k, attn, options):
        score, video = score_of(q, k, options, options["block_index"])
        start = options["img_slice"][0]
        img_rows = slice(video.start - start, video.stop - start)
        return expectation.project(module.img_attn.proj, attn[:, start:], score, img_rows), attn[:, :start]

    def single(module, q, k, attn, options):
        score, video = score_of(q, k, options, doubles + options["block_index"])
        return attn if score is None else scaled(attn, score, video)

    for block in expected.double_blocks:
        block.reference = double
    for block in expected.single_blocks:
        block.reference = single
    return expected


def override_expected(model: torch.nn.Module, expectation: Expectation, frames: int, spatial: int) -> torch.nn.Module:
    """A copy of an override-family stand-in whose video self-attentions compute the expected
    enhancement (the video: the last ``frames * spatial`` tokens, text first in CogVideoX)."""
    expected = copy.deepcopy(model)

    def reference_for(number):
        def reference(module, q, k, out, transformer_options):
            project = module.project
            if module.style == "cosmos":  # its projection runs on [L, B, C]
                def project(t):
                    return module.project(t.transpose(0, 1)).transpose(0, 1)
            if not expectation.enhances(number):
                return project(out)
            video = slice(q.shape[2] - frames * spatial, q.shape[2])
            score = reference_score(q[:, :, video], k[:, :, video], frames, expectation.weight, expectation.entries)
            return expectation.project(project, out, score, video)
        return reference

    for number, module in enumerate(video_self_attentions(expected)):
        module.reference = reference_for(number)
    return expected


def video_self_attentions(model: torch.nn.Module) -> list:
    """The stand-in's video self-attention modules, in block order."""
    name = type(model).__name__
    if name in ("LTXVModel", "LTXAVModel"):
        return [block.attn1 for block in model.transformer_blocks]
    if name == "GeneralDIT":
        return [block.blocks[0].block.attn for block in model.blocks.values()]
    if name == "Kandinsky5":
        return [block.self_attention for block in model.visual_transformer_blocks]
    return list(model.blocks)
