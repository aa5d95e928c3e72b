"""Video models of diffusers that Enhance-A-Video refuses, each with the reason
(``apply_enhance_a_video`` raises ``TypeError`` quoting it). Two kinds: models where the method has
no clear meaning (no softmax over the generated frames, no video), and models whose layers the
engine cannot read (said so in the reason, with what it would need)."""

from __future__ import annotations

_NO_SOFTMAX = (
    "its video self-attention is linear (ReLU-kernel) attention with no softmax, so the F x F "
    "temporal attention map whose cross-frame intensity the method measures does not exist"
)

REFUSED_MODELS: dict[str, str] = {
    "AnyFlowFARTransformer3DModel": (
        "a causal chunk-wise (FAR) generator: each chunk attends to earlier chunks through a block-causal "
        "flex_attention mask and a KV cache, so there is no bidirectional F x F temporal softmax over the "
        "frames being generated. Use AnyFlowTransformer3DModel (bidirectional), which is supported"
    ),
    "ChronoEditTransformer3DModel": (
        "an image editor: its latent 'video' is [input image, edited image] (plus temporal-reasoning "
        "frames that are discarded), and the output is one image, so there is no video whose temporal "
        "consistency the method could improve"
    ),
    "Cosmos3OmniTransformer": (
        "its layers do not have the shape the engine reads a video from: each decoder layer takes "
        "(understanding, generation) unbatched [N, C] streams and returns the generation stream second; "
        "its generation attention pairs generation queries with [understanding; generation] keys, so the "
        "video's query and key rows sit at different offsets; and the video is one or more per-item spans "
        "(vision_sequence_indexes, vision_token_shapes) among sound and action tokens. The generated "
        "frames' temporal softmax is defined, but reading it needs an engine that maps query and key rows "
        "separately, per item, which this adapter set does not have"
    ),
    "JoyImageEditTransformer3DModel": "an image editor (image in, image out): there are no video frames",
    "JoyImageEditPlusTransformer3DModel": "an image editor (images in, image out): there are no video frames",
    "Kandinsky6SRTransformer3DModel": (
        "a text-free video super-resolution model whose self-attention always runs NABLA block-sparse "
        "attention through flex_attention: the dense F x F temporal softmax is not computed, and no "
        "torch SDPA call exists for the adapter to measure"
    ),
    "LTX2VideoDiffusionDecoderModel": (
        "a pixel-space diffusion decoder run after the latent video is generated (latents to pixels), "
        "not the video generator the method enhances; and its attention is 3D neighborhood attention "
        "(a kernel_size window of frames and positions per token, through a flex BlockMask or NATTEN), so "
        "no softmax spans the F frames of a position"
    ),
    "SanaVideoTransformer3DModel": _NO_SOFTMAX,
    "SanaWMTransformer3DModel": (
        "three of every four blocks are gated delta-net attention, a linear recurrence with no softmax (no "
        "F x F temporal map to measure); enhancing only the softmax blocks, whose attention runs a main "
        "and a camera (UCPE) branch summed into one output, would apply the method to a quarter of the "
        "model's temporal mixing, a different method from the paper's"
    ),
    "SanaWMLTX2RefinerTransformer3DModel": (
        "a chunk-causal autoregressive refiner: each window's queries are one block of frames and its "
        "keys a sliding-window KV cache (sink + history + current), so there is no square F x F "
        "temporal softmax over the generated frames"
    ),
}
